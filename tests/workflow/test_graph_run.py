"""Collaboration tests of open_graph_run: an in-process backend, virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_wf.workflow import (
    NodeEvent,
    NodeStatus,
    WorkflowExecutionError,
    open_graph_run,
)

from .helpers import InProcess, graph, link, method

RV = "return_value"
CHAIN = graph(
    [method("a", "add", inputs={"a": 1}), method("b", "add", inputs={"b": 2})],
    [link("a", "b", (RV, "a"))],
)
FAILING = graph(
    [method("a", "add", inputs={"a": 1}), method("b", "fail"), method("c", "add")],
    [link("a", "b"), link("b", "c", (RV, "a"))],
)


async def test_events_arrive_as_the_run_goes(
    backend: InProcess, autojump_clock: Any
) -> None:
    """Each event is received while the run goes on; the result follows."""
    seen: list[tuple[str, str, float]] = []
    called: list[NodeEvent] = []
    async with open_graph_run(CHAIN, context=backend, on_event=called.append) as run:
        with pytest.raises(RuntimeError, match="the run has not finished"):
            _ = run.result
        async for event in run.events:
            seen.append((event.node_id, event.kind, trio.current_time()))
        assert run.result == {RV: 3}
    assert seen == [
        ("a", "queued", 0.0),
        ("a", "start", 0.0),
        ("a", "end", 1.0),
        ("b", "queued", 1.0),
        ("b", "start", 1.0),
        ("b", "end", 2.0),
    ]
    assert [(e.node_id, e.kind) for e in called] == [e[:2] for e in seen]


async def test_the_run_error_is_raised_by_result_and_on_exit(
    backend: InProcess, autojump_clock: Any
) -> None:
    """A failed run ends the events; result and the block's exit raise its error."""
    from_result: list[BaseException] = []

    async def read_all() -> None:
        async with open_graph_run(FAILING, context=backend) as run:
            kinds = [(event.node_id, event.kind) async for event in run.events]
            assert kinds[-1] == ("b", "error")
            try:
                _ = run.result
            except WorkflowExecutionError as exc:
                from_result.append(exc)

    with pytest.raises(WorkflowExecutionError, match="node id 'b'") as info:
        await read_all()
    assert from_result == [info.value]
    assert info.value.statuses["c"] is NodeStatus.SKIPPED


async def test_leaving_without_reading_waits_for_the_run(
    backend: InProcess, autojump_clock: Any
) -> None:
    """Events nobody reads are dropped; the block's end waits for the result."""
    async with open_graph_run(CHAIN, context=backend) as run:
        pass
    assert trio.current_time() == 2.0
    assert run.result == {RV: 3}


async def test_an_error_in_the_block_cancels_the_run(
    backend: InProcess, autojump_clock: Any
) -> None:
    """The block's own exception comes out as it is, not in a group, and the
    run is cancelled: no task runs after it."""

    async def stop_at_first_end() -> None:
        async with open_graph_run(CHAIN, context=backend) as run:
            async for event in run.events:
                if event.kind == "end":
                    raise KeyError("stop")

    with pytest.raises(KeyError, match="stop") as info:
        await stop_at_first_end()
    assert isinstance(info.value, KeyError)
    assert trio.current_time() == 1.0  # b had started, and was cancelled
    assert backend.running == 0


async def test_cancelling_the_caller_cancels_the_run(
    backend: InProcess, autojump_clock: Any
) -> None:
    """A cancelled scope around the block stops the run like aexecute_graph."""
    with trio.move_on_after(1.5) as scope:
        async with open_graph_run(CHAIN, context=backend) as run:
            async for _ in run.events:
                pass
    assert scope.cancelled_caught
    assert backend.calls == 2
    assert backend.running == 0
