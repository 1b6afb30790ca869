"""What a run reports about its nodes: their final status, and events as they go."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Literal, final

import attrs

from ._graph import NodeId


class NodeStatus(str, enum.Enum):
    """What became of a node in a run (see `WorkflowExecutionError.statuses`)."""

    #: Not reached: the run was cancelled, or timed out, before.
    PENDING = "pending"
    #: Its task was running when the run was cancelled or timed out.
    RUNNING = "running"
    #: Its task returned; its outputs are available.
    SUCCEEDED = "succeeded"
    #: Its task raised, its worker died, or its inputs could not be assembled.
    FAILED = "failed"
    #: Not run because a node upstream failed.
    SKIPPED = "skipped-ancestor-failed"
    #: Not run because none of its links fired (a condition did not hold, or
    #: the error handler's source did not fail).
    NOT_TRIGGERED = "not-triggered"


@final
@attrs.frozen
class NodeEvent:
    """One step of a node, passed to the ``on_event`` callback of a run.

    Attributes:
        kind: ``"start"`` when the node's inputs are complete and its task is
            submitted (it may still wait for a worker), ``"end"`` when the task
            returned, ``"error"`` when the node failed, ``"cached"`` when its
            outputs were read from the ``cache_dir`` of an earlier run instead
            (no ``"start"`` event then).
        node_id: the node's id.
        label: its display label.
        time: wall-clock time of the event, as ``time.time()`` gives it.
        worker_pid: the process id of the worker that ran the task, on ``"end"``
            events of tasks that ran in a worker (and on ``"error"`` events for a
            worker crash); otherwise ``None``.
        duration: seconds since the ``"start"`` event, on ``"end"`` and
            ``"error"`` events (on ``"cached"`` events, the time reading the
            outputs took); measured with Trio's clock.
        error: the exception, on ``"error"`` events.
        iteration: how many times the node has started in this run, this time
            included: 1, except for the nodes of loops.
    """

    kind: Literal["start", "end", "error", "cached"]
    node_id: NodeId
    label: str
    time: float
    worker_pid: int | None = None
    duration: float | None = None
    error: BaseException | None = None
    iteration: int = 1


#: The type of the ``on_event`` callback of a run.
EventCallback = Callable[[NodeEvent], object]
