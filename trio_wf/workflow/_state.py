"""`RunState`: what one run of a graph knows, and how it runs one node.

The state is a set of arrays indexed by node position (and by link number), as
`GraphAnalysis` numbers them: each node's status, outputs, failure and run
count, and the data each link delivered.  Running a node here means assembling
its inputs, asking the result cache, running its task through the
`TaskRunner`, recording the outcome and reporting it as a `NodeEvent`.  What
links fire as a result is `link_data`; when a node runs at all is decided by
the walker (`._walker`) outside loops and by `._loops` inside them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

import trio_wf

from ._cache import Provenance, ResultCache
from ._errors import TaskInputError
from ._events import EventCallback, NodeEvent, NodeStatus
from ._graph import Graph, InputName
from ._linkdata import conditions_hold, failure_data, node_inputs
from ._tasks import Ran, TaskRunner


class RunState:
    """The state of one execution of a graph, and the running of its nodes."""

    def __init__(
        self,
        graph: Graph,
        runner: TaskRunner,
        on_event: EventCallback | None,
        max_iterations: int,
        cache: ResultCache | None = None,
    ) -> None:
        self.graph = graph
        self.cache = cache
        self.runner = runner
        self.on_event = on_event
        self.max_iterations = max_iterations
        analysis = graph.analysis
        self.analysis = analysis
        self.nodes = list(graph.nodes.values())
        self.links = graph.links
        n = len(self.nodes)
        self.status = [NodeStatus.PENDING] * n
        self.outputs: dict[int, dict[str, Any]] = {}
        self.failures: dict[int, BaseException] = {}
        # The inputs each failed node was given: its on_error links carry them.
        self.failed_inputs: dict[int, Mapping[InputName, Any]] = {}
        # Failures that on_error links cannot handle (a loop that did not end).
        self.always_unhandled: set[int] = set()
        # Links still to settle, per node outside loops and per loop.
        self.unsettled = [len(links) for links in analysis.in_links]
        self.loop_unsettled = [len(loop.entries) for loop in analysis.loop_info]
        # Per target, the links that fired: link number -> (round, data).  The
        # round orders the data of a loop's links; it is 0 everywhere else.
        self.received: list[dict[int, tuple[int, Mapping[str, Any]]]] = [
            {} for _ in range(n)
        ]
        # A link that did not fire because its source failed (or was skipped).
        self.blocked = [False] * n
        # Errors found while settling a link (a condition on a missing output),
        # reported as failures of the link's target, by link number.
        self.link_errors: list[dict[int, Exception]] = [{} for _ in range(n)]
        self.runs = [0] * n
        # The round in which each node of a loop last ran: results merge the
        # nodes of a loop in that order, so its last outputs win (as the last
        # node to finish wins in ewoksppf).
        self.last_round = [0] * n
        # With a cache: each node's key, while its outputs are current; the
        # key of the data each link delivered; keys computed by prepare.
        self.keys: dict[int, str] = {}
        self.received_keys: list[dict[int, str | None]] = (
            [{} for _ in range(n)] if cache is not None else []
        )
        self._pending_keys: dict[int, str | None] = {}
        # When each node now on a worker got there (Trio's clock): a node
        # handed to the backend and not in here is still waiting for one.
        # Also the worker's pid, if known.
        self.started: dict[int, tuple[float, int | None]] = {}

    def prepare(self, i: int) -> dict[InputName, Any] | Exception:
        """The node's inputs, or the error that fails it; consumes link errors."""
        errors = self.link_errors[i]
        if errors:
            error = errors[min(errors)]
            errors.clear()
            return error
        try:
            defaults = self.nodes[i].default_inputs
            if self.cache is None:
                return node_inputs(defaults, self.received[i], self.links)
            provenance: dict[InputName, Provenance] = {}
            keys = self.received_keys[i]
            inputs = node_inputs(
                defaults, self.received[i], self.links, provenance, keys
            )
            self._pending_keys[i] = self.cache.key(self.nodes[i], provenance)
            return inputs
        except TaskInputError as exc:
            return exc

    async def execute(
        self,
        i: int,
        inputs: dict[InputName, Any] | Exception,
        outcome: Callable[[], Awaitable[Ran]] | None = None,
    ) -> None:
        """Run node ``i``'s task; record its status, outputs or failure.

        With ``outcome``, the task already runs (as part of a chain, see
        `._chains`): what it gives is awaited from there instead.
        """
        node = self.nodes[i]
        self.status[i] = NodeStatus.RUNNING
        self.runs[i] += 1
        submitted = trio.current_time()
        key = self._pending_keys.pop(i, None)
        self.keys.pop(i, None)
        if key is not None and not isinstance(inputs, Exception):
            assert self.cache is not None
            cached = await self.cache.load(key)
            if cached is not None:
                self.status[i] = NodeStatus.SUCCEEDED
                self.outputs[i] = cached
                self.failures.pop(i, None)
                self.failed_inputs.pop(i, None)
                self.keys[i] = key
                self.emit("cached", i, None, trio.current_time() - submitted)
                return
        event_error: list[BaseException] = []

        def on_start(pid: int | None) -> None:
            now = trio.current_time()
            self.started[i] = (now, pid)
            try:
                self.emit("start", i, pid, queued=now - submitted)
            except BaseException as exc:  # on_event's: it aborts the run
                event_error.append(exc)
                raise

        try:
            if isinstance(inputs, Exception):
                raise inputs
            self.emit("queued", i)
            if outcome is None:
                outputs, pid, span = await self.runner.run(node, inputs, on_start)
            else:
                # Chained: it runs as soon as the node before it has ended.
                on_start(None)
                outputs, pid, span = await outcome()
            if key is not None:
                assert self.cache is not None
                await self.cache.store(key, outputs)
        except (Exception, SystemExit) as exc:
            # Cancelled and KeyboardInterrupt go through untouched, and so do
            # the errors of on_event, which abort the run.
            if event_error and exc is event_error[0]:
                raise
            self.status[i] = NodeStatus.FAILED
            self.outputs.pop(i, None)
            self.failures[i] = exc
            self.failed_inputs[i] = {} if isinstance(inputs, Exception) else inputs
            now = trio.current_time()
            started, pid = self.started.pop(i, (now, None))
            if isinstance(exc, trio_wf.BrokenWorkerError):
                pid = exc.pid
            self.emit("error", i, pid, now - started, exc, started - submitted)
        else:
            self.status[i] = NodeStatus.SUCCEEDED
            self.outputs[i] = outputs
            self.failures.pop(i, None)
            self.failed_inputs.pop(i, None)
            if key is not None:
                self.keys[i] = key
            now = trio.current_time()
            started, _ = self.started.pop(i, (now, None))
            if span is None:
                self.emit("end", i, pid, now - started, queued=started - submitted)
            else:
                self._emit_end(i, pid, span, now - submitted)

    def _emit_end(
        self, i: int, pid: int | None, span: tuple[float, float], since_queued: float
    ) -> None:
        """Report the end of a run that its worker timed.

        The backend could not tell when the task started (a Dask cluster,
        where a node may wait in a task shared with others), so ``span``, the
        wall-clock ``(began, ended)`` the worker measured, says when it ran.
        A chained node may have run before it was queued here (its chain runs
        ahead of the walker); a worker's clock ahead of ours is taken as now.
        """
        began, ended = span
        duration = max(ended - began, 0.0)
        now = time.time()
        at = min(ended, now)
        queued = max(at - duration - (now - since_queued), 0.0)
        self.emit("end", i, pid, duration, queued=queued, at=at)

    def emit(
        self,
        kind: Any,
        i: int,
        pid: int | None = None,
        duration: float | None = None,
        error: BaseException | None = None,
        queued: float | None = None,
        at: float | None = None,
    ) -> None:
        """Report a `NodeEvent` of node ``i`` to ``on_event``, if there is one
        (``at``: its wall-clock time, if not now)."""
        if self.on_event is None:
            return
        node = self.nodes[i]
        event = NodeEvent(
            kind,
            node.id,
            node.display_label,
            time.time() if at is None else at,
            pid,
            duration,
            error,
            max(self.runs[i], 1),
            queued,
        )
        self.on_event(event)

    def unhandled(self, i: int) -> bool:
        """Whether node ``i`` failed and no ``on_error`` link handles it."""
        return i in self.failures and (
            i in self.always_unhandled
            or not any(self.links[k].on_error for k in self.analysis.out_links[i])
        )

    def link_data(
        self,
        i: int,
        k: int,
        status: NodeStatus,
        else_memo: dict[str, bool] | None = None,
    ) -> Mapping[str, Any] | None:
        """What link ``k`` carries if it fires, or None if it does not.

        ``else_memo`` is shared by the calls for one node's outgoing links
        after one run of it (see `conditions_hold`).
        """
        link = self.links[k]
        if status is NodeStatus.FAILED:
            if not link.on_error:
                return None
            inputs = self.failed_inputs.get(i, {})
            return failure_data(self.nodes[i].id, self.failures[i], inputs)
        if status is not NodeStatus.SUCCEEDED or link.on_error:
            return None
        outputs = self.outputs[i]
        if not link.conditions:
            return outputs
        else_values = self.analysis.else_values[k]
        try:
            if conditions_hold(k, link, outputs, else_values, else_memo):
                return outputs
        except TaskInputError as exc:  # a missing output, an uncomparable value
            self.link_errors[self.analysis.targets[k]][k] = exc
        return None
