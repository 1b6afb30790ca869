"""The walker: runs a graph's nodes in a nursery as soon as their inputs are known.

Semantics (documented in :doc:`/workflows`): a node is decided once every one of
its incoming links is *settled*, fired or not.  It then runs if its required
links all fired and at least one link fired (or it is a start node), and is
otherwise skipped; either way its outgoing links settle in turn.  Waiting for
every incoming link, not just the required ones, is what makes the result
independent of timing: outside loops a node never runs twice, and never before
an optional branch that could still feed it has finished.

A loop (a strongly connected component) is decided as a whole, once the links
into it have settled, and then runs in rounds (`._loops`); its outgoing links
settle when a round triggers nothing.  What a run knows, and how one node runs,
is `._state.RunState`, which `Run` extends with the settling.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import trio

from ._chains import Step, calls, plan_chain
from ._events import NodeStatus
from ._graph import InputName
from ._loops import run_rounds
from ._state import RunState
from ._tasks import Ran


class Run(RunState):
    """One execution of a graph: its state, and the walk that drives it."""

    # Set by run(): nodes decided to run by the latest settling, not yet
    # started, and the nursery every node and loop of the run starts in.
    _ready: list[int]
    _nursery: trio.Nursery

    async def run(self) -> None:
        """Run the graph to the end: every node succeeds, fails or is skipped."""
        analysis = self.analysis
        self._ready = []
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
        self._nursery.start_soon(self._run_node, i, self.prepare(i))

    def _launch_ready(self) -> None:
        ready, self._ready = self._ready, []
        for i in ready:
            self._launch(i)

    async def _run_node(self, i: int, inputs: dict[InputName, Any] | Exception) -> None:
        while True:
            steps = plan_chain(self, i, inputs)
            if steps:
                assert not isinstance(inputs, Exception)
                await self._run_chain(i, inputs, steps)
            else:
                await self.execute(i, inputs)
                self._settle(i)
            if not self._ready:
                return
            # Run one of the nodes this one made ready in this task: down a
            # chain, that saves a task start and a pass of the scheduler.
            i = self._ready.pop(0)
            self._launch_ready()
            inputs = self.prepare(i)

    async def _run_chain(
        self, first: int, inputs: dict[InputName, Any], steps: list[Step]
    ) -> None:
        """Run ``first`` and the nodes its success makes run, as one chain.

        They are all on the cluster at once; each is recorded and settled in
        turn, as the walker would run them, and a node that does not succeed
        ends the chain (the ones after it are released, and settle skipped).
        """
        limiter = self.runner.limiter
        async with limiter if limiter is not None else nullcontext():
            chain = self.runner.backend.start_chain(  # type: ignore[attr-defined]
                calls(self, first, inputs, steps)
            )
            try:
                for n, i in enumerate([first, *(step.node for step in steps)]):
                    if n:
                        # plan_chain's promise: the success of n - 1 made it ready.
                        assert i in self._ready
                        self._ready.remove(i)
                        self._launch_ready()
                    outcome = functools.partial(self._chained_outputs, chain, n, i)
                    await self.execute(i, {}, outcome)
                    self._settle(i)
                    if self.status[i] is not NodeStatus.SUCCEEDED:
                        break
            finally:
                chain.close()

    async def _chained_outputs(self, chain: Any, n: int, i: int) -> Ran:
        """Chained method node ``i``'s outputs, pid and span, as
        `TaskRunner.run` returns them.

        The calls of a chain come back in batches: a node's times are the ones
        measured where it ran (its span; for a failed one, the duration the
        chain measured), not the time since the node before it came back.
        """
        try:
            pid, value, span = await chain.result(n)
        except BaseException:
            ran = chain.duration(n)
            if ran is not None and i in self.started:
                self.started[i] = (trio.current_time() - ran, self.started[i][1])
            raise
        return {"return_value": value}, pid, span

    def _settle(self, first: int) -> None:
        """Settle the outgoing links of a decided node, and what that decides.

        Iterative, not recursive: a skip can cascade down a 10,000-node chain.
        """
        todo = deque([first])
        while todo:
            i = todo.popleft()
            status = self.status[i]
            key = self.keys.get(i)
            else_memo: dict[str, bool] = {}
            for k in self.analysis.out_links[i]:
                data = self.link_data(i, k, status, else_memo)
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

    async def _run_loop(self, number: int) -> None:
        """Run a loop (see `._loops`), then settle the links out of it."""
        await run_rounds(self, number)
        analysis = self.analysis
        loop = analysis.loop_info[number]
        received = self.received
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
