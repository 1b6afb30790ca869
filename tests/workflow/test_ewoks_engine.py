"""The ``trio`` ewoks engine: ``ewoks execute --engine trio`` and its options.

Contract tests (the real ``ewoks`` command in a subprocess, real workers), and
the option translation as a pure function.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import ewoks
import pytest
from ewokscore import events as ewoks_events
from ewokscore.tests.examples.graphs import get_graph

from trio_wf.workflow import WorkflowExecutionError
from trio_wf.workflow._engine_plugin import engine_options

from .test_ewoks_tasks import ewoks_node


@pytest.fixture(autouse=True)
def _close_ewoks_event_handlers() -> Iterator[None]:
    # ewokscore keeps the last run's event handlers (an open SQLite file) in
    # its global event logger, for the next run with the same handlers.
    yield
    ewoks_events.cleanup()


def sqlite_execinfo(path: Path) -> dict[str, Any]:
    """ewoks events into an SQLite file, as ``ewoks execute --sqlite3`` asks."""
    handler = "ewokscore.events.handlers.Sqlite3EwoksEventHandler"
    uri = [{"name": "uri", "value": f"file:{path}"}]
    return {"asynchronous": False, "handlers": [{"class": handler, "arguments": uri}]}


def read_events(path: Path) -> list[dict[str, Any]]:
    # closing(): a connection's own `with` commits, and leaves it open.
    with closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM ewoks_events").fetchall()
    return [dict(row) for row in rows]


def test_ewoks_execute_command_runs_on_trio(tmp_path: Path) -> None:
    """The real CLI finds the engine by its entry point and prints the result."""
    document, _ = get_graph("acyclic1")
    path = tmp_path / "acyclic1.json"
    path.write_text(json.dumps(document))
    command = Path(sys.executable).parent / "ewoks"
    done = subprocess.run(
        [
            *(str(command), "execute", str(path), "--engine", "trio"),
            *("--outputs", "end", "--merge-outputs", "-o", "max_workers=2"),
            *("--data-root-uri", str(tmp_path / "store"), "--data-scheme", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # Not the checkout: ewoksutils puts the current directory on sys.path,
        # where the checkout's trio_wf/ would shadow the installed one.
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "{'result': 16}" in done.stdout
    assert "FINISHED" in done.stdout
    assert list((tmp_path / "store").rglob("*.json"))


def test_ewoks_execute_graph_takes_ewoksppf_options() -> None:
    """ewoksppf's pool options map to a worker type and a worker count."""
    document, _ = get_graph("acyclic1")
    result = ewoks.execute_graph(
        document,
        engine="trio",
        pool_type="process",
        pool_options={"context": "fork", "max_workers": 2},
        outputs=[{"all": True}],
        merge_outputs=False,
    )
    assert result["task6"] == {"result": 16}
    assert len(result) == 6


def test_ewoks_events_reach_ewoks_handlers(tmp_path: Path) -> None:
    """Job and workflow events from the parent, node events from the workers."""
    document, _ = get_graph("acyclic1")
    path = tmp_path / "events.db"
    execinfo = sqlite_execinfo(path)
    ewoks.execute_graph(document, engine="trio", execinfo=execinfo, context="fork")
    events = read_events(path)
    counts = Counter((event["context"], event["type"]) for event in events)
    assert counts == {
        ("job", "start"): 1,
        ("job", "end"): 1,
        ("workflow", "start"): 1,
        ("workflow", "end"): 1,
        ("node", "start"): 6,
        ("node", "end"): 6,
    }
    assert {event["engine"] for event in events} == {"trio"}
    nodes = [event for event in events if event["context"] == "node"]
    assert {event["workflow_id"] for event in nodes} == {"acyclic1"}
    assert {event["node_id"] for event in nodes} == {f"task{i}" for i in range(1, 7)}
    assert not any(event["error"] for event in events if event["type"] == "end")


def test_ewoks_events_carry_the_failure(tmp_path: Path) -> None:
    """The node's end event has the task's message; the workflow's, ours."""
    document = {
        "graph": {"id": "failing"},
        "nodes": [ewoks_node("f", "Fails", message="abc")],
        "links": [],
    }
    path = tmp_path / "events.db"
    with pytest.raises(WorkflowExecutionError):
        ewoks.execute_graph(
            document, engine="trio", execinfo=sqlite_execinfo(path), context="fork"
        )
    ends = {
        event["context"]: event for event in read_events(path) if event["type"] == "end"
    }
    assert ends["node"]["error"]
    assert ends["node"]["error_message"] == "abc"
    assert ends["workflow"]["error"]
    assert "execution failed for task 'f'" in ends["workflow"]["error_message"]


def test_untrusted_engine_run_refuses_to_guess_start_nodes() -> None:
    """``-o trusted=false``: trio_wf's untrusted rules, and their message."""
    document, _ = get_graph("triangle1")
    with pytest.raises(ValueError, match="load the graph trusted"):
        ewoks.execute_graph(document, engine="trio", trusted=False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"pool_type": "thread"}, {"pool_type": "thread"}),
        ({"context": "forkserver"}, {"worker_type": "forkserver"}),
        ({"pool_options": {"context": "fork"}}, {"worker_type": "fork"}),
        (
            {"pool_type": "process", "pool_options": {"max_workers": 3}},
            {"pool_type": "process", "max_workers": 3},
        ),
        ({"scaling_workers": False, "timeout": 5}, {"timeout": 5}),
        ({"scheduler": "multithreading"}, {"scheduler": "multithreading"}),
        (
            {"scheduler": "cluster", "scheduler_options": {"n_workers": 1}},
            {"scheduler": "cluster", "scheduler_options": {"n_workers": 1}},
        ),
    ],
)
def test_engine_options_map_to_ours(given: Any, expected: Any) -> None:
    """ewoksppf's and ewoksdask's spellings become trio_wf's options."""
    assert engine_options(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"scaling_workers": True}, "reuses its workers"),
        ({"pool_type": "thread", "context": "fork"}, "start method of processes"),
        ({"context": "gevent"}, "start methods are"),
        ({"pool_options": {"initializer": None}}, "only context and max_workers"),
        ({"db_options": {}}, "trio engine accepts"),
    ],
)
def test_engine_options_without_equivalent_are_refused(given: Any, reason: str) -> None:
    """An option that would mean something else here fails, saying why."""
    with pytest.raises(ValueError, match="no trio_wf equivalent") as info:
        engine_options(given)
    assert reason in str(info.value)
