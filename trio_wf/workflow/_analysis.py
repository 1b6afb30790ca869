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
class Loop:
    """A loop: a strongly connected component of the graph, run in rounds.

    Attributes:
        nodes: the positions of its nodes, in the graph's order.
        entries: the numbers of the links into it from outside.
        exits: the numbers of the links out of it.
    """

    nodes: tuple[int, ...]
    entries: tuple[int, ...]
    exits: tuple[int, ...]


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
        loops: the node ids of each loop (strongly connected component) of
            the graph, in ``order``; see :ref:`loops`.
    """

    order: tuple[NodeId, ...]
    start_nodes: tuple[NodeId, ...]
    end_nodes: tuple[NodeId, ...]
    required: tuple[bool, ...]
    loops: tuple[tuple[NodeId, ...], ...]
    # Index-based views for the walker: node position in Graph.nodes, the source
    # and target position of every link, and each node's link numbers.
    index: Mapping[NodeId, int] = attrs.field(repr=False)
    rank: tuple[int, ...] = attrs.field(repr=False)
    sources: tuple[int, ...] = attrs.field(repr=False)
    targets: tuple[int, ...] = attrs.field(repr=False)
    in_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    out_links: tuple[tuple[int, ...], ...] = attrs.field(repr=False)
    # Per node, the number of its loop in loop_info, or -1.
    loop_of: tuple[int, ...] = attrs.field(repr=False)
    loop_info: tuple[Loop, ...] = attrs.field(repr=False)
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

    _reject_endless_cycles(nodes, links, sources, targets, in_links)
    loop_of, members = _strongly_connected(len(ids), sources, targets, out_links)
    order = _condensed_order(ids, sources, targets, in_links, loop_of, members)
    rank = [0] * len(ids)
    for position, i in enumerate(order):
        rank[i] = position
    # Number the loops in graph order.
    groups = sorted(
        (sorted(group, key=rank.__getitem__) for group in members),
        key=lambda group: rank[group[0]],
    )
    for number, group in enumerate(groups):
        for i in group:
            loop_of[i] = number
    loop_info = tuple(
        _loop(group, loop_of, sources, targets, in_links) for group in groups
    )

    starts = [i for i in order if nodes[i].force_start_node or not in_links[i]]
    if ids and not starts:
        msg = (
            "the graph has no start node: every node has an incoming link; "
            "set force_start_node on the node where execution begins"
        )
        raise GraphValidationError(msg)
    ends = [i for i in order if all(links[k].on_error for k in out_links[i])]
    if not ends:
        ends = _uncovered_condition_nodes(nodes, links, order, out_links)

    required = _required_links(links, targets, out_links)
    _check_required_inputs(nodes, links, in_links, required)
    return GraphAnalysis(
        order=tuple(ids[i] for i in order),
        start_nodes=tuple(ids[i] for i in starts),
        end_nodes=tuple(ids[i] for i in ends),
        required=required,
        loops=tuple(tuple(ids[i] for i in loop.nodes) for loop in loop_info),
        index=index,
        rank=tuple(rank),
        loop_of=tuple(loop_of),
        loop_info=loop_info,
        sources=sources,
        targets=targets,
        in_links=in_links,
        out_links=out_links,
        else_values=_else_values(nodes, links, sources, out_links),
    )


def _reject_endless_cycles(
    nodes: Sequence[Node],
    links: Sequence[Link],
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
) -> None:
    """A cycle of unconditional links would run forever: name one."""
    unconditional = [not link.is_conditional for link in links]
    cycle = _find_cycle(len(nodes), sources, targets, in_links, unconditional)
    if cycle is not None:
        names = " -> ".join(repr(nodes[i].id) for i in [*cycle, cycle[0]])
        msg = (
            f"the graph has a cycle without a conditional link, which would "
            f"never end: {names}; add conditions to one of its links"
        )
        raise GraphValidationError(msg, node_id=nodes[cycle[0]].id)


def _strongly_connected(
    n: int,
    sources: Sequence[int],
    targets: Sequence[int],
    out_links: Sequence[Sequence[int]],
) -> tuple[list[int], list[list[int]]]:
    """Tarjan's algorithm, iterative: each node's loop number (-1: in no loop),
    and the nodes of each loop.  A loop is a strongly connected component of
    more than one node, or a node linked to itself."""
    number = [-1] * n  # discovery order
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    loop_of = [-1] * n
    members: list[list[int]] = []
    counter = 0
    for root in range(n):
        if number[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            i, next_link = work[-1]
            if next_link == 0:
                number[i] = low[i] = counter
                counter += 1
                stack.append(i)
                on_stack[i] = True
            ks = out_links[i]
            while next_link < len(ks):
                j = targets[ks[next_link]]
                next_link += 1
                if number[j] < 0:
                    work[-1] = (i, next_link)
                    work.append((j, 0))
                    break
                if on_stack[j]:
                    low[i] = min(low[i], number[j])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[i])
                if low[i] == number[i]:
                    component = []
                    while True:
                        j = stack.pop()
                        on_stack[j] = False
                        component.append(j)
                        if j == i:
                            break
                    looped = len(component) > 1 or any(
                        targets[k] == i for k in out_links[i]
                    )
                    if looped:
                        for j in component:
                            loop_of[j] = len(members)
                        members.append(component)
                continue
            # A child was pushed: its first visit happens on the next pass.
    return loop_of, members


def _condensed_order(
    ids: Sequence[NodeId],
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
    loop_of: Sequence[int],
    members: Sequence[Sequence[int]],
) -> list[int]:
    """Kahn's algorithm over nodes and whole loops, smallest id first.

    A loop counts as one node, ready when all links into it from outside are
    done, keyed by its smallest id; its nodes follow each other, by id.
    """
    n = len(ids)
    unit = [i if loop_of[i] < 0 else n + loop_of[i] for i in range(n)]
    missing = [0] * (n + len(members))
    for k, target in enumerate(targets):
        if unit[sources[k]] != unit[target]:
            missing[unit[target]] += 1
    inside = [sorted(group, key=lambda i: sort_key(ids[i])) for group in members]

    def key(u: int) -> tuple[Any, ...]:
        return sort_key(ids[u] if u < n else ids[inside[u - n][0]])

    ready = [(key(u), u) for u in range(n + len(members)) if u >= n or loop_of[u] < 0]
    ready = [item for item in ready if not missing[item[1]]]
    heapq.heapify(ready)
    out: list[list[int]] = [[] for _ in range(n)]
    for k, source in enumerate(sources):
        out[source].append(k)
    order: list[int] = []
    while ready:
        _, u = heapq.heappop(ready)
        group = [u] if u < n else inside[u - n]
        order.extend(group)
        for i in group:
            for k in out[i]:
                target = unit[targets[k]]
                if target != u:
                    missing[target] -= 1
                    if not missing[target]:
                        heapq.heappush(ready, (key(target), target))
    assert len(order) == n  # the condensation of any graph is acyclic
    return order


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


def _loop(
    nodes: list[int],
    loop_of: Sequence[int],
    sources: Sequence[int],
    targets: Sequence[int],
    in_links: Sequence[Sequence[int]],
) -> Loop:
    number = loop_of[nodes[0]]
    entries = [k for i in nodes for k in in_links[i] if loop_of[sources[k]] != number]
    exits = [
        k
        for k, source in enumerate(sources)
        if loop_of[source] == number and loop_of[targets[k]] != number
    ]
    return Loop(tuple(nodes), tuple(sorted(entries)), tuple(exits))


def _uncovered_condition_nodes(
    nodes: Sequence[Node],
    links: Sequence[Link],
    order: Sequence[int],
    out_links: Sequence[Sequence[int]],
) -> list[int]:
    """End nodes of a graph where every node has outgoing links (ewokscore's rule).

    The nodes with a condition on an output whose other outcomes no link takes:
    no else condition, and not both ``true`` and ``false``.  A node looping on
    itself while a condition holds ends the run when it does not.
    """
    ends = []
    for i in order:
        tested: dict[str, list[Any]] = {}
        for k in out_links[i]:
            for condition in links[k].conditions:
                tested.setdefault(condition.source_output, []).append(condition.value)
        else_value = nodes[i].conditions_else_value
        for values in tested.values():
            has_else = any(_equal(value, else_value) for value in values)
            both = any(v is True for v in values) and any(v is False for v in values)
            if not (has_else or both):
                ends.append(i)
                break
    return ends


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
