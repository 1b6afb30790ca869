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
    #: Its task was running, or waiting for a worker, when the run was
    #: cancelled or timed out.
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
        kind: ``"queued"`` when the node's inputs are complete and its task is
            handed to the backend, where it may wait for a worker; ``"start"``
            when the task reaches its worker; ``"end"`` when the task
            returned; ``"error"`` when the node failed (without a ``"start"``
            if it failed before its task reached a worker: its inputs could
            not be assembled, say); ``"cached"`` when its outputs were read
            from the ``cache_dir`` of an earlier run instead (no other event
            then).  With a backend that cannot tell when a task reaches its
            worker (a Dask cluster, a backend of your own), ``"start"``
            follows ``"queued"`` at once, and the ``"end"`` event of a task
            run by a worker (any but ``script`` and ``ppfport`` nodes)
            carries the times its worker measured: ``time`` when the task
            returned there, ``duration`` how long it ran, ``queued`` how long
            it waited after ``"queued"`` (the worker's clock, taken as now
            where it is ahead of ours).
        node_id: the node's id.
        label: its display label.
        time: wall-clock time of the event, as ``time.time()`` gives it.
        worker_pid: the process id of the worker running the task, on
            ``"start"``, ``"end"`` and ``"error"`` events of tasks that reach a
            worker (the calling process's for the thread and sequential
            backends); ``None`` where no worker is known (script and
            ``ppfport`` tasks, backends that cannot tell).
        duration: the task's run time, from its ``"start"``, on ``"end"`` and
            ``"error"`` events (0 for a node that failed before it started; on
            ``"cached"`` events, the time reading the outputs took); measured
            with Trio's clock.
        error: the exception, on ``"error"`` events.
        iteration: how many times the node has started in this run, this time
            included: 1, except for the nodes of loops.
        queued: how long the task waited for a worker, from ``"queued"`` to
            ``"start"``, on ``"start"``, ``"end"`` and ``"error"`` events.
    """

    kind: Literal["queued", "start", "end", "error", "cached"]
    node_id: NodeId
    label: str
    time: float
    worker_pid: int | None = None
    duration: float | None = None
    error: BaseException | None = None
    iteration: int = 1
    queued: float | None = None


#: The type of the ``on_event`` callback of a run.
EventCallback = Callable[[NodeEvent], object]
