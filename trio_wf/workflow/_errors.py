"""The errors of the workflow engine, and the failure record on_error links carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._util import shorten

if TYPE_CHECKING:
    from ._events import NodeStatus
    from ._graph import NodeId


class GraphValidationError(ValueError):
    """A graph is malformed; raised by `load_graph` before anything runs.

    The message names the offending node or link and says what to change; it
    quotes at most a part of each value of the graph, and is cut (in the middle)
    if it is longer than 2000 characters.

    Attributes:
        node_id: the id of the offending node, if one is to blame.
        link_index: the position of the offending link in the graph's ``links``
            list, if one is to blame.
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: NodeId | None = None,
        link_index: int | None = None,
    ) -> None:
        super().__init__(shorten(message))
        self.node_id = node_id
        self.link_index = link_index

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_validation_error, (str(self), self.node_id, self.link_index))


def _rebuild_validation_error(
    message: str, node_id: NodeId | None, link_index: int | None
) -> GraphValidationError:
    return GraphValidationError(message, node_id=node_id, link_index=link_index)


class TaskInputError(ValueError):
    """The inputs a node received cannot be passed to its task.

    For example positional inputs ``0`` and ``2`` without ``1``, or a positional
    input given to a ``ppfmethod`` task.  Raised as the ``__cause__`` of a
    `WorkflowExecutionError`, like any other node failure.
    """


class LoopLimitError(RuntimeError):
    """A loop of the graph did not end within ``max_iterations``.

    Raised as the ``__cause__`` of a `WorkflowExecutionError` that names the
    node which would have run once too many; an ``on_error`` link does not
    handle it.

    Attributes:
        nodes: the ids of the loop's nodes.
        max_iterations: the limit: how many times each node of a loop may run.
    """

    def __init__(
        self, message: str, *, nodes: tuple[NodeId, ...], max_iterations: int
    ) -> None:
        super().__init__(message)
        self.nodes = nodes
        self.max_iterations = max_iterations

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_loop_error, (str(self), self.nodes, self.max_iterations))


def _rebuild_loop_error(
    message: str, nodes: tuple[NodeId, ...], max_iterations: int
) -> LoopLimitError:
    return LoopLimitError(message, nodes=nodes, max_iterations=max_iterations)


class WorkflowExecutionError(RuntimeError):
    """A node of a workflow failed, and no ``on_error`` link handled the failure.

    The message names the first failed node (in the graph's topological order):
    its label, id and task identifier, and quotes what its error says (up to
    1000 characters); ``__cause__`` is the exception the task raised (or
    `trio_wf.BrokenWorkerError` if its worker died).  Independent branches ran
    to the end before this was raised; descendants of the failed node were
    skipped.

    Attributes:
        node_id: id of the first failed node.
        label: its display label.
        task_identifier: its task identifier (``None`` for ``ppfport``).
        failures: every unhandled failure, node id to exception, in the graph's
            order.
        outputs: the outputs of every node that completed, node id to output dict.
        statuses: the `NodeStatus` of every node.
        results: what the run would have returned (the selected, possibly merged
            outputs), from the nodes that completed.
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: NodeId,
        label: str,
        task_identifier: str | None,
        failures: Mapping[NodeId, BaseException],
        outputs: Mapping[NodeId, Mapping[str, Any]],
        statuses: Mapping[NodeId, NodeStatus],
        results: Mapping[Any, Any],
    ) -> None:
        super().__init__(shorten(message))
        self.node_id = node_id
        self.label = label
        self.task_identifier = task_identifier
        self.failures = failures
        self.outputs = outputs
        self.statuses = statuses
        self.results = results

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            "node_id": self.node_id,
            "label": self.label,
            "task_identifier": self.task_identifier,
            "failures": self.failures,
            "outputs": self.outputs,
            "statuses": self.statuses,
            "results": self.results,
        }
        return (_rebuild_execution_error, (str(self), state))


def _rebuild_execution_error(
    message: str, state: dict[str, Any]
) -> WorkflowExecutionError:
    return WorkflowExecutionError(message, **state)
