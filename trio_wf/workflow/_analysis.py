"""`analyse`: a graph's `GraphAnalysis`, and the structural checks it implies.

The ewoks rules for a parsed graph: its order, start and end nodes, which links
are required, its loops and their entries and exits; and the graphs they reject
(a cycle without a conditional link, no start node, two required links writing
one input).  The generic algorithms on index arrays are `._topology`'s.

ewokscore 5.0 decides whether a link is required by walking upstream from every
link, which is exponential on a chain (2^(n-1) calls for n nodes).  Here every
whole-graph property is one pass over the nodes and links, so a 10,000-node chain
is analysed in milliseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from .._util import ITEMS_LIMIT, quote
from ._errors import GraphValidationError
from ._graph import GraphAnalysis, InputName, Link, Loop, Node, NodeId, describe_link
from ._topology import condensed_order, find_cycle, strongly_connected


def sort_key(node_id: NodeId) -> tuple[Any, ...]:
    """A total order over node ids of mixed types: ints, then strings, then tuples."""
    if isinstance(node_id, int):
        return (0, node_id)
    if isinstance(node_id, str):
        return (1, node_id)
    return (2, tuple(sort_key(part) for part in node_id))


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
    loop_of, members = strongly_connected(len(ids), targets, out_links)
    keys = [sort_key(node_id) for node_id in ids]
    order = condensed_order(keys, sources, targets, loop_of, members)
    rank = [0] * len(ids)
    for position, i in enumerate(order):
        rank[i] = position
    # Renumber the loops in graph order (Tarjan finds them in reverse
    # topological order), so that loop_info lists them as `loops` does.
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
        else_values=_else_values(nodes, links, sources),
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
    cycle = find_cycle(len(nodes), sources, targets, in_links, unconditional)
    if cycle is not None:
        steps = [quote(nodes[i].id) for i in cycle[:ITEMS_LIMIT]]
        if len(cycle) > ITEMS_LIMIT:
            steps.append(f"... ({len(cycle)} nodes)")
        else:
            steps.append(steps[0])  # back where it started
        names = " -> ".join(steps)
        msg = (
            f"the graph has a cycle without a conditional link, which would "
            f"never end: {names}; add conditions to one of its links"
        )
        raise GraphValidationError(msg, node_id=nodes[cycle[0]].id)


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
                    first, second = (
                        describe_link(j, links[j].source, links[j].target)
                        for j in (other, k)
                    )
                    msg = (
                        f"node {quote(nodes[i].id)}: input "
                        f"{quote(mapping.target_input)} is written by two required "
                        f"links, {first} and {second}; "
                        f"make one of them optional (required: false) or map to "
                        f"another input"
                    )
                    raise GraphValidationError(msg, node_id=nodes[i].id, link_index=k)


def _else_values(
    nodes: Sequence[Node], links: Sequence[Link], sources: Sequence[int]
) -> tuple[tuple[tuple[Any, ...] | None, ...], ...]:
    # Per source node and output, the values its conditions test other than
    # the else value: one tuple, shared by all its else conditions, so that a
    # node with thousands of else links costs thousands, not millions.
    others: dict[tuple[int, str], list[Any]] = {}
    is_else = []
    for k, link in enumerate(links):
        else_value = nodes[sources[k]].conditions_else_value
        flags = []
        for condition in link.conditions:
            flags.append(_equal(condition.value, else_value))
            values = others.setdefault((sources[k], condition.source_output), [])
            if not flags[-1]:
                values.append(condition.value)
        is_else.append(flags)
    shared = {key: tuple(values) for key, values in others.items()}
    return tuple(
        tuple(
            shared[sources[k], condition.source_output] if flag else None
            for condition, flag in zip(link.conditions, is_else[k], strict=True)
        )
        for k, link in enumerate(links)
    )


def _equal(a: Any, b: Any) -> bool:
    # Condition values come from JSON, but an else value may be anything.
    try:
        return bool(a == b)
    except Exception:
        return False
