"""The ``inputs=`` and ``outputs=`` options: selecting nodes, overriding inputs.

Both take ewoks-style lists of dicts whose selector picks nodes: ``"id"``,
``"label"``, ``"task_identifier"`` (matched as a suffix) or ``"all"``.  Both are
checked before anything runs; collecting the selected outputs after a run is
`._results`' job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._util import quote
from ._graph import Graph, InputName, Node, NodeId
from ._parse import input_name, node_id

SELECTORS = ("id", "label", "task_identifier")

OutputsSpec = Sequence[Mapping[str, Any]]
#: Per ``outputs=`` item: the selected node ids, the output name to keep (None:
#: all) and its new name (None: unchanged).
Selection = list[tuple[list[NodeId], str | None, str | None]]


def select_nodes(
    graph: Graph, item: Mapping[str, Any], where: str, default: Iterable[NodeId]
) -> list[NodeId]:
    """The ids of the nodes ``item`` selects (``default`` if it has no selector).

    Raises:
        ValueError: the item's id, label or task identifier matches no node.
    """
    nodes = graph.nodes
    if "id" in item:
        nid = node_id(item["id"], f"{where}.id")
        if nid not in nodes:
            msg = f"{where} selects node {quote(nid)}, which is not in the graph"
            raise ValueError(msg)
        return [nid]
    if "label" in item:
        selected = [n.id for n in nodes.values() if n.label == item["label"]]
        what = f"label {quote(item['label'])}"
    elif "task_identifier" in item:
        suffix = item["task_identifier"]
        selected = [
            n.id
            for n in nodes.values()
            if isinstance(suffix, str)
            and n.task_identifier is not None
            and n.task_identifier.endswith(suffix)
        ]
        what = f"task_identifier {quote(suffix)}"
    elif item.get("all"):
        return list(graph.analysis.order)
    else:
        return list(default)
    if not selected:
        msg = f"{where} selects {what}, which no node of the graph has"
        raise ValueError(msg)
    return selected


def apply_inputs(
    graph: Graph, inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any]
) -> Graph:
    """A copy of ``graph`` whose nodes' ``default_inputs`` are overridden.

    Raises:
        ValueError: an item is malformed or selects no node.
    """
    if isinstance(inputs, Mapping):
        inputs = [{"name": name, "value": value} for name, value in inputs.items()]
    checked: object = inputs  # callers may pass anything
    if isinstance(checked, (str, bytes)) or not isinstance(checked, Sequence):
        msg = f"inputs must be a list of dicts or a dict, got {type(checked).__name__}"
        raise TypeError(msg)
    updates: dict[NodeId, dict[InputName, Any]] = {}
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        entry: object = item
        if not isinstance(entry, Mapping) or "name" not in item or "value" not in item:
            msg = (
                f'{where} must be {{"name": ..., "value": ..., selector}}, '
                f"got {quote(item)}"
            )
            raise ValueError(msg)
        name = input_name(item["name"], f"{where}.name")
        for nid in select_nodes(graph, item, where, graph.analysis.start_nodes):
            updates.setdefault(nid, {})[name] = item["value"]
    if not updates:
        return graph
    nodes: dict[NodeId, Node] = dict(graph.nodes)
    for nid, values in updates.items():
        node = nodes[nid]
        nodes[nid] = attrs.evolve(
            node, default_inputs={**node.default_inputs, **values}
        )
    return attrs.evolve(graph, nodes=nodes)


def output_selection(graph: Graph, outputs: OutputsSpec | None) -> Selection:
    """Check the ``outputs`` option before anything runs."""
    if outputs is None:
        outputs = [{"all": False}]
    checked: object = outputs  # callers may pass anything
    if isinstance(checked, (str, bytes, Mapping)) or not isinstance(checked, Sequence):
        msg = f"outputs must be a list of dicts, got {type(checked).__name__}"
        raise TypeError(msg)
    selection: Selection = []
    for i, item in enumerate(outputs):
        where = f"outputs[{i}]"
        entry: object = item
        if not isinstance(entry, Mapping):
            msg = f"{where} must be a dict, got {quote(item)}"
            raise ValueError(msg)
        nodes = select_nodes(graph, item, where, graph.analysis.end_nodes)
        name, new_name = item.get("name"), item.get("new_name")
        if new_name is not None and name is None:
            msg = f"{where} has a new_name but no name to rename"
            raise ValueError(msg)
        selection.append((nodes, name, new_name))
    return selection
