"""Contract tests: a failure points at the user's code, not the engine's (the real
``trio-wf`` command in a subprocess, real workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trio_wf.workflow import execute_graph

from .helpers import graph, link, local_task_graph, method, run_cli

USER_TASKS = """\
def lookup(table, key):
    return table[key]


def deeper(table):
    return lookup(table, "b")


def middle(table):
    return deeper(table)


def boom():
    try:
        return middle({})
    except KeyError as exc:
        raise RuntimeError("could not boom") from exc
"""

#: Where the engine's frames would come from, were they shown.
ENGINE = ("trio_wf/", "_trio_wf_worker/", "outcome/", "/trio/", "frozen importlib")


def failing_graph(tmp_path: Path) -> str:
    document = local_task_graph(tmp_path, USER_TASKS, "boom", id="b", label="bang")
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize("worker_type", ["spawn", "thread", "sequential"])
def test_a_failure_shows_the_users_innermost_frames(
    tmp_path: Path, worker_type: str
) -> None:
    """By default: the error line, then a short block of the task's own frames
    (file, line, function), and what it was raised from; no engine frame."""
    path = failing_graph(tmp_path)
    result = run_cli("run", path, "--worker-type", worker_type, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "trio-wf: error: node 'b' ('bang', task localtasks.boom) failed: "
        "RuntimeError: could not boom"
    )
    source = tmp_path / "localtasks.py"
    assert lines[1] == f'  File "{source}", line 17, in boom'
    assert lines[2] == '    raise RuntimeError("could not boom") from exc'
    assert lines[-1] == "  (raised from KeyError: 'b'; -v shows where)"
    assert len(lines) <= 5, result.stderr
    assert not any(engine in result.stderr for engine in ENGINE), result.stderr


@pytest.mark.parametrize("worker_type", ["spawn", "sequential"])
def test_verbose_shows_every_user_frame_and_the_chain(
    tmp_path: Path, worker_type: str
) -> None:
    """-v: the whole chain, each part with the user's frames only."""
    path = failing_graph(tmp_path)
    result = run_cli("run", path, "-v", "--worker-type", worker_type, cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr
    for function in ("boom", "middle", "deeper", "lookup"):
        assert f", in {function}\n" in err
    assert "  KeyError: 'b'\n" in err
    assert "The above exception was the direct cause" in err
    assert "  RuntimeError: could not boom\n" in err
    assert not any(engine in err for engine in ENGINE), err


def test_an_error_handler_gets_the_tasks_frames_only() -> None:
    """The traceback an on_error link carries shows the task, not the engine."""
    document = graph(
        [method("a", "fail", inputs={"message": "bad"}), method("h", "kwargs")],
        [link("a", "h", on_error=True, map_all_data=True)],
    )
    result = execute_graph(document, worker_type="thread")
    text = result["return_value"]["traceback"]
    assert ", in fail\n" in text
    assert text.endswith("ValueError: bad\n")
    assert not any(engine in text for engine in ENGINE), text
