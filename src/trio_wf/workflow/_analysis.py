"""Graph analysis in linear time: node order, start and end nodes, required links.

ewokscore 5.0 decides whether a link is required by walking upstream from every
link, which is exponential on a chain (2^(n-1) calls for n nodes).  Here every
whole-graph property is one pass over the nodes and links, so a 10,000-node chain
is analysed in milliseconds.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, final

import attrs

from ._errors import GraphValidationError
from ._graph import InputName, Link, Node, NodeId


def sort_key(node_id: NodeId) -> tuple[Any, ...]:
    """A total order over node ids of mixed types: ints, then strings, then tuples."""
    if isinstance(node_id, int):
        return (0, node_id)
    if isinstance(node_id, str):
        return (1, node_id)
    return (2, tuple(sort_key(part) for part in node_id))


def describe_link(index: int, link: Link) -> str:
    """``link 3 ('a' -> 'b')``: how messages name a link."""
    return f"link {index} ({link.source!r} -> {link.target!r})"


@final
@attrs.frozen
class GraphAnalysis:
    """Whole-graph properties of a `Graph`, computed once when it is loaded.

    Attributes:
        order: every node id, sources before targets, ties broken by id (ints,
            then strings, then tuples).  Results are merged in this order.
        start_nodes: the nodes execution starts from: nodes without incoming
            links, and nodes with ``force_start_node``; in ``order``.
        end_nodes: the nodes whose outputs make up the result by default: nodes
            whose outgoing links are all ``on_error`` links; in ``order``.
        required: one flag per link of `Graph.links`: whether the target must
            wait for that link to fire before it can run.  An explicit
            ``required`` wins; conditional and ``on_error`` links are optional;
            any other link is required unless an optional link lies anywhere
            upstream of its source (the ewokscore 5.0 rule).
    """

    order: tuple[NodeId, ...]
    start_nodes: tuple[NodeId, ...]
    end_nodes: tuple[NodeId, ...]
    required: tuple[bool, ...]
    # Index-based views for the walker: node position in Graph.nodes, the source
    # and target position of every link, and each node's link numbers.
    index: Mapping[NodeId, int] = attrs.field(repr=False)
    rank: tuple[int, ...] = attrs.field(repr=False)
    sources: tuple[int, ...] = attrs.field(repr=False)
    targets: tuple[int, ...] = attrs.field(repr=False)
    in_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    out_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    # Per link, per condition: None, or for an "else" condition the values the
    # source's other conditions test on the same output.
    else_values: tuple[tuple[tuple[Any, ...] | None, ...], ...] = attrs.field(
        repr=False
    )


def analyse(nodes: Sequence[Node], links: Sequence[Link]) -> GraphAnalysis:
    """Analyse a graph whose links all point at existing nodes.

    Raises:
        GraphValidationError: the graph has a cycle, no start node, or two
            required links write the same input of a node.
    """
    ids = tuple(node.id for node in nodes)
    index = {node_id: i for i, node_id in enumerate(ids)}
    sources = tuple(index[link.source] for link in links)
    targets = tuple(index[link.target] for link in links)
    in_lists: list[list[int]] = [[] for _ in ids]
    out_lists: list[list[int]] = [[] for _ in ids]
    for i, (source, target) in enumerate(zip(sources, targets, strict=True)):
        out_lists[source].append(i)
        in_lists[target].append(i)
    in_links = tuple(map(tuple, in_lists))
    out_links = tuple(map(tuple, out_lists))

    order = _topological_order(ids, targets, in_links, out_links)
    if len(order) < len(ids):
        _raise_for_cycle(nodes, links, sources, targets, in_links, order)
    rank = [0] * len(ids)
    for position, i in enumerate(order):
        rank[i] = position

    starts = [i for i in order if nodes[i].force_start_node or not in_links[i]]
    if ids and not starts:  # pragma: no cover, a DAG has a source; loops come later
        msg = (
            "the graph has no start node: every node has an incoming link; "
            "set force_start_node on the node where execution begins"
        )
        raise GraphValidationError(msg)
    ends = [i for i in order if all(links[k].on_error for k in out_links[i])]

    required = _required_links(links, targets, out_links)
    _check_required_inputs(nodes, links, in_links, required)
    return GraphAnalysis(
        order=tuple(ids[i] for i in order),
        start_nodes=tuple(ids[i] for i in starts),
        end_nodes=tuple(ids[i] for i in ends),
        required=required,
        index=index,
        rank=tuple(rank),
        sources=sources,
        targets=targets,
        in_links=in_links,
        out_links=out_links,
        else_values=_else_values(nodes, links, sources, out_links),
    )


def _topological_order(
    ids: Sequence[NodeId],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
    out_links: Sequence[Sequence[int]],
) -> list[int]:
    """Kahn's algorithm, taking the smallest id among the ready nodes each time."""
    missing = [len(links) for links in in_links]
    ready = [(sort_key(ids[i]), i) for i, count in enumerate(missing) if not count]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for k in out_links[i]:
            target = targets[k]
            missing[target] -= 1
            if not missing[target]:
                heapq.heappush(ready, (sort_key(ids[target]), target))
    return order


def _raise_for_cycle(
    nodes: Sequence[Node],
    links: Sequence[Link],
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
    acyclic_part: Sequence[int],
) -> None:
    """Name one cycle of the graph, preferring one made of unconditional links."""
    unconditional = [not link.is_conditional for link in links]
    cycle = _find_cycle(len(nodes), sources, targets, in_links, unconditional)
    if cycle is not None:
        names = " -> ".join(repr(nodes[i].id) for i in [*cycle, cycle[0]])
        msg = (
            f"the graph has a cycle without a conditional link, which would "
            f"never end: {names}; add conditions to one of its links"
        )
        raise GraphValidationError(msg, node_id=nodes[cycle[0]].id)
    cycle = _find_cycle(len(nodes), sources, targets, in_links, [True] * len(links))
    assert cycle is not None  # Kahn's algorithm left nodes out
    names = " -> ".join(repr(nodes[i].id) for i in [*cycle, cycle[0]])
    msg = (
        f"the graph has a conditional loop: {names}; loops are not supported "
        f"by trio_wf yet"
    )
    raise GraphValidationError(msg, node_id=nodes[cycle[0]].id)


def _find_cycle(
    n: int,
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
    usable: Sequence[bool],
) -> list[int] | None:
    """A cycle through the usable links, as a list of node positions, or None.

    Kahn's algorithm removes every node that is not upstream-reachable from a
    cycle; each remaining node has a remaining predecessor, so walking upstream
    from any of them must revisit a node: that repeat closes a cycle.
    """
    missing = [0] * n
    for k, target in enumerate(targets):
        if usable[k]:
            missing[target] += 1
    out: list[list[int]] = [[] for _ in range(n)]
    for k, source in enumerate(sources):
        if usable[k]:
            out[source].append(targets[k])
    todo = deque(i for i in range(n) if not missing[i])
    removed = [False] * n
    while todo:
        i = todo.popleft()
        removed[i] = True
        for target in out[i]:
            missing[target] -= 1
            if not missing[target]:
                todo.append(target)
    remaining = [i for i in range(n) if not removed[i]]
    if not remaining:
        return None
    seen: dict[int, int] = {}
    path: list[int] = []
    i = remaining[0]
    while i not in seen:
        seen[i] = len(path)
        path.append(i)
        i = next(
            sources[k] for k in in_links[i] if usable[k] and not removed[sources[k]]
        )
    cycle = path[seen[i] :][::-1]
    first = cycle.index(min(cycle))  # start where the source lists it first
    return cycle[first:] + cycle[:first]


def _required_links(
    links: Sequence[Link], targets: Sequence[int], out_links: Sequence[Sequence[int]]
) -> tuple[bool, ...]:
    """The ewokscore 5.0 rule, as one downstream propagation.

    A node is "tainted" when an optional link lies anywhere upstream of it: mark
    the target of every locally optional link, then everything downstream of a
    marked node.  Each node is marked at most once, so this is linear and ends on
    cyclic graphs.
    """
    tainted = [False] * len(out_links)
    todo: deque[int] = deque()
    for k, link in enumerate(links):
        locally_optional = link.required is False or (
            link.required is None and link.is_conditional
        )
        if locally_optional and not tainted[targets[k]]:
            tainted[targets[k]] = True
            todo.append(targets[k])
    while todo:
        for k in out_links[todo.popleft()]:
            if not tainted[targets[k]]:
                tainted[targets[k]] = True
                todo.append(targets[k])
    source_of = [0] * len(links)
    for i, ks in enumerate(out_links):
        for k in ks:
            source_of[k] = i
    return tuple(
        link.required
        if link.required is not None
        else not link.is_conditional and not tainted[source_of[k]]
        for k, link in enumerate(links)
    )


def _check_required_inputs(
    nodes: Sequence[Node],
    links: Sequence[Link],
    in_links: Sequence[Sequence[int]],
    required: Sequence[bool],
) -> None:
    """Two required links must not write the same input: which would win?"""
    for i, ks in enumerate(in_links):
        writers: dict[InputName, int] = {}
        for k in ks:
            if not required[k]:
                continue
            for mapping in links[k].data_mapping:
                other = writers.setdefault(mapping.target_input, k)
                if other != k:
                    msg = (
                        f"node {nodes[i].id!r}: input {mapping.target_input!r} is "
                        f"written by two required links, "
                        f"{describe_link(other, links[other])} and "
                        f"{describe_link(k, links[k])}; make one of them optional "
                        f"(required: false) or map to another input"
                    )
                    raise GraphValidationError(msg, node_id=nodes[i].id, link_index=k)


def _else_values(
    nodes: Sequence[Node],
    links: Sequence[Link],
    sources: Sequence[int],
    out_links: Sequence[Sequence[int]],
) -> tuple[tuple[tuple[Any, ...] | None, ...], ...]:
    tested: dict[tuple[int, str], list[Any]] = {}
    for i, ks in enumerate(out_links):
        for k in ks:
            for condition in links[k].conditions:
                values = tested.setdefault((i, condition.source_output), [])
                values.append(condition.value)
    result = []
    for k, link in enumerate(links):
        node = nodes[sources[k]]
        per_condition: list[tuple[Any, ...] | None] = []
        for condition in link.conditions:
            if _equal(condition.value, node.conditions_else_value):
                others = tuple(
                    value
                    for value in tested[sources[k], condition.source_output]
                    if not _equal(value, node.conditions_else_value)
                )
                per_condition.append(others)
            else:
                per_condition.append(None)
        result.append(tuple(per_condition))
    return tuple(result)


def _equal(a: Any, b: Any) -> bool:
    # Condition values come from JSON, but an else value may be anything.
    try:
        return bool(a == b)
    except Exception:
        return False
