"""Contract tests: the run trace (Chrome trace-event format) from ``trio-wf run
--trace`` and ``aexecute_graph(trace=...)``, on real workers."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import WorkflowExecutionError, aexecute_graph

from .helpers import graph, link, method, run_cli

NAP = 0.3


def sleepers(count: int) -> list[Any]:
    return [method(f"n{i}", "sleep", inputs={"seconds": NAP}) for i in range(count)]


def complete_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X"]


def check_format(trace: dict[str, Any]) -> None:
    """What Perfetto and chrome://tracing need of each event."""
    assert trace["displayTimeUnit"] == "ms"
    opened: dict[Any, int] = {}
    for event in trace["traceEvents"]:
        assert {"name", "ph", "pid", "tid"} <= set(event), event
        assert isinstance(event["pid"], int)
        assert isinstance(event["tid"], int)
        if event["ph"] == "X":
            assert isinstance(event["ts"], int)
            assert isinstance(event["dur"], int)
            assert event["dur"] >= 0
        elif event["ph"] in ("b", "e"):
            key = (event["cat"], event["id"])
            if event["ph"] == "b":
                opened[key] = event["ts"]
            else:
                assert opened.pop(key) <= event["ts"]
        else:
            assert event["ph"] == "M"
            assert event["name"] in ("process_name", "thread_name")
    assert not opened


def test_cli_trace_has_every_run_on_its_worker(tmp_path: Path) -> None:
    """Four 0.3 s nodes on two worker processes, and a failing node: each run
    is on its worker's lane and lasts its run time; the waits are apart; the
    failure carries its error and traceback."""
    nodes = [*sleepers(4), method("bad", "fail", inputs={"message": "no"})]
    document = graph(nodes, [link("n0", "bad")])
    path, trace_path = tmp_path / "graph.json", tmp_path / "run.json"
    path.write_text(json.dumps(document))
    result = run_cli("run", str(path), "-n", "2", "--trace", str(trace_path))
    assert result.returncode == 1, result.stderr
    trace = json.loads(trace_path.read_text())
    check_format(trace)
    runs = complete_events(trace)
    assert sorted(e["args"]["node"] for e in runs) == ["bad", "n0", "n1", "n2", "n3"]
    workers = {e["pid"] for e in runs}
    assert len(workers) == 2
    assert trace["trio_wf"]["parent_pid"] not in workers
    for event in runs:
        if event["args"]["node"] != "bad":
            assert NAP * 1e6 <= event["dur"] < (NAP + 0.3) * 1e6
    # Never more than one run at a time on a worker.
    for pid in workers:
        spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in runs if e["pid"] == pid)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    waits = [e for e in trace["traceEvents"] if e["ph"] == "b"]
    assert waits
    assert all(e["cat"] == "queued" for e in waits)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert {f"worker {pid}" for pid in workers} <= names
    nodes_info = trace["trio_wf"]["nodes"]
    assert nodes_info["bad"]["status"] == "failed"
    assert nodes_info["bad"]["runs"][0]["error"] == "ValueError: no"
    assert ", in fail\n" in nodes_info["bad"]["traceback"]
    assert nodes_info["n1"]["status"] == "succeeded"
    run = nodes_info["n1"]["runs"][0]
    assert run["queued"] <= run["start"] < run["end"]
    assert run["pid"] in workers
    graph_info = trace["trio_wf"]["graph"]
    assert {n["id"] for n in graph_info["nodes"]} == set(nodes_info)
    assert graph_info["links"] == [
        {"source": "n0", "target": "bad", "label": "", "on_error": False}
    ]


async def test_threads_get_a_lane_each(tmp_path: Path) -> None:
    """Tasks running at once in one process (threads) are on separate lanes."""
    trace_path = tmp_path / "run.json"
    await aexecute_graph(
        graph(sleepers(3)), worker_type="thread", max_workers=3, trace=trace_path
    )
    trace = json.loads(trace_path.read_text())
    check_format(trace)
    runs = complete_events(trace)
    assert {e["pid"] for e in runs} == {os.getpid()}
    assert sorted(e["tid"] for e in runs) == [0, 1, 2]


@pytest.mark.parametrize("ending", ["failure", "timeout"])
async def test_the_trace_is_written_however_the_run_ends(
    tmp_path: Path, ending: str
) -> None:
    """A failed or timed-out run still leaves its trace: the nodes stopped or
    still waiting for a worker are in it."""
    trace_path = tmp_path / "run.json"
    if ending == "failure":
        with pytest.raises(WorkflowExecutionError):
            await aexecute_graph(
                graph([method("a", "fail")]), worker_type="thread", trace=trace_path
            )
        expected = {"a": "failed"}
    else:
        nodes = [method(n, "sleep", inputs={"seconds": 30}) for n in "ab"]
        with pytest.raises(TimeoutError):
            await aexecute_graph(
                graph(nodes), max_workers=1, timeout=0.5, trace=trace_path
            )
        expected = {"a": "running", "b": "running"}
    trace = json.loads(trace_path.read_text())
    check_format(trace)
    nodes_info = trace["trio_wf"]["nodes"]
    assert {n: info["status"] for n, info in nodes_info.items()} == expected
    if ending == "timeout":
        outcomes = sorted(info["runs"][0]["outcome"] for info in nodes_info.values())
        assert outcomes == ["stopped", "waiting"]
