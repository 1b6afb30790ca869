"""Collaboration tests of loops: an in-process backend, Trio's virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_wf.workflow import (
    LoopLimitError,
    NodeEvent,
    NodeStatus,
    WorkflowExecutionError,
    aexecute_graph,
)

from .helpers import InProcess, graph, link, method
from .test_walker import RandomDelays

PPF = "_ppfdict"


def ppf(node_id: Any, task: str, **attributes: Any) -> dict[str, Any]:
    node = method(node_id, task, **attributes)
    node["task_type"] = "ppfmethod"
    return node


def when(value: Any) -> dict[str, Any]:
    return {"conditions": [{"source_output": "too_small", "value": value}]}


def counter(limit: int = 5, else_value: Any = False) -> Any:
    """init -> inc -> check -> (too small) inc; check -> (else) done."""
    return graph(
        [
            {"id": "init", "task_type": "ppfport"},
            ppf("inc", "ppf_increment"),
            ppf(
                "check",
                "ppf_classify",
                inputs={"limit": limit},
                conditions_else_value=else_value,
            ),
            {"id": "done", "task_type": "ppfport"},
        ],
        [
            link("init", "inc", map_all_data=True),
            link("inc", "check", map_all_data=True),
            link("check", "inc", map_all_data=True, **when(True)),
            link("check", "done", map_all_data=True, **when(else_value)),
        ],
    )


async def test_counter_loop_gives_the_same_result_every_run(
    autojump_clock: Any,
) -> None:
    """A loop counting to 5 ends the same way whatever the tasks' timing."""
    results = []
    for seed in range(5):
        events: list[NodeEvent] = []
        result = await aexecute_graph(
            counter(),
            inputs=[{"id": "init", "name": "value", "value": 0}],
            context=RandomDelays(seed),
            on_event=events.append,
        )
        results.append(result)
        starts = [(e.node_id, e.iteration) for e in events if e.kind == "start"]
        assert starts == [
            ("init", 1),
            *[(node, n) for n in range(1, 6) for node in ("inc", "check")],
            ("done", 1),
        ]
    assert results == [{PPF: {"value": 5, "limit": 5, "too_small": False}}] * 5


async def test_loop_with_an_else_branch(
    autojump_clock: Any, backend: InProcess
) -> None:
    """The else condition leaves the loop; the loop's nodes keep their last outputs."""
    result = await aexecute_graph(
        counter(limit=3, else_value="else"),
        inputs=[{"id": "init", "name": "value", "value": 1}],
        context=backend,
        outputs=[{"all": True}],
        merge_outputs=False,
    )
    assert result["inc"] == {PPF: {"value": 3, "limit": 3, "too_small": True}}
    assert result["check"] == {PPF: {"value": 3, "limit": 3, "too_small": False}}
    assert result["done"] == result["check"]
    assert trio.current_time() == 4  # inc, check, inc, check; ports take no time


async def test_self_loop_with_force_start_node(
    autojump_clock: Any, backend: InProcess
) -> None:
    """ewoks' example: a node looping on itself while a condition holds."""
    document = graph(
        [
            ppf(
                "c",
                "ppf_step",
                inputs={"value": 0, "limit": 4},
                force_start_node=True,
            )
        ],
        [link("c", "c", map_all_data=True, **when(True))],
    )
    result = await aexecute_graph(document, context=backend)
    assert result == {PPF: {"value": 4, "limit": 4, "too_small": False}}


async def test_rounds_run_side_by_side(autojump_clock: Any, backend: InProcess) -> None:
    """A fan inside a loop: each round's nodes run together, rounds one after
    the other; data from the latest round wins over data from outside."""
    tiles = range(3)
    nodes = [method("src", "identity", inputs={"value": 0})]
    nodes += [method(f"t{i}", "add", inputs={"b": 1}) for i in tiles]
    nodes += [method("sum", "total"), ppf("next", "ppf_below", inputs={"limit": 9})]
    links = [link("src", f"t{i}", ("return_value", "a")) for i in tiles]
    links += [link(f"t{i}", "sum", ("return_value", i)) for i in tiles]
    links += [link("sum", "next", ("return_value", "value"))]
    links += [
        link(
            "next",
            f"t{i}",
            ("value", "a"),
            conditions=[{"source_output": "again", "value": True}],
        )
        for i in tiles
    ]
    starts: list[tuple[Any, float]] = []
    result = await aexecute_graph(
        graph(nodes, links),
        context=backend,
        outputs=[{"id": "sum"}],
        on_event=lambda e: (
            e.kind == "start" and starts.append((e.node_id, trio.current_time()))
        ),
    )
    # Round 1: tiles 0+1 each, sum 3, next: 3 < 9, again; round 2: tiles
    # 3+1 each, sum 12, next: 12 >= 9, the loop ends.
    assert result == {"return_value": 12}
    assert backend.peak == 3
    assert sorted(starts, key=lambda start: (start[1], start[0])) == [
        ("src", 0),
        *[(f"t{i}", 1) for i in tiles],
        ("sum", 2),
        ("next", 3),
        *[(f"t{i}", 4) for i in tiles],
        ("sum", 5),
        ("next", 6),
    ]


async def test_loop_exceeding_the_guard(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A loop that never ends fails after max_iterations runs of a node,
    naming the loop; the error is not handled by on_error links."""
    document = counter(limit=10**9)
    document["nodes"].append(method("h", "handler"))
    document["links"].append(link("inc", "h", on_error=True, map_all_data=True))
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(
            document,
            inputs=[{"id": "init", "name": "value", "value": 0}],
            context=backend,
            max_iterations=10,
        )
    error = info.value
    cause = error.__cause__
    assert isinstance(cause, LoopLimitError)
    assert cause.nodes == ("check", "inc")  # graph order: by id inside a loop
    assert cause.max_iterations == 10
    assert error.node_id == "inc"
    assert "loop ['check', 'inc'] did not end: node 'inc' would run" in str(error)
    assert error.statuses["done"] is NodeStatus.NOT_TRIGGERED
    assert error.outputs["check"] == {
        PPF: {"value": 10, "limit": 10**9, "too_small": True}
    }
    assert backend.calls == 20
    with pytest.raises(ValueError, match="max_iterations must be a positive int"):
        await aexecute_graph(document, context=backend, max_iterations=0)


async def test_failure_in_a_loop_ends_it(
    autojump_clock: Any, backend: InProcess
) -> None:
    """An unhandled failure ends the loop after its round; what follows the
    loop is skipped, and the error names the failed node."""
    document = counter()
    document["nodes"][2]["task_identifier"] = "tests.workflow.tasks.ppf_fail_at"
    document["nodes"][2]["default_inputs"].append({"name": "at", "value": 3})
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(
            document,
            inputs=[{"id": "init", "name": "value", "value": 0}],
            context=backend,
        )
    assert info.value.node_id == "check"
    assert str(info.value.__cause__) == "failed at 3"
    assert info.value.statuses["done"] is NodeStatus.SKIPPED
    assert info.value.statuses["inc"] is NodeStatus.SUCCEEDED
    assert backend.calls == 6  # inc and check, 3 times each


async def test_a_loop_after_a_failure_is_skipped(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A loop whose only way in comes from a failed node runs nothing; its
    nodes and what follows are skipped."""
    document = counter()
    document["nodes"][0] = method("init", "fail")
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document, context=backend)
    assert info.value.node_id == "init"
    statuses = info.value.statuses
    assert [statuses[n] for n in ("inc", "check", "done")] == [NodeStatus.SKIPPED] * 3
    assert backend.calls == 1
