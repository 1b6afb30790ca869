"""A whole graph document into records: sub-graphs flattened, error links added.

A ``graph`` node stands for another graph (a file path, relative to the graph
file, or an inline dict).  Its nodes join the parent graph with tuple ids,
``(graph_node_id, sub_node_id)``; links to and from the graph node are rewired
to the sub-graph's nodes that ``sub_target`` and ``sub_source`` name: a node id,
an ``input_nodes``/``output_nodes`` alias, or a path through nested graph nodes.
Reading a sub-graph imports nothing, like reading any graph.

A graph node can name one file many times over, at every level, and a link
between two graph nodes stands for every pair of their end and start nodes:
a small document can stand for a huge graph.  A `Budget` counts what the
flattening makes, and refuses the graph once it passes the limits of
`._limits`, before the work does.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._util import quote
from . import _limits
from ._errors import GraphValidationError
from ._graph import Invalid, Link, Node, NodeId, describe_link, normalise_id
from ._parse import (
    check_header,
    flag,
    graph_fields,
    list_of,
    node_id,
    optional_list,
    parse_link,
    parse_node,
)

#: Reads a graph file: its document, its directory and how many values it holds.
Reader = Callable[[str], tuple[Any, str, int]]

_INHERITED = ("force_start_node", "conditions_else_value", "default_error_node")


class Budget:
    """How much of the limits on a graph's size the flattening has spent."""

    def __init__(self, values: int) -> None:
        self.values = values
        self.elements = 0

    def spend_values(self, count: int) -> None:
        """Count the values of a sub-graph file, each time it is used."""
        self.values += count
        if self.values > _limits.MAX_GRAPH_VALUES:
            msg = (
                f"the graph holds more than {_limits.MAX_GRAPH_VALUES} values once "
                f"its sub-graph files are expanded (each counts every time it is used)"
            )
            raise GraphValidationError(msg)

    def spend_elements(self, count: int) -> None:
        """Count nodes and links about to be made."""
        self.elements += count
        if self.elements > _limits.MAX_GRAPH_ELEMENTS:
            msg = (
                f"the graph has more than {_limits.MAX_GRAPH_ELEMENTS} nodes and links "
                f"once its sub-graphs are flattened (with the links to and from "
                f"graph nodes, and the default error links)"
            )
            raise GraphValidationError(msg)


@attrs.define
class _Sub:
    """What links into and out of a flattened graph can name."""

    ids: set[NodeId]
    inputs: dict[NodeId, list[tuple[NodeId, Mapping[str, Any]]]]
    outputs: dict[NodeId, list[tuple[NodeId, Mapping[str, Any]]]]
    starts: list[NodeId]
    ends: list[NodeId]
    children: dict[NodeId, _Sub]
    # Aliases naming no node, and why: an error only once a link uses one.
    broken: dict[tuple[str, NodeId], str] = attrs.field(factory=dict)


def parse_graph(
    document: Any, base_dir: str | None, read: Reader, budget: Budget
) -> tuple[list[Node], list[Link], dict[str, Any]]:
    """Nodes, links (default error links appended) and the other `Graph` fields."""
    attributes, version = check_header(document)
    if not any(key in document for key in ("graph", "nodes", "links")):
        # {} or some other JSON object: running it would silently do nothing.
        # A graph with no nodes says so with one of the keys.
        msg = (
            "not a workflow graph: a graph document has a 'graph', 'nodes' or "
            f"'links' key, this one has {_keys(document)}"
        )
        raise GraphValidationError(msg)
    nodes, links, _ = _flatten(document, base_dir, read, (), budget)
    return list(nodes.values()), links, graph_fields(document, attributes, version)


def _keys(document: Any) -> str:
    keys = [quote(key) for key in list(document)[:5]]
    return "none" if not keys else "only " + ", ".join(keys)


def _flatten(
    document: Any,
    base_dir: str | None,
    read: Reader,
    stack: tuple[str, ...],
    budget: Budget,
) -> tuple[dict[NodeId, Node], list[Link], _Sub]:
    attributes, version = check_header(document)
    nodes: dict[NodeId, Node] = {}
    links: list[Link] = []
    children: dict[NodeId, _Sub] = {}
    for position, item in enumerate(list_of(document, "nodes")):
        if isinstance(item, Mapping) and item.get("task_type") == "graph":
            gid = node_id(item.get("id"), f"nodes[{position}].id")
            if gid in nodes or gid in children:
                msg = f"node {quote(gid)} is defined twice (nodes[{position}])"
                raise GraphValidationError(msg, node_id=gid)
            sub_nodes, sub_links, sub = _subgraph(
                item, gid, base_dir, read, stack, budget
            )
            nodes.update(sub_nodes)
            links += sub_links
            children[gid] = sub
            continue
        budget.spend_elements(1)
        node = parse_node(item, position, base_dir)
        if node.id in nodes or node.id in children:
            msg = f"node {quote(node.id)} is defined twice (nodes[{position}])"
            raise GraphValidationError(msg, node_id=node.id)
        nodes[node.id] = node
    own = len(links)
    for index, item in enumerate(list_of(document, "links")):
        for expanded in _expand_link(item, index, children, budget):
            links.append(parse_link(expanded, own + index, version, nodes))
    # Each level wires its own default error nodes, once its sub-graphs' are
    # wired and their links added, as ewokscore's loader does.
    links += _default_error_links(nodes, links, version, budget)
    local = set(nodes)
    targets = {link.target for link in links}
    sources = {link.source for link in links if not link.on_error}
    sub = _Sub(
        ids=local,
        inputs={},
        outputs={},
        starts=[nid for nid in nodes if nid not in targets],
        ends=[nid for nid in nodes if nid not in sources],
        children=children,
    )
    for key, side, table in (
        ("input_nodes", "in", sub.inputs),
        ("output_nodes", "out", sub.outputs),
    ):
        try:
            entries = optional_list(attributes, key, f"graph {key}")
        except Invalid as exc:
            raise GraphValidationError(str(exc)) from None
        for i, entry in enumerate(entries):
            where = f"graph {key}[{i}]"
            if not isinstance(entry, Mapping) or "id" not in entry:
                msg = f'{where} must be {{"id": alias, "node": node id, ...}}'
                raise GraphValidationError(msg)
            alias = node_id(entry["id"], f"{where}.id")
            extra = entry.get("link_attributes")
            if extra is None:
                extra = {}
            if not isinstance(extra, Mapping):
                msg = f"{where}.link_attributes must be an object"
                raise GraphValidationError(msg)
            table.setdefault(alias, [])
            # What an alias names is checked when a link into or out of this
            # graph uses it, as ewokscore does: the graphs its dump() writes
            # keep the aliases of their sub-graphs, with the ids those nodes
            # had there, and its own tests have aliases that name no node.
            target = entry.get("node")
            if target is None:
                sub.broken[side, alias] = f"{where} names no node"
                continue
            target = node_id(target, f"{where}.node")
            if target in children:
                try:
                    found = _resolve(
                        children[target], entry.get("sub_node"), side, where
                    )
                except GraphValidationError as exc:
                    sub.broken[side, alias] = str(exc)
                    continue
                budget.spend_elements(len(found))
                table[alias] += [((target, n), {**a, **extra}) for n, a in found]
            elif target in local:
                table[alias].append((target, extra))
            else:
                msg = f"{where}.node {quote(target)} is not a node of the graph"
                sub.broken[side, alias] = msg
    return nodes, links, sub


def _subgraph(
    item: Mapping[str, Any],
    gid: NodeId,
    base_dir: str | None,
    read: Reader,
    stack: tuple[str, ...],
    budget: Budget,
) -> tuple[dict[NodeId, Node], list[Link], _Sub]:
    """The nodes and links of graph node ``gid``, with their ids prefixed."""
    identifier = item.get("task_identifier")
    if len(stack) >= _limits.MAX_NESTING:
        msg = (
            f"node {quote(gid)}: graph nodes nest more than {_limits.MAX_NESTING} "
            f"levels deep"
        )
        raise GraphValidationError(msg, node_id=gid)
    budget.spend_elements(1)
    if isinstance(identifier, Mapping):
        document, sub_dir, key = identifier, base_dir, f"<inline {quote(gid)}>"
    elif isinstance(identifier, str) and identifier:
        path = os.path.normpath(os.path.join(base_dir or os.getcwd(), identifier))
        if path in stack:
            msg = f"node {quote(gid)}: graph file {quote(path)} includes itself"
            raise GraphValidationError(msg, node_id=gid)
        try:
            document, sub_dir, values = read(path)
        except GraphValidationError:
            raise  # it names the file
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            reason = exc.strerror if isinstance(exc, OSError) else exc
            msg = f"node {quote(gid)}: cannot read sub-graph {quote(path)}: {reason}"
            raise GraphValidationError(msg, node_id=gid) from exc
        budget.spend_values(values)
        key = path
    else:
        msg = (
            f"node {quote(gid)}: a graph node's task_identifier must be a graph file "
            f"path or an inline graph, got {quote(identifier)}"
        )
        raise GraphValidationError(msg, node_id=gid)
    try:
        nodes, links, sub = _flatten(document, sub_dir, read, (*stack, key), budget)
    except GraphValidationError as exc:
        msg = f"in sub-graph node {quote(gid)}: {exc}"
        raise GraphValidationError(msg, node_id=gid) from exc
    # Each level of nesting makes its nodes and links again, with longer ids.
    budget.spend_elements(len(nodes) + len(links))
    prefixed: dict[NodeId, Node] = {
        (gid, nid): _in_parent(node, (gid, nid)) for nid, node in nodes.items()
    }
    # The graph node's own attributes go to the sub-graph's input nodes.
    inherited = {key: item[key] for key in _INHERITED if key in item}
    try:
        for key in ("force_start_node", "default_error_node"):
            if key in inherited:
                inherited[key] = flag(item, key)
    except Invalid as exc:
        msg = f"node {quote(gid)}: {exc}"
        raise GraphValidationError(msg, node_id=gid) from None
    as_port = {"id": item.get("id"), "task_type": "ppfport"}
    as_port["default_inputs"] = item.get("default_inputs")
    defaults = parse_node(as_port, 0, base_dir).default_inputs
    # Resolved only when there is something to pass on, as in ewokscore.
    inputs = []
    if inherited or defaults:
        inputs = _resolve(sub, None, "in", f"node {quote(gid)}")
    budget.spend_elements(len(inputs) * len(defaults))
    for nid, _ in inputs:
        node = prefixed[gid, nid]
        changes: dict[str, Any] = dict(inherited)
        if defaults:
            changes["default_inputs"] = {**node.default_inputs, **defaults}
        prefixed[gid, nid] = attrs.evolve(node, **changes)
    links = [
        attrs.evolve(link, source=(gid, link.source), target=(gid, link.target))
        for link in links
    ]
    return prefixed, links, sub


def _in_parent(node: Node, new_id: NodeId) -> Node:
    """A node of a sub-graph, as its parent sees it.

    The sub-graph's default error nodes are wired inside it already: in the
    parent they are nodes like any other (ewokscore drops the attribute).
    """
    if not node.default_error_node:
        return attrs.evolve(node, id=new_id)
    extra = {k: v for k, v in node.extra.items() if k != "default_error_attributes"}
    return attrs.evolve(node, id=new_id, default_error_node=False, extra=extra)


def _resolve(
    sub: _Sub, reference: Any, side: str, where: str
) -> list[tuple[NodeId, Mapping[str, Any]]]:
    """The sub-graph nodes (local ids) a sub_source/sub_target names."""
    aliases = sub.inputs if side == "in" else sub.outputs
    if reference is None:
        if aliases:
            _check_aliases(sub, side, aliases, where)
            return [pair for pairs in aliases.values() for pair in pairs]
        ids = sub.starts if side == "in" else sub.ends
        return [(nid, {}) for nid in ids]
    try:
        ref = normalise_id(reference)
    except Invalid as exc:
        msg = f"{where}: sub-graph reference {exc}"
        raise GraphValidationError(msg) from None
    if isinstance(ref, tuple) and len(ref) == 1:
        ref = ref[0]  # a path of one step
    if ref in aliases:
        _check_aliases(sub, side, [ref], where)
        return list(aliases[ref])
    if ref in sub.ids:
        return [(ref, {})]
    if ref in sub.children:
        return [
            ((ref, n), a) for n, a in _resolve(sub.children[ref], None, side, where)
        ]
    if isinstance(ref, tuple) and ref[0] in sub.children:
        rest = ref[1] if len(ref) == 2 else ref[1:]
        found = _resolve(sub.children[ref[0]], rest, side, where)
        return [((ref[0], n), a) for n, a in found]
    kind = "input_nodes" if side == "in" else "output_nodes"
    msg = (
        f"{where}: {quote(reference)} is neither a node nor an {kind} alias of "
        f"the sub-graph"
    )
    raise GraphValidationError(msg)


def _check_aliases(sub: _Sub, side: str, aliases: Iterable[NodeId], where: str) -> None:
    for alias in aliases:
        problem = sub.broken.get((side, alias))
        if problem is not None:
            msg = f"{where}: alias {quote(alias)} of the sub-graph: {problem}"
            raise GraphValidationError(msg)


def _expand_link(
    item: Any, index: int, children: Mapping[NodeId, _Sub], budget: Budget
) -> list[Any]:
    """A link, or the links it stands for when it touches graph nodes."""
    if not isinstance(item, Mapping) or "source" not in item or "target" not in item:
        budget.spend_elements(1)
        return [item]  # parse_link says what is wrong
    source = node_id(item["source"], f"links[{index}].source")
    target = node_id(item["target"], f"links[{index}].target")
    where = describe_link(index, source, target)
    ends: list[list[tuple[NodeId, Mapping[str, Any]]]] = []
    for node, key, side in (
        (source, "sub_source", "out"),
        (target, "sub_target", "in"),
    ):
        if node in children:
            found = _resolve(children[node], item.get(key), side, where)
            ends.append([((node, n), a) for n, a in found])
        elif item.get(key) is not None:
            end = "source" if side == "out" else "target"
            msg = f"{where}: {key} is only meaningful when the {end} is a graph node"
            raise GraphValidationError(msg, link_index=index)
        else:
            ends.append([(node, {})])
    budget.spend_elements(len(ends[0]) * len(ends[1]))
    expanded = []
    for new_source, source_attributes in ends[0]:
        for new_target, target_attributes in ends[1]:
            # What the link itself says wins over the link_attributes of the
            # input_nodes/output_nodes aliases it goes through.
            attributes = {**source_attributes, **target_attributes, **item}
            attributes["source"], attributes["target"] = new_source, new_target
            expanded.append(attributes)
    return expanded


def _default_error_links(
    nodes: Mapping[NodeId, Node], links: list[Link], version: str, budget: Budget
) -> list[Link]:
    """Links from every node without an error handler to each default error
    node of one level of the graph, as ewokscore's ``load_graph`` makes them.

    Nodes that already have an ``on_error`` link (those of a sub-graph wired
    to its own default error node included), the default error nodes
    themselves and what they feed get none.  A link's attributes are the
    handler's ``default_error_attributes``, with ``on_error`` set, and
    ``map_all_data`` unless they map data themselves.
    """
    handlers = [node for node in nodes.values() if node.default_error_node]
    if not handlers:
        return []
    successors: dict[NodeId, list[NodeId]] = {}
    handled = set()
    for link in links:
        successors.setdefault(link.source, []).append(link.target)
        if link.on_error:
            handled.add(link.source)
    # No links from a handler, or from what it feeds, back to the handler:
    # they would make it part of a loop that runs again on every failure.
    downstream = {node.id for node in handlers}
    todo = deque(downstream)
    while todo:
        for target in successors.get(todo.popleft(), ()):
            if target not in downstream:
                downstream.add(target)
                todo.append(target)
    sources = [node for node in nodes.values() if node.id not in downstream]
    sources = [node for node in sources if node.id not in handled]
    budget.spend_elements(len(handlers) * len(sources))
    new: list[Link] = []
    for handler in handlers:
        attributes = handler.extra.get("default_error_attributes")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, Mapping):
            msg = (
                f"node {quote(handler.id)}: default_error_attributes must be an object"
            )
            raise GraphValidationError(msg, node_id=handler.id)
        item = {**attributes, "on_error": True, "target": handler.id}
        if "map_all_data" not in item and "data_mapping" not in item:
            item["map_all_data"] = True
        for node in sources:
            item["source"] = node.id
            new.append(parse_link(item, len(links) + len(new), version, nodes))
    return new
