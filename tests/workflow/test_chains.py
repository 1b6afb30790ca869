"""Collaboration tests of chains (`trio_wf.workflow._chains`) with a fake backend.

`Chains` runs each chain in this process, as a `trio_wf._dask.DaskContext`
would on a cluster: all its calls at once, each taking the previous result.
tests/test_dask.py runs chains on real clusters.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from trio_wf.workflow import (
    NodeEvent,
    WorkflowExecutionError,
    aexecute_graph,
    load_graph,
)
from trio_wf.workflow._chains import MAX_CHAIN, plan_chain
from trio_wf.workflow._tasks import TaskRunner
from trio_wf.workflow._walker import Run

from .helpers import InProcess, graph, link, method

RV = "return_value"


class Chains(InProcess):
    """`InProcess`, plus ``start_chain``: the calls of a chain run in turn."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__(delay)
        self.chains: list[int] = []
        self.closed = 0

    def start_chain(self, calls: list[tuple[Any, tuple[Any, ...]]]) -> Any:
        self.chains.append(len(calls))
        return _Chain(self, calls)


class _Chain:
    def __init__(self, backend: Chains, calls: list[tuple[Any, tuple[Any, ...]]]):
        self.backend = backend
        self.calls = calls
        self.previous: Any = None

    async def result(self, n: int) -> Any:
        await trio.sleep(self.backend.delay)
        fn, args = self.calls[n]
        self.previous = fn(*args) if n == 0 else fn(*args, self.previous)
        return self.previous

    def duration(self, n: int) -> float:
        return self.backend.delay

    def close(self) -> None:
        self.backend.closed += 1


def adders(n: int, **first: Any) -> Any:
    nodes = [method(0, "add", inputs={"a": 1, **first})]
    nodes += [method(i, "add", inputs={"b": 1}) for i in range(1, n)]
    return graph(nodes, [link(i, i + 1, (RV, "a")) for i in range(n - 1)])


async def test_a_chain_runs_as_one_with_the_same_results_and_events(
    autojump_clock: Any,
) -> None:
    """Five chained nodes: one chain, the walker's results, and each node's
    start and end in order, one after the other; a node's duration is the one
    its worker measured (a call in this process, no virtual time), not the
    second the chain took to hand it back."""
    events: list[NodeEvent] = []
    backend = Chains()
    results = await aexecute_graph(
        adders(5), context=backend, on_event=events.append, outputs=[{"all": True}]
    )
    assert results == await aexecute_graph(
        adders(5), context=InProcess(), outputs=[{"all": True}]
    )
    assert results == {RV: 5}
    assert backend.chains == [5]
    assert backend.calls == 0
    assert [(e.kind, e.node_id) for e in events] == [
        (kind, i) for i in range(5) for kind in ("queued", "start", "end")
    ]
    durations = [e.duration for e in events if e.kind == "end"]
    assert len(durations) == 5
    assert all(duration is not None and duration < 0.5 for duration in durations)


async def test_a_failing_node_ends_the_chain(autojump_clock: Any) -> None:
    """The node that fails is reported, the ones after it are skipped."""
    document = adders(4)
    document["nodes"][1] = method(1, "fail", inputs={"message": "no"})
    events: list[NodeEvent] = []
    backend = Chains()
    with pytest.raises(WorkflowExecutionError, match="no") as info:
        await aexecute_graph(document, context=backend, on_event=events.append)
    assert info.value.node_id == 1
    assert [(e.kind, e.node_id) for e in events] == [
        ("queued", 0),
        ("start", 0),
        ("end", 0),
        ("queued", 1),
        ("start", 1),
        ("error", 1),
    ]
    assert backend.closed == 1


async def test_a_timeout_names_the_chained_node_that_runs(autojump_clock: Any) -> None:
    """Cancelled in its third node, the chain names that node."""
    backend = Chains(delay=10)
    with pytest.raises(TimeoutError, match=r"nodes \[2\] were running"):
        await aexecute_graph(adders(5), context=backend, timeout=25)
    assert backend.closed == 1


def plan(document: Any, first: Any = 0, backend: Any = None) -> list[Any]:
    loaded = load_graph(document)
    run = Run(loaded, TaskRunner(backend or Chains(), None), None, 10)
    i = list(loaded.nodes).index(first)
    return [run.nodes[step.node].id for step in plan_chain(run, i, {})]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (adders(4), [1, 2, 3]),
        (adders(MAX_CHAIN + 5), list(range(1, MAX_CHAIN))),
        # A join needs both sources: not decided by one of them alone.
        (
            graph(
                [method(0, "pid"), method(1, "pid"), method(2, "total")],
                [link(0, 2, (RV, 0)), link(1, 2, (RV, 1))],
            ),
            [],
        ),
        # A condition, an error handler, another output: the walker decides.
        (
            graph(
                [method(0, "pid"), method(1, "identity")],
                [
                    link(
                        0,
                        1,
                        (RV, "value"),
                        conditions=[{"source_output": RV, "value": 1}],
                    )
                ],
            ),
            [],
        ),
        (
            graph(
                [method(0, "pid"), method(1, "identity")],
                [link(0, 1, on_error=True)],
            ),
            [],
        ),
        (
            graph(
                [method(0, "kwargs"), method(1, "identity")],
                [link(0, 1, ("x", "value"))],
            ),
            [],
        ),
        # Not a method node.
        (
            graph(
                [method(0, "pid"), method(1, "ppf_none", task_type="ppfmethod")],
                [link(0, 1, map_all_data=True)],
            ),
            [],
        ),
        # All outputs, and a whole-outputs mapping, are fine.
        (
            graph(
                [method(0, "pid"), method(1, "kwargs"), method(2, "identity")],
                [link(0, 1, map_all_data=True), link(1, 2, (None, "value"))],
            ),
            [1, 2],
        ),
        # A fan: no chain, or its other successors would wait for it.
        (
            graph(
                [method(0, "pid"), method(1, "identity"), method(2, "identity")],
                [link(0, 1, (RV, "value")), link(0, 2, (RV, "value"))],
            ),
            [],
        ),
        # A gap in the positional inputs: the walker reports it.
        (
            graph(
                [method(0, "pid"), method(1, "total")],
                [link(0, 1, (RV, 1))],
            ),
            [],
        ),
    ],
)
def test_what_a_chain_takes(document: Any, expected: list[Any]) -> None:
    """Only the nodes that one predecessor's success decides, with data the
    worker can make."""
    assert plan(document) == expected


def test_no_chain_without_start_chain() -> None:
    """A backend without start_chain runs node by node."""
    assert plan(adders(3), backend=InProcess()) == []
