"""Collaboration tests of the walker: an in-process backend, Trio's virtual clock.

Every task call takes one second of virtual time (see `InProcess`), so
``trio.current_time()`` shows which nodes ran side by side, on any machine.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

import pytest
import trio

from trio_wf.workflow import (
    GraphValidationError,
    NodeEvent,
    NodeStatus,
    TaskInputError,
    WorkflowExecutionError,
    aexecute_graph,
)

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack

from .helpers import InProcess, R, Ts, graph, link, method

RV = "return_value"


def chain(n: int) -> Any:
    nodes = [method(0, "add", inputs={"a": 1})]
    nodes += [method(i, "add", inputs={"b": 1}) for i in range(1, n)]
    return graph(nodes, [link(i, i + 1, (RV, "a")) for i in range(n - 1)])


DIAMOND = graph(
    [
        method("a", "add", inputs={"a": 1}),
        method("b", "add", inputs={"b": 10}),
        method("c", "add", inputs={"b": 100}),
        method("d", "add"),
    ],
    [
        link("a", "b", (RV, "a")),
        link("a", "c", (RV, "a")),
        link("b", "d", (RV, "a")),
        link("c", "d", (RV, "b")),
    ],
)


async def test_chain(backend: InProcess, autojump_clock: Any) -> None:
    """A chain runs node after node and returns the end node's outputs."""
    assert await aexecute_graph(chain(5), context=backend) == {RV: 5}
    assert trio.current_time() == 5
    assert backend.peak == 1
    assert backend.kill_on_cancel == {True}


async def test_diamond_runs_branches_side_by_side(
    backend: InProcess, autojump_clock: Any
) -> None:
    """b and c start together once a is done; d waits for both."""
    starts: dict[Any, float] = {}

    def on_event(event: NodeEvent) -> None:
        if event.kind == "start":
            starts[event.node_id] = trio.current_time()

    result = await aexecute_graph(DIAMOND, context=backend, on_event=on_event)
    assert result == {RV: 11 + 101}
    assert starts == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert trio.current_time() == 3
    assert backend.peak == 2


async def test_fan_out_fan_in_under_max_workers(
    backend: InProcess, autojump_clock: Any
) -> None:
    """A 10-wide fan runs 3 at a time with max_workers=3, then merges."""
    nodes = [method("src", "identity", inputs={"value": 1})]
    nodes += [method(i, "add", inputs={"b": i}) for i in range(10)]
    nodes += [method("sum", "join", inputs={"sep": "+"})]
    links = [link("src", i, (RV, "a")) for i in range(10)]
    links += [link(i, "sum", (RV, i)) for i in range(10)]
    result = await aexecute_graph(graph(nodes, links), context=backend, max_workers=3)
    assert result == {RV: "+".join(str(1 + i) for i in range(10))}
    assert backend.peak == 3
    assert trio.current_time() == 1 + 4 + 1  # ceil(10 / 3) rounds in between


def conditional(else_value: Any = None) -> Any:
    """a outputs its input; b if it is True, c otherwise; d after either."""
    return graph(
        [
            method("a", "identity", conditions_else_value=else_value),
            method("b", "join", inputs={0: "b"}),
            method("c", "join", inputs={0: "c"}),
            method("d", "join", inputs={"sep": "<"}),
        ],
        [
            link("a", "b", conditions=[{"source_output": RV, "value": True}]),
            link("a", "c", conditions=[{"source_output": RV, "value": else_value}]),
            link("b", "d", (RV, 0)),
            link("c", "d", (RV, 0)),
        ],
    )


@pytest.mark.parametrize(
    ("value", "else_value", "taken"),
    [(True, None, "b"), (False, None, "c"), (7, None, "c"), (True, "else", "b")],
)
async def test_conditions_with_else(
    autojump_clock: Any, backend: InProcess, value: Any, else_value: Any, taken: str
) -> None:
    """Exactly one branch runs; the merge node runs once, after it."""
    events: list[tuple[str, Any]] = []
    result = await aexecute_graph(
        conditional(else_value),
        inputs=[{"id": "a", "name": "value", "value": value}],
        outputs=[{"all": True}],
        merge_outputs=False,
        context=backend,
        on_event=lambda e: events.append((e.kind, e.node_id)),
    )
    assert result == {"a": {RV: value}, taken: {RV: taken}, "d": {RV: taken}}
    assert [e for e in events if e[0] == "start"] == [
        ("start", "a"),
        ("start", taken),
        ("start", "d"),
    ]


async def test_else_is_the_complement_of_other_values(
    autojump_clock: Any, backend: InProcess
) -> None:
    """An else condition holds for values no other condition on the output tests."""
    document = graph(
        [method("a", "identity")] + [method(n, "join", inputs={0: n}) for n in "xyz"],
        [
            link("a", "x", conditions=[{"source_output": RV, "value": 1}]),
            link("a", "y", conditions=[{"source_output": RV, "value": 2}]),
            link("a", "z", conditions=[{"source_output": RV, "value": None}]),
        ],
    )
    for value, expected in [(1, "x"), (2, "y"), (3, "z"), (None, "z")]:
        result = await aexecute_graph(
            document, inputs={"value": value}, context=backend, merge_outputs=False
        )
        assert result == {expected: {RV: expected}}


async def test_error_link_carries_the_inputs_and_the_failure(
    autojump_clock: Any, backend: InProcess
) -> None:
    """As ewoksppf: the failed task's inputs, WorkflowException and
    WorkflowExceptionInstance; and trio_wf's node_id, exception, traceback."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "fail", inputs={"message": "bad input"}),
            method("h", "kwargs"),
        ],
        [link("a", "b", (RV, "x")), link("b", "h", on_error=True, map_all_data=True)],
    )
    received = (await aexecute_graph(document, context=backend))[RV]
    assert set(received) == {
        "message",
        "x",
        "WorkflowException",
        "WorkflowExceptionInstance",
        "node_id",
        "exception",
        "traceback",
    }
    assert (received["message"], received["x"]) == ("bad input", 1)
    error = received["WorkflowExceptionInstance"]
    assert isinstance(error, ValueError)
    assert received["exception"] is error
    assert received["node_id"] == "b"
    failure = received["WorkflowException"]
    assert failure == {"errorMessage": "bad input", "traceBack": failure["traceBack"]}
    assert "".join(failure["traceBack"]) == received["traceback"]
    assert received["traceback"].endswith("ValueError: bad input\n")


async def test_error_handler_receives_the_failure(
    autojump_clock: Any, backend: InProcess
) -> None:
    """An on_error link carries node id, exception and traceback; the run succeeds."""
    document = graph(
        [
            method("a", "fail", inputs={"message": "bad input"}),
            method("b", "add"),
            method("h", "handler"),
        ],
        [link("a", "b", (RV, "a")), link("a", "h", on_error=True, map_all_data=True)],
    )
    result = await aexecute_graph(document, context=backend, merge_outputs=False)
    assert result == {
        "h": {
            RV: {
                "failed_node": "a",
                "error_type": "ValueError",
                "error_message": "bad input",
                "traceback_mentions_fail": True,
            }
        }
    }


async def test_default_error_node_handles_every_node(
    autojump_clock: Any, backend: InProcess
) -> None:
    """default_error_node receives a failure from any node without a handler."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "fail"),
            method("h", "handler", default_error_node=True),
        ],
        [link("a", "b")],
    )
    result = await aexecute_graph(document, context=backend)
    assert result[RV]["failed_node"] == "b"


FAILING_DIAMOND = graph(
    [
        method("a", "add", inputs={"a": 1}),
        method("b", "fail", label="the failing one", inputs={"message": "no"}),
        method("c", "add", inputs={"b": 2}),
        method("d", "add"),
        method("e", "add", inputs={"a": 5}),
        method("f", "fail", inputs={"message": "late"}),
    ],
    [
        link("a", "b", (RV, "a")),
        link("a", "c", (RV, "a")),
        link("b", "d", (RV, "a")),
        link("c", "d", (RV, "b")),
        link("e", "f"),
    ],
)


async def test_failure_names_the_node_and_keeps_completed_work(
    autojump_clock: Any,
    backend: InProcess,
) -> None:
    """One error names the first failed node; other branches finished first."""
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(FAILING_DIAMOND, context=backend)
    error = info.value
    assert str(error).startswith(
        "execution failed for task 'the failing one' (node id 'b', "
        "task 'tests.workflow.tasks.fail'): ValueError: no"
    )
    assert "nodes ['f'] failed too" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert (error.node_id, error.label) == ("b", "the failing one")
    assert error.task_identifier == "tests.workflow.tasks.fail"
    assert list(error.failures) == ["b", "f"]
    assert error.outputs == {"a": {RV: 1}, "c": {RV: 3}, "e": {RV: 5}}
    assert error.statuses == {
        "a": NodeStatus.SUCCEEDED,
        "b": NodeStatus.FAILED,
        "c": NodeStatus.SUCCEEDED,
        "d": NodeStatus.SKIPPED,
        "e": NodeStatus.SUCCEEDED,
        "f": NodeStatus.FAILED,
    }
    assert error.results == {}  # the end nodes, d and f, did not complete
    assert NodeStatus.SKIPPED.value == "skipped-ancestor-failed"


async def test_without_raising_failures_are_in_the_result_as_in_ewoksppf(
    autojump_clock: Any,
    backend: InProcess,
) -> None:
    """raise_on_error=False: each failed node's entry gets its exception as
    WorkflowExceptionInstance, and the message and traceback lines as
    WorkflowException, whether it was selected or not."""
    result = await aexecute_graph(
        FAILING_DIAMOND,
        context=backend,
        raise_on_error=False,
        outputs=[{"id": "a"}, {"id": "c"}],
        merge_outputs=False,
    )
    assert list(result) == ["a", "b", "c", "f"]  # graph order
    assert result["a"] == {RV: 1}
    assert result["c"] == {RV: 3}
    for node_id, message in (("b", "no"), ("f", "late")):
        entry = result[node_id]
        assert set(entry) == {"WorkflowException", "WorkflowExceptionInstance"}
        error = entry["WorkflowExceptionInstance"]
        assert isinstance(error, ValueError)
        assert str(error) == message
        assert entry["WorkflowException"]["errorMessage"] == message
        lines = entry["WorkflowException"]["traceBack"]
        assert lines[0].startswith("Traceback")
        assert lines[-1] == f"ValueError: {message}\n"


async def test_without_raising_merged_results_carry_the_run_error(
    autojump_clock: Any,
    backend: InProcess,
) -> None:
    """Merged: WorkflowExceptionInstance is the error raise_on_error=True
    raises, beside the outputs of the end nodes that completed."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "fail", inputs={"message": "no"}),
        ]
    )
    result = await aexecute_graph(document, context=backend, raise_on_error=False)
    assert set(result) == {RV, "WorkflowException", "WorkflowExceptionInstance"}
    assert result[RV] == 1
    error = result["WorkflowExceptionInstance"]
    assert isinstance(error, WorkflowExecutionError)
    assert error.node_id == "b"
    assert isinstance(error.__cause__, ValueError)
    assert error.results == {RV: 1}
    failure = result["WorkflowException"]
    assert failure["errorMessage"] == str(error)
    assert "ValueError: no\n" in failure["traceBack"]
    assert failure["traceBack"][-1].startswith("trio_wf.workflow.WorkflowExecution")
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document, context=backend)
    assert str(info.value) == str(error)
    assert await aexecute_graph(DIAMOND, context=backend, raise_on_error=False) == {
        RV: 112
    }


async def test_input_priority(autojump_clock: Any, backend: InProcess) -> None:
    """Link data beats inputs=, which beats default_inputs."""
    document = graph(
        [
            method("a", "identity", inputs={"value": "from a"}),
            method("b", "kwargs", inputs={"x": "default", "y": "default", "z": "d"}),
        ],
        [link("a", "b", (RV, "x"))],
    )
    result = await aexecute_graph(
        document,
        inputs=[
            {"id": "b", "name": "x", "value": "input"},
            {"id": "b", "name": "y", "value": "input"},
        ],
        context=backend,
    )
    assert result == {RV: {"x": "from a", "y": "input", "z": "d"}}


async def test_mappings_whole_output_and_map_all_data(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A null source_output passes the output dict; map_all_data passes by name."""
    document = graph(
        [
            method("a", "identity", inputs={"value": 3}),
            method("b", "kwargs"),
            method("c", "kwargs"),
        ],
        [link("a", "b", (None, "everything")), link("a", "c", map_all_data=True)],
    )
    result = await aexecute_graph(document, context=backend, merge_outputs=False)
    assert result == {
        "b": {RV: {"everything": {RV: 3}}},
        "c": {RV: {RV: 3}},
    }


async def test_positional_inputs(autojump_clock: Any, backend: InProcess) -> None:
    """Int and digit-string names are positions; a gap fails the node."""
    ok = graph([method("a", "join", inputs={"1": "b", 0: "a", "sep": "-"})])
    assert await aexecute_graph(ok, context=backend) == {RV: "a-b"}
    gap = graph([method("a", "join", inputs={0: "a", 2: "c"})])
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(gap, context=backend)
    assert isinstance(info.value.__cause__, TaskInputError)
    assert "positional inputs [0, 2] but not 1:" in str(info.value)


async def test_outputs_selection(autojump_clock: Any, backend: InProcess) -> None:
    """outputs= picks nodes and names, renames, and merges in graph order."""

    async def run(**options: Any) -> dict[Any, Any]:
        return await aexecute_graph(DIAMOND, context=backend, **options)

    assert await run(outputs=[{"all": True}]) == {RV: 112}
    assert await run(outputs=[{"id": "b"}, {"id": "a"}]) == {RV: 11}
    assert await run(
        outputs=[{"id": "b", "name": RV, "new_name": "b"}, {"id": "c", "name": RV}],
        merge_outputs=False,
    ) == {"b": {"b": 11}, "c": {RV: 101}}
    assert await run(outputs=[{"id": "a", "name": "missing"}]) == {}
    calls = backend.calls
    with pytest.raises(ValueError, match=r"outputs\[0\] selects node 'nope'"):
        await run(outputs=[{"id": "nope"}])
    with pytest.raises(ValueError, match="new_name but no name"):
        await run(outputs=[{"id": "a", "new_name": "x"}])
    assert backend.calls == calls  # checked before anything ran


async def test_ppf_tasks(autojump_clock: Any, backend: InProcess) -> None:
    """ppfmethod passes one dict along; ppfport is the identity; conditions
    look inside _ppfdict."""
    document = graph(
        [
            {
                "id": "inc",
                "task_type": "ppfmethod",
                "task_identifier": "tests.workflow.tasks.ppf_increment",
                "default_inputs": [
                    {"name": "value", "value": 1},
                    {"name": "keep", "value": "k"},
                ],
            },
            {"id": "port", "task_type": "ppfport"},
            {
                "id": "check",
                "task_type": "ppfmethod",
                "task_identifier": "tests.workflow.tasks.ppf_classify",
            },
            method("small", "identity"),
        ],
        [
            link("inc", "port", map_all_data=True),
            link("port", "check", map_all_data=True),
            link(
                "check",
                "small",
                ("value", "value"),
                conditions=[{"source_output": "too_small", "value": True}],
            ),
        ],
    )
    result = await aexecute_graph(
        document, context=backend, outputs=[{"all": True}], merge_outputs=False
    )
    assert result == {
        "inc": {"_ppfdict": {"value": 2, "keep": "k"}},
        "port": {"_ppfdict": {"value": 2, "keep": "k"}},
        "check": {"_ppfdict": {"value": 2, "keep": "k", "too_small": True}},
        "small": {RV: 2},
    }


async def test_ppfmethod_must_return_a_dict(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A ppfmethod returning something else fails its node, naming it."""
    document = graph(
        [
            {
                "id": "p",
                "task_type": "ppfmethod",
                "task_identifier": "tests.workflow.tasks.ppf_none",
            }
        ]
    )
    with pytest.raises(
        WorkflowExecutionError, match="must return a dict, got NoneType"
    ):
        await aexecute_graph(document, context=backend)


async def test_condition_on_a_missing_output_fails_the_target(
    autojump_clock: Any,
    backend: InProcess,
) -> None:
    """A condition on an output the source does not have is the target's failure."""
    document = graph(
        [method("a", "add", inputs={"a": 1}), method("b", "add")],
        [link("a", "b", conditions=[{"source_output": "nope", "value": 1}])],
    )
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document, context=backend)
    assert info.value.node_id == "b"
    assert "link 0 ('a' -> 'b') tests output 'nope' of node 'a'" in str(info.value)


async def test_force_start_node_runs_even_if_no_link_fired(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A forced start node with incoming links runs once they settle."""
    document = graph(
        [
            method("a", "identity", inputs={"value": False}),
            method("b", "join", inputs={0: "b"}, force_start_node=True),
        ],
        [link("a", "b", conditions=[{"source_output": RV, "value": True}])],
    )
    assert await aexecute_graph(document, context=backend) == {RV: "b"}


async def test_events(backend: InProcess, autojump_clock: Any) -> None:
    """start/end/error events carry node, label, duration in Trio time."""
    events: list[NodeEvent] = []
    document = graph(
        [method("a", "add", inputs={"a": 1}, label="A"), method("b", "fail")],
        [link("a", "b")],
    )
    await aexecute_graph(
        document, context=backend, on_event=events.append, raise_on_error=False
    )
    assert [(e.kind, e.node_id, e.label, e.duration) for e in events] == [
        ("queued", "a", "A", None),
        ("start", "a", "A", None),
        ("end", "a", "A", 1.0),
        ("queued", "b", "b", None),
        ("start", "b", "b", None),
        ("error", "b", "b", 1.0),
    ]
    assert isinstance(events[-1].error, ValueError)
    assert all(e.worker_pid is not None for e in events if e.kind != "queued")


async def test_events_tell_waiting_for_a_worker_from_running(
    backend: InProcess, autojump_clock: Any
) -> None:
    """Four 1 s nodes on two workers: two start at 0, two at 1 after waiting
    1 s; each ran for 1 s (its wait is reported apart, as queued)."""
    events: list[tuple[str, Any, float, float | None, float | None]] = []

    def on_event(e: NodeEvent) -> None:
        events.append((e.kind, e.node_id, trio.current_time(), e.duration, e.queued))

    nodes = [method(n, "add", inputs={"a": 1}) for n in "abcd"]
    await aexecute_graph(
        graph(nodes), context=backend, max_workers=2, on_event=on_event
    )
    starts = {e[1]: (e[2], e[4]) for e in events if e[0] == "start"}
    assert sorted(starts.values()) == [(0, 0), (0, 0), (1, 1), (1, 1)]
    ends = [e for e in events if e[0] == "end"]
    assert {(e[3], e[4]) for e in ends} == {(1.0, 0), (1.0, 1)}
    assert [e[0] for e in events].count("queued") == 4
    assert all(e[2] == 0 for e in events if e[0] == "queued")


class RandomDelays(InProcess):
    """Each call takes a random time: results must not depend on it."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
    ) -> R:
        self.delay = self.random.random()
        return await super().run_sync(
            sync_fn, *args, kill_on_cancel=kill_on_cancel, limiter=limiter
        )


async def test_results_do_not_depend_on_timing(autojump_clock: Any) -> None:
    """End nodes writing the same output merge in graph order, every time."""
    nodes = [method("src", "identity", inputs={"value": 0})]
    nodes += [method(f"n{i:02}", "add", inputs={"b": i}) for i in range(20)]
    links = [link("src", f"n{i:02}", (RV, "a")) for i in range(20)]
    document = graph(nodes, links)
    results = [
        await aexecute_graph(document, context=RandomDelays(seed)) for seed in range(5)
    ]
    assert results == [{RV: 19}] * 5


async def test_invalid_graph_runs_nothing(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A malformed graph raises before any task is submitted."""
    document = graph([method("a", "record")], [link("a", "missing")])
    with pytest.raises(GraphValidationError, match="'missing' is not a node"):
        await aexecute_graph(document, context=backend)
    assert backend.calls == 0


async def test_timeout_and_cancellation(autojump_clock: Any) -> None:
    """timeout raises TimeoutError naming running nodes; a caller's cancel
    cancels the run the same way."""
    slow = InProcess(delay=100)
    with pytest.raises(
        TimeoutError,
        match=r"'test' did not finish within 5 s; nodes \[0\] were running",
    ):
        await aexecute_graph(chain(2), context=slow, timeout=5)
    assert trio.current_time() == 5
    with trio.move_on_after(3) as scope:
        await aexecute_graph(chain(2), context=slow)
    assert scope.cancelled_caught
    assert slow.running == 0


async def test_options_are_checked(autojump_clock: Any, backend: InProcess) -> None:
    """Bad options raise ValueError naming the option."""
    options: list[tuple[dict[str, Any], str]] = [
        ({"max_workers": 0}, "max_workers must be a positive int"),
        ({"timeout": -1}, "timeout must be a non-negative"),
        ({"worker_type": "spawn"}, "either context or worker_type"),
    ]
    for kwargs, message in options:
        with pytest.raises(ValueError, match=message):
            await aexecute_graph(DIAMOND, context=backend, **kwargs)
    assert backend.calls == 0


async def test_empty_graph(autojump_clock: Any, backend: InProcess) -> None:
    """A graph without nodes returns an empty result."""
    assert await aexecute_graph(graph([]), context=backend) == {}
