"""Start nodes of a graph where every node has an incoming link, as ewokscore
chooses them, and the required inputs of a task class.

When no node is free of incoming links and none has ``force_start_node``,
ewokscore starts from the ``class`` nodes that have no required incoming link
and whose default inputs cover every required input of their class (its
``analysis.start_nodes``).  Knowing a class's required inputs means importing
it, so only a trusted graph gets this; an untrusted one is refused with a
message that says how to trust it or what to add.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from _trio_wf_worker._tasks import is_ewoks_task_class

from ._analysis import analyse
from ._errors import GraphValidationError
from ._graph import GraphAnalysis, Link, Node


def required_input_names(task: object) -> list[str] | None:
    """The required inputs of a class task (ewokscore's or trio_wf's
    protocol), or None if ``task`` is not a class task."""
    if is_ewoks_task_class(task):
        return sorted(task.required_input_names())  # type: ignore[attr-defined]
    names = getattr(task, "input_names", None)
    return list(names) if isinstance(names, (list, tuple)) else None


def has_start_node(nodes: Sequence[Node], links: Sequence[Link]) -> bool:
    """Whether a node starts the graph without knowing any task: one with
    ``force_start_node``, or without incoming links."""
    targets = {link.target for link in links}
    return not nodes or any(
        node.force_start_node or node.id not in targets for node in nodes
    )


def analyse_inferring_starts(
    nodes: list[Node],
    links: list[Link],
    trusted: bool,
    resolve: Callable[[Node], Any],
) -> tuple[list[Node], GraphAnalysis]:
    """Analyse a graph without start node: its nodes, those ewokscore would
    start from marked ``force_start_node``, and its analysis.

    ``resolve`` imports a node's task; it is called for ``class`` nodes only,
    and only if ``trusted``.
    """
    classes = {node.id for node in nodes if node.task_type == "class"}
    if not trusted or not classes:
        # Structural errors (an endless cycle) come first, as for any graph;
        # without class nodes, this raises "no start node" itself.
        analyse(_forced(nodes, classes), links)
        msg = (
            "the graph has no start node: every node has an incoming link.  "
            "ewokscore would start from the class nodes whose default inputs "
            "cover their class's required inputs, but knowing those means "
            "importing the classes: load the graph trusted (load_graph(..., "
            "trusted=True), trio-wf run --trusted) if you trust its code, or "
            "set force_start_node on the node where execution begins"
        )
        raise GraphValidationError(msg)
    candidates = set()
    for node in nodes:
        if node.id in classes:
            required = required_input_names(resolve(node)) or []
            if set(required) <= set(node.default_inputs):
                candidates.add(node.id)
    # Which links are required does not depend on start nodes, so the first
    # analysis tells which candidates have a required incoming link; the
    # second, without them, is final.
    while candidates:
        forced = _forced(nodes, candidates)
        analysis = analyse(forced, links)
        blocked = {
            links[k].target
            for k, required in enumerate(analysis.required)
            if required and links[k].target in candidates
        }
        if not blocked:
            return forced, analysis
        candidates -= blocked
    # No node qualifies: this raises the "no start node" error.
    return nodes, analyse(nodes, links)


def _forced(nodes: list[Node], ids: set[Any]) -> list[Node]:
    return [
        attrs.evolve(node, force_start_node=True) if node.id in ids else node
        for node in nodes
    ]
