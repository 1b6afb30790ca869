"""What a run returns: the selected outputs, or the error naming what failed.

After the walk, `collect_results` merges the outputs the ``outputs=`` option
selected (`._selectors`) in graph order (a loop's nodes by the round they last
ran in), from the nodes that completed, as values (ewokscore's transfer data
read back), and
`execution_error` turns the failures no ``on_error`` link handled into one
`WorkflowExecutionError`, raised, or added to the results as ewoksppf adds
them (`with_failures`).  Both read the run's final state only, so the result
does not depend on the timing of the run.
"""

from __future__ import annotations

from typing import Any

from _trio_wf_worker._ewoks_tasks import plain_values

from .._util import MESSAGE_LIMIT, quote, quote_items, shorten
from ._errors import WorkflowExecutionError
from ._events import NodeStatus
from ._graph import NodeId
from ._linkdata import ppf_failure
from ._selectors import Selection
from ._state import RunState


def collect_results(run: RunState, selection: Selection, merge: bool) -> dict[Any, Any]:
    """The selected outputs, per node, or merged in graph order."""
    analysis = run.graph.analysis
    per_node: dict[NodeId, dict[str, Any]] = {}
    for nodes, name, new_name in selection:
        for node_id in nodes:
            outputs = run.outputs.get(analysis.index[node_id])
            if outputs is None:
                continue  # the node did not complete
            values = plain_values(outputs)
            if name is not None:
                if name not in values:
                    continue
                values = {new_name if new_name is not None else name: values[name]}
            per_node.setdefault(node_id, {}).update(values)
    ordered = sorted(per_node, key=lambda node_id: _merge_key(run, node_id))
    if not merge:
        return {node_id: per_node[node_id] for node_id in ordered}
    merged: dict[Any, Any] = {}
    for node_id in ordered:
        merged.update(per_node[node_id])
    return merged


def _merge_key(run: RunState, node_id: NodeId) -> tuple[int, int, int]:
    """Graph order, except that the nodes of a loop (which come together in
    it) are ordered by the round they last ran in: its latest outputs win."""
    analysis = run.graph.analysis
    i = analysis.index[node_id]
    loop = analysis.loop_of[i]
    if loop < 0:
        return analysis.rank[i], 0, 0
    first = analysis.rank[analysis.loop_info[loop].nodes[0]]
    return first, run.last_round[i], analysis.rank[i]


def ids_with_status(run: RunState, status: NodeStatus) -> list[NodeId]:
    """The ids of the nodes in ``status``, in graph order."""
    analysis = run.graph.analysis
    order = [analysis.index[node_id] for node_id in analysis.order]
    return [run.nodes[i].id for i in order if run.status[i] is status]


def execution_error(
    run: RunState, results: dict[Any, Any]
) -> WorkflowExecutionError | None:
    """One error for the unhandled failures, the first in graph order named
    (its ``__cause__``), or None if there are none."""
    unhandled = _unhandled(run)
    if not unhandled:
        return None
    first = unhandled[0]
    node = run.nodes[first]
    cause = run.failures[first]
    # The cause's own message may be anything a task raised: a part of it.
    reason = shorten(str(cause), MESSAGE_LIMIT // 2)
    message = (
        f"execution failed for task {quote(node.display_label)} (node id "
        f"{quote(node.id)}, task {quote(node.task_identifier or node.task_type)}): "
        f"{type(cause).__name__}: {reason}"
    )
    if len(unhandled) > 1:
        others = quote_items(run.nodes[i].id for i in unhandled[1:])
        message += f" (nodes {others} failed too, see .failures)"
    error = WorkflowExecutionError(
        message,
        node_id=node.id,
        label=node.display_label,
        task_identifier=node.task_identifier,
        failures={run.nodes[i].id: run.failures[i] for i in unhandled},
        outputs={run.nodes[i].id: run.outputs[i] for i in sorted(run.outputs)},
        statuses={node.id: run.status[i] for i, node in enumerate(run.nodes)},
        results=dict(results),
    )
    error.__cause__ = cause
    return error


def with_failures(
    run: RunState,
    results: dict[Any, Any],
    error: WorkflowExecutionError,
    merge: bool,
) -> dict[Any, Any]:
    """The results of a run that failed, with the failures as ewoksppf
    reports them (``raise_on_error=False``): merged, the run's error as
    ``WorkflowExceptionInstance`` (what ``raise_on_error=True`` raises) and
    ``WorkflowException``; per node, each failed node's entry gets its own
    exception that way, in graph order among the others."""
    if merge:
        return {**results, **ppf_failure(error)}
    per_node = dict(results)
    for i in _unhandled(run):
        per_node.setdefault(run.nodes[i].id, {}).update(ppf_failure(run.failures[i]))
    ordered = sorted(per_node, key=lambda node_id: _merge_key(run, node_id))
    return {node_id: per_node[node_id] for node_id in ordered}


def _unhandled(run: RunState) -> list[int]:
    analysis = run.graph.analysis
    return [
        i
        for i in (analysis.index[node_id] for node_id in analysis.order)
        if run.unhandled(i)
    ]
