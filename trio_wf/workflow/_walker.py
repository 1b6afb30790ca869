"""The walker: runs a graph's nodes in a nursery as soon as their inputs are known.

Semantics (documented in :doc:`/workflows`): a node is decided once every one of
its incoming links is *settled*, fired or not.  It then runs if its required
links all fired and at least one link fired (or it is a start node), and is
otherwise skipped; either way its outgoing links settle in turn.  Waiting for
every incoming link, not just the required ones, is what makes the result
independent of timing: outside loops a node never runs twice, and never before
an optional branch that could still feed it has finished.

A loop (a strongly connected component) is decided as a whole, once the links
into it have settled, and then runs in rounds: the nodes triggered in one round
run, side by side, in the next; its outgoing links settle when a round triggers
nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import trio

import trio_wf

from ._cache import Provenance, ResultCache
from ._errors import LoopLimitError, TaskInputError
from ._events import NodeEvent, NodeStatus
from ._graph import Graph, InputName
from ._linkdata import conditions_hold, failure_data, node_inputs
from ._tasks import TaskRunner

EventCallback = Callable[[NodeEvent], object]
_DONE = (NodeStatus.SUCCEEDED, NodeStatus.FAILED)


class Run:
    """The state of one execution of a graph."""

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
        # With a cache: each node's key, while its outputs are current; the
        # key of the data each link delivered; keys computed by _prepare.
        self.keys: dict[int, str] = {}
        self.received_keys: list[dict[int, str | None]] = (
            [{} for _ in range(n)] if cache is not None else []
        )
        self._pending_keys: dict[int, str | None] = {}
        # Nodes decided to run by the latest settling, not yet started.
        self._ready: list[int] = []
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Run the graph to the end: every node succeeds, fails or is skipped."""
        analysis = self.analysis
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for i, missing in enumerate(self.unsettled):
                if not missing and analysis.loop_of[i] < 0:
                    self._launch(i)
            for number, missing in enumerate(self.loop_unsettled):
                if not missing:
                    nursery.start_soon(self._run_loop, number)
            # A start node with incoming links (force_start_node) is decided
            # like any node, once its links settle; it then runs regardless.
            await trio.lowlevel.checkpoint()

    # -- nodes outside loops -------------------------------------------------

    def _launch(self, i: int) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._run_node, i, self._prepare(i))

    def _launch_ready(self) -> None:
        ready, self._ready = self._ready, []
        for i in ready:
            self._launch(i)

    async def _run_node(self, i: int, inputs: dict[InputName, Any] | Exception) -> None:
        while True:
            await self._execute(i, inputs)
            self._settle(i)
            if not self._ready:
                return
            # Run one of the nodes this one made ready in this task: down a
            # chain, that saves a task start and a pass of the scheduler.
            i = self._ready.pop(0)
            self._launch_ready()
            inputs = self._prepare(i)

    def _settle(self, first: int) -> None:
        """Settle the outgoing links of a decided node, and what that decides.

        Iterative, not recursive: a skip can cascade down a 10,000-node chain.
        """
        todo = deque([first])
        while todo:
            i = todo.popleft()
            status = self.status[i]
            key = self.keys.get(i)
            for k in self.analysis.out_links[i]:
                data = self._link_data(i, k, status)
                self._settle_link(k, data, status, todo, key)

    def _settle_link(
        self,
        k: int,
        data: Mapping[str, Any] | None,
        status: NodeStatus,
        todo: deque[int],
        key: str | None = None,
    ) -> None:
        analysis = self.analysis
        target = analysis.targets[k]
        if data is not None:
            self.received[target][k] = (0, data)
            if self.cache is not None:
                self.received_keys[target][k] = key
        elif status in (NodeStatus.FAILED, NodeStatus.SKIPPED) and not (
            self.links[k].on_error
        ):
            self.blocked[target] = True
        loop = analysis.loop_of[target]
        if loop >= 0:
            self.loop_unsettled[loop] -= 1
            if not self.loop_unsettled[loop]:
                assert self._nursery is not None
                self._nursery.start_soon(self._run_loop, loop)
            return
        self.unsettled[target] -= 1
        if not self.unsettled[target]:
            if self._runs(target):
                self._ready.append(target)
            else:
                self.status[target] = (
                    NodeStatus.SKIPPED
                    if self.blocked[target]
                    else NodeStatus.NOT_TRIGGERED
                )
                todo.append(target)

    def _runs(self, i: int) -> bool:
        if self.link_errors[i]:
            return True  # to fail, with the error
        if self.nodes[i].force_start_node:
            return not self.blocked[i]
        received = self.received[i]
        required = self.analysis.required
        return bool(received) and all(
            k in received for k in self.analysis.in_links[i] if required[k]
        )

    # -- loops -----------------------------------------------------------------

    async def _run_loop(self, number: int) -> None:
        """Run a loop in rounds, then settle the links out of it."""
        analysis = self.analysis
        loop = analysis.loop_info[number]
        received = self.received
        # Round 1: the nodes that links from outside fired, and forced starts.
        triggered = [
            i
            for i in loop.nodes
            if received[i]
            or self.link_errors[i]
            or (self.nodes[i].force_start_node and not self.blocked[i])
        ]
        round_number = 0
        while triggered:
            round_number += 1
            running = [i for i in triggered if self._runs_in_loop(i, round_number)]
            over = [i for i in running if self.runs[i] >= self.max_iterations]
            if over:
                self._fail_loop(loop.nodes, over[0])
                break
            # Inputs first, for every node of the round: a node that finishes
            # early must not feed another node of the same round.
            prepared = [(i, self._prepare(i)) for i in running]
            fired: set[int] = set()
            async with trio.open_nursery() as nursery:
                for i, inputs in prepared:
                    nursery.start_soon(
                        self._run_loop_node, i, inputs, number, round_number, fired
                    )
            if any(self.unhandled(i) for i in running):
                break
            triggered = [i for i in loop.nodes if i in fired]
        self._decide_never_run(number, loop.nodes)
        todo: deque[int] = deque()
        for k in loop.exits:
            target = analysis.targets[k]
            status = self.status[analysis.sources[k]]
            data = received[target].get(k, (0, None))[1]
            # The key of the data the link delivered, not of the source's
            # latest outputs: its last round may not have fired the link.
            key = self.received_keys[target].get(k) if self.cache else None
            self._settle_link(k, data, status, todo, key)
        while todo:
            self._settle(todo.popleft())
        self._launch_ready()

    def _decide_never_run(self, number: int, members: tuple[int, ...]) -> None:
        """Members that never ran are skipped if a failure upstream, inside or
        outside the loop, kept them from running; else not triggered."""
        analysis = self.analysis
        status = self.status
        skipped = deque(
            i
            for i in members
            if status[i] is NodeStatus.FAILED
            or (status[i] is NodeStatus.PENDING and self.blocked[i])
        )
        for i in skipped:
            if status[i] is NodeStatus.PENDING:
                status[i] = NodeStatus.SKIPPED
        while skipped:
            for k in analysis.out_links[skipped.popleft()]:
                target = analysis.targets[k]
                if analysis.loop_of[target] == number and (
                    status[target] is NodeStatus.PENDING and not self.links[k].on_error
                ):
                    status[target] = NodeStatus.SKIPPED
                    skipped.append(target)
        for i in members:
            if status[i] is NodeStatus.PENDING:
                status[i] = NodeStatus.NOT_TRIGGERED

    def _runs_in_loop(self, i: int, round_number: int) -> bool:
        """Whether a triggered node runs: its required links fired, some time."""
        if self.link_errors[i]:
            return True
        if round_number == 1 and self.nodes[i].force_start_node:
            return not self.blocked[i]
        received = self.received[i]
        required = self.analysis.required
        return all(k in received for k in self.analysis.in_links[i] if required[k])

    async def _run_loop_node(
        self,
        i: int,
        inputs: dict[InputName, Any] | Exception,
        number: int,
        round_number: int,
        fired: set[int],
    ) -> None:
        await self._execute(i, inputs)
        analysis = self.analysis
        status = self.status[i]
        key = self.keys.get(i)
        for k in analysis.out_links[i]:
            target = analysis.targets[k]
            data = self._link_data(i, k, status)
            if data is not None and self.cache is not None:
                self.received_keys[target][k] = key
            if analysis.loop_of[target] == number:
                if data is not None:
                    self.received[target][k] = (round_number, data)
                if data is not None or k in self.link_errors[target]:
                    fired.add(target)
            elif data is not None:  # leaves the loop: settles when it ends
                self.received[target][k] = (0, data)

    def _fail_loop(self, members: tuple[int, ...], i: int) -> None:
        ids = [self.nodes[j].id for j in members]
        error = LoopLimitError(
            f"loop {ids} did not end: node {self.nodes[i].id!r} would run more "
            f"than max_iterations={self.max_iterations} times; check the "
            f"conditions of its links, or raise max_iterations",
            nodes=tuple(ids),
            max_iterations=self.max_iterations,
        )
        self.status[i] = NodeStatus.FAILED
        self.outputs.pop(i, None)
        self.keys.pop(i, None)
        self.failures[i] = error
        self.always_unhandled.add(i)
        self._emit("error", i, None, 0.0, error)

    def unhandled(self, i: int) -> bool:
        """Whether node ``i`` failed and no ``on_error`` link handles it."""
        return i in self.failures and (
            i in self.always_unhandled
            or not any(self.links[k].on_error for k in self.analysis.out_links[i])
        )

    # -- running one node ----------------------------------------------------

    def _prepare(self, i: int) -> dict[InputName, Any] | Exception:
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

    async def _execute(self, i: int, inputs: dict[InputName, Any] | Exception) -> None:
        """Run node ``i``'s task; record its status, outputs or failure."""
        node = self.nodes[i]
        self.status[i] = NodeStatus.RUNNING
        self.runs[i] += 1
        started = trio.current_time()
        key = self._pending_keys.pop(i, None)
        self.keys.pop(i, None)
        if key is not None and not isinstance(inputs, Exception):
            assert self.cache is not None
            cached = await self.cache.load(key)
            if cached is not None:
                self.status[i] = NodeStatus.SUCCEEDED
                self.outputs[i] = cached
                self.failures.pop(i, None)
                self.keys[i] = key
                self._emit("cached", i, None, trio.current_time() - started)
                return
        self._emit("start", i)
        try:
            if isinstance(inputs, Exception):
                raise inputs
            outputs, pid = await self.runner.run(node, inputs)
            if key is not None:
                assert self.cache is not None
                await self.cache.store(key, outputs)
        except (Exception, SystemExit) as exc:
            # Cancelled and KeyboardInterrupt go through untouched.
            self.status[i] = NodeStatus.FAILED
            self.outputs.pop(i, None)
            self.failures[i] = exc
            duration = trio.current_time() - started
            pid = exc.pid if isinstance(exc, trio_wf.BrokenWorkerError) else None
            self._emit("error", i, pid, duration, exc)
        else:
            self.status[i] = NodeStatus.SUCCEEDED
            self.outputs[i] = outputs
            self.failures.pop(i, None)
            if key is not None:
                self.keys[i] = key
            self._emit("end", i, pid, trio.current_time() - started)

    def _emit(
        self,
        kind: Any,
        i: int,
        pid: int | None = None,
        duration: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self.on_event is None:
            return
        node = self.nodes[i]
        event = NodeEvent(
            kind,
            node.id,
            node.display_label,
            time.time(),
            pid,
            duration,
            error,
            max(self.runs[i], 1),
        )
        self.on_event(event)

    # -- links -----------------------------------------------------------------

    def _link_data(
        self, i: int, k: int, status: NodeStatus
    ) -> Mapping[str, Any] | None:
        """What link ``k`` carries if it fires, or None if it does not."""
        link = self.links[k]
        if status is NodeStatus.FAILED:
            if not link.on_error:
                return None
            return failure_data(self.nodes[i].id, self.failures[i])
        if status is not NodeStatus.SUCCEEDED or link.on_error:
            return None
        outputs = self.outputs[i]
        if not link.conditions:
            return outputs
        try:
            if conditions_hold(k, link, outputs, self.analysis.else_values[k]):
                return outputs
        except Exception as exc:  # a missing output, an uncomparable value
            self.link_errors[self.analysis.targets[k]][k] = exc
        return None
