"""Contract tests of the ``trio-wf`` command: real workers, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from trio_wf.workflow._cli import main

from .helpers import graph, link, method

GRAPHS = Path(__file__).parents[2] / "examples" / "graphs"
ROOT = Path(__file__).parents[2]


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_run_prints_the_results(capsys: pytest.CaptureFixture[str]) -> None:
    """Results print one per line; --json prints one JSON object."""
    assert main(["run", str(GRAPHS / "diamond.json")]) == 0
    assert capsys.readouterr().out == "return_value: 43\n"
    inputs = '[{"id": "is_big", "name": 0, "value": 3}]'
    path = str(GRAPHS / "conditional.yaml")
    arguments = ["run", path, "--json", "--inputs", inputs, "--worker-type", "thread"]
    assert main(arguments) == 0
    assert json.loads(capsys.readouterr().out) == {"return_value": {"size": "small"}}


def test_inputs_from_a_file_and_verbose_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--inputs @FILE reads JSON; -v reports node events on stderr."""
    (tmp_path / "inputs.json").write_text('{"0": 5, "1": 6}')
    path = str(GRAPHS / "diamond.json")
    inputs = f"@{tmp_path / 'inputs.json'}"
    arguments = ["run", path, "--inputs", inputs, "-v", "--worker-type", "sequential"]
    assert main(arguments) == 0
    captured = capsys.readouterr()
    assert captured.out == "return_value: 31\n"
    assert "trio-wf: product: started\n" in captured.err
    assert "trio-wf: largest: done in " in captured.err


def test_a_failure_is_one_paragraph_naming_the_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed node: exit 1, one line naming node, label, task and cause."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "fail", label="the failing one", inputs={"message": "no"}),
        ],
        [link("a", "b")],
    )
    assert main(["run", write(tmp_path, document), "--max-workers", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "trio-wf: error: execution failed for task 'the failing one' (node id "
        "'b', task 'tests.workflow.tasks.fail'): ValueError: no\n"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.json"], "graph file 'missing.json' does not exist"),
        (["{graph}", "--worker-type", "thread", "--max-iterations", "1"], None),
        (["{invalid}"], "'nope' is not a node of the graph"),
        (["{graph}", "--inputs", '[{"id": "x", "name": 0, "value": 1}]'], "'x'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str | None,
) -> None:
    """A missing or invalid graph, or inputs naming no node: exit 2, no traceback."""
    good = write(tmp_path, graph([method("a", "add", inputs={"a": 1})]))
    invalid = str(tmp_path / "invalid.json")
    Path(invalid).write_text(
        json.dumps(graph([method("a", "add")], [link("a", "nope")]))
    )
    paths = {"{graph}": good, "{invalid}": invalid}
    arguments = [paths.get(argument, argument) for argument in arguments]
    status = main(["run", *arguments])
    captured = capsys.readouterr()
    if message is None:
        assert status == 0
        assert captured.out == "return_value: 1\n"
    else:
        assert status == 2
        assert message in captured.err
        assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "arguments",
    [
        ["--inputs", "[1"],
        ["--max-workers", "0"],
        ["--timeout", "-1"],
        ["--worker-type", "x"],
    ],
)
def test_bad_options_are_refused_by_argparse(
    capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    """argparse refuses malformed options with exit status 2 and a usage line."""
    with pytest.raises(SystemExit) as info:
        main(["run", str(GRAPHS / "diamond.json"), *arguments])
    assert info.value.code == 2
    assert "usage: trio-wf run" in capsys.readouterr().err


def test_cache_dir_skips_what_already_ran(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--cache-dir: the second run reads every node's outputs back."""
    arguments = ["run", str(GRAPHS / "diamond.json"), "-v", "--worker-type", "thread"]
    arguments += ["--cache-dir", str(tmp_path / "cache")]
    assert main(arguments) == 0
    first = capsys.readouterr()
    assert "read from the cache" not in first.err
    assert main(arguments) == 0
    second = capsys.readouterr()
    assert second.out == first.out == "return_value: 43\n"
    assert "trio-wf: product: outputs read from the cache\n" in second.err
    assert "started" not in second.err


@pytest.mark.parametrize(
    "patterns", [["tests.workflow.tasks.*"], ["other.*", "tests.workflow.tasks.ad?"]]
)
def test_allow_task_patterns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patterns: list[str]
) -> None:
    """--allow-task, repeated: a task matching any pattern runs."""
    path = write(tmp_path, graph([method("a", "add", inputs={"a": 1})]))
    arguments = ["run", path, "--worker-type", "thread"]
    for pattern in patterns:
        arguments += ["--allow-task", pattern]
    assert main(arguments) == 0
    assert capsys.readouterr().out == "return_value: 1\n"


def test_a_task_not_allowed_exits_2_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole graph is checked before any node runs."""
    record = tmp_path / "ran"
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "record", inputs={"path": str(record), "name": "b"}),
        ]
    )
    arguments = ["run", write(tmp_path, document), "--allow-task", "*.add"]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "'b'" in err
    assert "tests.workflow.tasks.record" in err
    assert not record.exists()


def test_insecure_needs_a_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    """--insecure only loosens --scheduler; a remote plain-TCP scheduler without
    it is refused before any connection is tried."""
    path = str(GRAPHS / "diamond.json")
    assert main(["run", path, "--insecure"]) == 2
    assert "--insecure only applies with --scheduler" in capsys.readouterr().err
    assert main(["run", path, "--scheduler", "tcp://192.0.2.1:8786"]) == 2
    assert "TLS" in capsys.readouterr().err


def test_timeout_exits_124(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout kills the running node and exits with timeout(1)'s status."""
    document = graph([method("a", "sleep", inputs={"seconds": 60})])
    assert main(["run", write(tmp_path, document), "--timeout", "0.5"]) == 124
    assert "did not finish within 0.5 s; nodes ['a'] were running" in (
        capsys.readouterr().err
    )


def test_ctrl_c_exits_130_and_leaves_no_worker(tmp_path: Path) -> None:
    """Ctrl+C once the node runs: exit 130, one line, no traceback, no child."""
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    document = graph([method("a", "announce_and_sleep", inputs={"fifo": str(fifo)})])
    proc = subprocess.Popen(
        [sys.executable, "-m", "trio_wf.workflow", "run", write(tmp_path, document)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        with open(fifo) as ready:  # the readiness line: the worker's pid
            worker = int(ready.readline())
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover, only on failure
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert (out, err) == ("", "trio-wf: interrupted\n")
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == (
        psutil.STATUS_ZOMBIE
    )


SMALL = [
    {"id": "make_image", "name": "width", "value": 48},
    {"id": "make_image", "name": "height", "value": 40},
    {"task_identifier": "::smooth_band", "name": "passes", "value": 4},
    {"label": "refine until smooth", "name": "threshold", "value": 2.0},
]


@pytest.mark.parametrize("worker_type", ["spawn", "thread", "sequential"])
def test_the_pipeline_example_on_a_small_image(
    capsys: pytest.CaptureFixture[str], worker_type: str
) -> None:
    """The example pipeline, fan-out, fan-in and loop, on a small image: the
    same summary whatever runs the tasks."""
    path = str(GRAPHS / "pipeline.json")
    arguments = ["--inputs", json.dumps(SMALL), "--worker-type", worker_type]
    assert main(["run", path, "--json", *arguments]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "return_value": {
            "size": "48x40",
            "refinements": 9,
            "roughness": 1.9995,
            "mean": 120.5771,
            "crc32": "f436f37d",
        }
    }


@pytest.mark.slow
def test_the_pipeline_example_as_the_readme_runs_it() -> None:
    """``trio-wf run examples/graphs/pipeline.json``: a few seconds of CPU on
    every core, and a summary that is the same every time."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trio_wf.workflow",
            "run",
            "examples/graphs/pipeline.json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "return_value:\n"
        "  {'size': '512x512',\n"
        "   'refinements': 22,\n"
        "   'roughness': 0.1617,\n"
        "   'mean': 95.5604,\n"
        "   'crc32': '3efebb01'}\n"
    )
