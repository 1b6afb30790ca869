"""The ``trio`` ewoks engine: ``ewoks execute --engine trio`` and its options.

Contract tests (the real ``ewoks`` command in a subprocess, real workers), and
the option translation as a pure function.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import ewoks
import pytest
from ewokscore.tests.examples.graphs import get_graph

from trio_wf.workflow._engine_plugin import engine_options


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
            {"scheduler_options": {"num_workers": 2, "context": "spawn"}},
            {"max_workers": 2, "worker_type": "spawn"},
        ),
        ({"scheduler_options": {"chunksize": 1}}, {}),
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
        ({"scheduler": "sequential", "scheduler_options": {"context": "fork"}}, ""),
        ({"scheduler_options": {"address": "tcp://x"}}, "no equivalent"),
        ({"db_options": {}}, "trio engine accepts"),
    ],
)
def test_engine_options_without_equivalent_are_refused(given: Any, reason: str) -> None:
    """An option that would mean something else here fails, saying why."""
    with pytest.raises(ValueError, match="no trio_wf equivalent") as info:
        engine_options(given)
    assert reason in str(info.value)
