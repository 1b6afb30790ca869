"""The walker: runs a graph's nodes in a nursery as soon as their inputs are known.

Semantics (documented in :doc:`/workflows`): a node is decided once every one of
its incoming links is *settled*, fired or not.  It then runs if its required
links all fired and at least one link fired (or it is a start node), and is
otherwise skipped; either way its outgoing links settle in turn.  Waiting for
every incoming link, not just the required ones, is what makes the result
independent of timing: a node never runs twice, and never before an optional
branch that could still feed it has finished.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import trio

import trio_wf

from ._errors import TaskInputError
from ._events import NodeEvent, NodeStatus
from ._graph import Graph, InputName, Link
from ._tasks import PPFDICT, run_node_task

EventCallback = Callable[[NodeEvent], object]


class Run:
    """The state of one execution of a graph."""

    def __init__(
        self,
        graph: Graph,
        backend: trio_wf.SupportsRunSync,
        limiter: trio.CapacityLimiter | None,
        on_event: EventCallback | None,
    ) -> None:
        self.graph = graph
        self.backend = backend
        self.limiter = limiter
        self.on_event = on_event
        analysis = graph.analysis
        self.nodes = list(graph.nodes.values())
        self.links = graph.links
        n = len(self.nodes)
        self.status = [NodeStatus.PENDING] * n
        self.outputs: dict[int, dict[str, Any]] = {}
        self.failures: dict[int, BaseException] = {}
        # Links still to settle, per target; the fired ones with their data.
        self.unsettled = [len(links) for links in analysis.in_links]
        self.fired: list[list[tuple[int, Mapping[str, Any]]]] = [[] for _ in range(n)]
        # A link that did not fire because its source failed (or was skipped).
        self.blocked = [False] * n
        # Errors found while settling a link (a condition on a missing output),
        # reported as failures of the link's target, by link number.
        self.link_errors: list[dict[int, Exception]] = [{} for _ in range(n)]
        self._nursery: trio.Nursery | None = None
        self._started: dict[int, float] = {}

    async def run(self) -> None:
        """Run the graph to the end: every node succeeds, fails or is skipped."""
        analysis = self.graph.analysis
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for node_id in analysis.start_nodes:
                i = analysis.index[node_id]
                if not analysis.in_links[i]:
                    self._launch(i)
            # A start node with incoming links (force_start_node) is decided
            # like any node, once its links settle; it then runs regardless.
            await trio.lowlevel.checkpoint()

    def _launch(self, i: int) -> None:
        assert self._nursery is not None
        self.status[i] = NodeStatus.RUNNING
        self._nursery.start_soon(self._run_node, i)

    async def _run_node(self, i: int) -> None:
        node = self.nodes[i]
        started = trio.current_time()
        self._emit("start", i)
        pid: int | None = None
        try:
            errors = self.link_errors[i]
            if errors:
                raise errors[min(errors)]
            inputs = self._inputs(i)
            outputs, pid = await run_node_task(node, inputs, self.backend, self.limiter)
        except (Exception, SystemExit) as exc:
            # Cancelled and KeyboardInterrupt go through untouched.
            self.status[i] = NodeStatus.FAILED
            self.failures[i] = exc
            duration = trio.current_time() - started
            pid = exc.pid if isinstance(exc, trio_wf.BrokenWorkerError) else None
            self._emit("error", i, pid, duration, exc)
        else:
            self.status[i] = NodeStatus.SUCCEEDED
            self.outputs[i] = outputs
            self._emit("end", i, pid, trio.current_time() - started)
        self._settle(i)

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
            kind, node.id, node.display_label, time.time(), pid, duration, error
        )
        self.on_event(event)

    def _settle(self, first: int) -> None:
        """Settle the outgoing links of a finished node, and what that decides.

        Iterative, not recursive: a skip can cascade down a 10,000-node chain.
        """
        analysis = self.graph.analysis
        todo = deque([first])
        while todo:
            i = todo.popleft()
            status = self.status[i]
            for k in analysis.out_links[i]:
                link = self.links[k]
                target = analysis.targets[k]
                data = self._link_data(i, k, link, status)
                if data is not None:
                    self.fired[target].append((k, data))
                elif status in (NodeStatus.FAILED, NodeStatus.SKIPPED) and not (
                    link.on_error
                ):
                    self.blocked[target] = True
                self.unsettled[target] -= 1
                if not self.unsettled[target]:
                    if self._runs(target):
                        self._launch(target)
                    else:
                        self.status[target] = (
                            NodeStatus.SKIPPED
                            if self.blocked[target]
                            else NodeStatus.NOT_TRIGGERED
                        )
                        todo.append(target)

    def _runs(self, i: int) -> bool:
        analysis = self.graph.analysis
        fired = {k for k, _ in self.fired[i]}
        if self.link_errors[i]:
            return True  # to fail, with the error
        if self.nodes[i].force_start_node:
            return not self.blocked[i]
        required = analysis.required
        return bool(fired) and all(
            k in fired for k in analysis.in_links[i] if required[k]
        )

    def _link_data(
        self, i: int, k: int, link: Link, status: NodeStatus
    ) -> Mapping[str, Any] | None:
        """What the link carries if it fires, or None if it does not."""
        if status is NodeStatus.FAILED:
            return self._failure_data(i) if link.on_error else None
        if status is not NodeStatus.SUCCEEDED or link.on_error:
            return None
        outputs = self.outputs[i]
        try:
            if self._conditions_hold(k, link, outputs):
                return outputs
        except Exception as exc:  # a missing output, an uncomparable value
            self.link_errors[self.graph.analysis.targets[k]][k] = exc
        return None

    def _conditions_hold(self, k: int, link: Link, outputs: Mapping[str, Any]) -> bool:
        else_values = self.graph.analysis.else_values[k]
        for condition, others in zip(link.conditions, else_values, strict=True):
            value = _output(outputs, condition.source_output, k, link, "tests")
            if others is None:
                if not _equal(value, condition.value):
                    return False
            elif any(_equal(value, other) for other in others):
                return False
        return True

    def _failure_data(self, i: int) -> dict[str, Any]:
        exc = self.failures[i]
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return {"node_id": self.nodes[i].id, "exception": exc, "traceback": text}

    def _inputs(self, i: int) -> dict[InputName, Any]:
        """Default inputs (with ``inputs=`` applied), then link data in link order."""
        inputs: dict[InputName, Any] = dict(self.nodes[i].default_inputs)
        for k, outputs in sorted(self.fired[i], key=lambda item: item[0]):
            link = self.links[k]
            if link.map_all_data:
                inputs.update(outputs)
            for mapping in link.data_mapping:
                if mapping.source_output is None:
                    inputs[mapping.target_input] = dict(outputs)
                else:
                    inputs[mapping.target_input] = _output(
                        outputs, mapping.source_output, k, link, "maps"
                    )
        return inputs


def _output(
    outputs: Mapping[str, Any], name: str, k: int, link: Link, verb: str
) -> Any:
    """Output ``name``, looked up in ``_ppfdict`` too (ppf tasks output only that)."""
    if name in outputs:
        return outputs[name]
    ppfdict = outputs.get(PPFDICT)
    if isinstance(ppfdict, Mapping) and name in ppfdict:
        return ppfdict[name]
    msg = (
        f"link {k} ({link.source!r} -> {link.target!r}) {verb} output {name!r} "
        f"of node {link.source!r}, which has outputs {sorted(outputs)}"
    )
    raise TaskInputError(msg)


def _equal(value: Any, expected: Any) -> bool:
    result = value == expected
    return bool(result)
