"""Contract tests of the ``trio-wf`` command: the real command in a subprocess,
real workers."""

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

from .helpers import ROOT, TRIO_WF, graph, link, local_task_graph, method, run_cli

GRAPHS = ROOT / "examples" / "graphs"
DIAMOND = str(GRAPHS / "diamond.json")


def write(tmp_path: Path, document: Any, name: str = "graph.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_run_prints_the_results() -> None:
    """Results print one per line; --json prints one JSON object."""
    result = run_cli("run", DIAMOND, "-n", "2")
    assert (result.returncode, result.stdout) == (0, "return_value: 43\n"), result
    inputs = '[{"id": "is_big", "name": 0, "value": 3}]'
    path = str(GRAPHS / "conditional.yaml")
    result = run_cli(
        "run", path, "--json", "--inputs", inputs, "--worker-type", "thread"
    )
    assert json.loads(result.stdout) == {"return_value": {"size": "small"}}


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    """--version names the release; python -m trio_wf is the same command."""
    import trio_wf

    assert run_cli("--version").stdout == f"trio-wf {trio_wf.__version__}\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trio_wf",
            "run",
            DIAMOND,
            "-q",
            "--worker-type",
            "thread",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # Not the checkout, whose trio_wf/ would shadow the installed one.
        cwd=tmp_path,
    )
    assert (result.returncode, result.stdout) == (0, "return_value: 43\n")


@pytest.mark.parametrize(
    "spelling", [["-n", "1"], ["-n2"], ["--workers", "auto"], ["--max-workers=1"]]
)
def test_workers_spellings(spelling: list[str]) -> None:
    """-n N, --workers N|auto and the --max-workers alias are all accepted."""
    result = run_cli("run", DIAMOND, "--worker-type", "thread", *spelling)
    assert (result.returncode, result.stdout) == (0, "return_value: 43\n")


def test_inputs_from_a_file_and_verbose_events(tmp_path: Path) -> None:
    """--inputs @FILE reads JSON; -v reports node events on stderr."""
    (tmp_path / "inputs.json").write_text('{"0": 5, "1": 6}')
    inputs = f"@{tmp_path / 'inputs.json'}"
    result = run_cli(
        "run", DIAMOND, "--inputs", inputs, "-v", "--worker-type", "sequential"
    )
    assert result.stdout == "return_value: 31\n"
    assert "trio-wf: product: started in process " in result.stderr
    assert "trio-wf: largest: done in " in result.stderr


def test_every_failure_is_named_in_command_line_words(tmp_path: Path) -> None:
    """Failed nodes: exit 1, one line each naming node, label, task and cause;
    no Python attribute names."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "fail", label="the failing one", inputs={"message": "no"}),
            method("c", "fail", inputs={"message": "nor this"}),
        ],
        [link("a", "b")],
    )
    result = run_cli("run", write(tmp_path, document), "-n", "1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        "trio-wf: error: node 'b' ('the failing one', task "
        "tests.workflow.tasks.fail) failed: ValueError: no\n"
    ) in result.stderr
    assert (
        "trio-wf: error: node 'c' (task tests.workflow.tasks.fail) failed: "
        "ValueError: nor this\n"
    ) in result.stderr
    assert ".failures" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.json"], "graph file 'missing.json' does not exist"),
        (["{tmp}"], "is a directory, not a graph file"),
        (["{empty}"], "not a workflow graph"),
        (["{other}"], "not a workflow graph: a graph document has a 'graph', 'nodes'"),
        (["{invalid}"], "'nope' is not a node of the graph"),
        (["{graph}", "--inputs", '[{"id": "x", "name": 0, "value": 1}]'], "'x'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    """A missing, invalid or non-graph GRAPH, a directory, or inputs naming no
    node: exit 2, the reason, no traceback."""
    paths = {
        "{tmp}": str(tmp_path),
        "{graph}": write(tmp_path, graph([method("a", "add", inputs={"a": 1})])),
        "{empty}": write(tmp_path, {}, "empty.json"),
        "{other}": write(tmp_path, {"name": "x", "version": 2}, "other.json"),
        "{invalid}": write(
            tmp_path, graph([method("a", "add")], [link("a", "nope")]), "invalid.json"
        ),
    }
    arguments = [paths.get(argument, argument) for argument in arguments]
    result = run_cli("run", *arguments, cwd=ROOT)
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_graph_with_no_nodes_returns_nothing(tmp_path: Path) -> None:
    """ewokscore's empty graph, {"graph": {...}}, is valid: the result is {}."""
    path = write(tmp_path, {"graph": {"id": "empty"}})
    result = run_cli("run", path, "--json", "--worker-type", "thread")
    assert (result.returncode, json.loads(result.stdout)) == (0, {})


@pytest.mark.parametrize(
    "text", [json.dumps(graph([method("a", "add", inputs={"a": 2})]))]
)
def test_a_graph_on_standard_input(text: str) -> None:
    """GRAPH - reads the graph, JSON or YAML, from standard input."""
    result = run_cli("run", "-", "--worker-type", "thread", stdin=text)
    assert (result.returncode, result.stdout) == (0, "return_value: 2\n"), result
    yaml = (
        "graph: {id: y}\nnodes:\n  - id: a\n    task_type: method\n"
        "    task_identifier: tests.workflow.tasks.add\n"
        "    default_inputs: [{name: a, value: 5}]\n"
    )
    result = run_cli("run", "-", "--worker-type", "thread", stdin=yaml)
    assert (result.returncode, result.stdout) == (0, "return_value: 5\n"), result
    assert run_cli("run", "-", stdin="{}").returncode == 2


def test_the_current_directory_is_importable(tmp_path: Path) -> None:
    """A task module next to the graph runs, in spawned workers, as under
    python -m."""
    source = "def hello(name):\n    return 'hi ' + name\n"
    document = local_task_graph(
        tmp_path, source, "hello", default_inputs=[{"name": "name", "value": "you"}]
    )
    result = run_cli("run", write(tmp_path, document), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "return_value: 'hi you'\n"), result


@pytest.mark.parametrize(
    "arguments",
    [
        ["--inputs", "[1"],
        ["-n", "0"],
        ["--workers", "many"],
        ["--timeout", "-1"],
        ["--worker-type", "x"],
        ["-q", "-v"],
    ],
)
def test_bad_options_are_refused_with_a_usage_line(arguments: list[str]) -> None:
    """Malformed options: exit status 2 and a usage line."""
    result = run_cli("run", DIAMOND, *arguments)
    assert result.returncode == 2
    assert "usage: trio-wf run" in result.stderr


def test_every_option_has_help_text() -> None:
    """Every argument of every command says what it does."""
    from trio_wf.workflow._cli import _parser

    parser = _parser()
    subcommands = next(
        action for action in parser._actions if action.dest == "command"
    ).choices
    assert set(subcommands) == {"run", "check", "show", "report"}
    for command in (parser, *subcommands.values()):
        for action in command._actions:
            assert action.help, (command.prog, action.dest)


SLEEPER = graph([method("a", "sleep", inputs={"seconds": 60})])


def test_defaults_from_pyproject_and_environment(tmp_path: Path) -> None:
    """[tool.trio_wf] in the nearest pyproject.toml upward sets defaults; a
    TRIO_WF_* variable wins over it, and the command line over both."""
    (tmp_path / "pyproject.toml").write_text("[tool.trio_wf]\ntimeout = 0.3\n")
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    # From there, tests.workflow.tasks is not importable: a task of its own.
    (below / "slow.py").write_text("import time\ndef nap():\n    time.sleep(60)\n")
    node = {"id": "a", "task_type": "method", "task_identifier": "slow.nap"}
    path = write(tmp_path, {"graph": {"id": "slow"}, "nodes": [node]})
    result = run_cli("run", path, cwd=below)
    assert result.returncode == 124
    assert "within 0.3 s" in result.stderr
    result = run_cli("run", path, cwd=below, env={"TRIO_WF_TIMEOUT": "0.2"})
    assert "within 0.2 s" in result.stderr
    result = run_cli(
        "run", path, "--timeout", "0.1", cwd=below, env={"TRIO_WF_TIMEOUT": "0.2"}
    )
    assert "within 0.1 s" in result.stderr


@pytest.mark.parametrize(
    ("pyproject", "env", "message"),
    [
        ("trusted = true", {}, "--trusted widens what the graph may do"),
        ("allow_scripts = true", {}, "--allow-scripts widens"),
        ("allow_task = '*'", {}, "--allow-task widens"),
        ("", {"TRIO_WF_CACHE_DIR": "/tmp"}, "TRIO_WF_CACHE_DIR: --cache-dir widens"),
        ("colour = 'red'", {}, "unknown setting"),
        ("workers = 0", {}, "workers in"),
    ],
)
def test_settings_that_widen_trust_or_are_wrong_are_refused(
    tmp_path: Path, pyproject: str, env: dict[str, str], message: str
) -> None:
    """Trust is given on the command line only, never by a file that ships with
    the graph; a bad setting exits 2 and names where it came from."""
    (tmp_path / "pyproject.toml").write_text(f"[tool.trio_wf]\n{pyproject}\n")
    record = tmp_path / "ran"
    document = graph([method("a", "record", inputs={"path": str(record), "name": "a"})])
    result = run_cli("run", write(tmp_path, document), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert not record.exists()


def test_check_validates_and_runs_nothing(tmp_path: Path) -> None:
    """check: exit 0 with what the graph holds, or 2 with the problem."""
    record = tmp_path / "ran"
    document = graph([method("a", "record", inputs={"path": str(record), "name": "a"})])
    result = run_cli("check", write(tmp_path, document))
    assert result.returncode == 0
    assert "a valid graph of 1 node(s) and 0 link(s)" in result.stdout
    assert not record.exists()
    bad = write(tmp_path, graph([method("a", "add")], [link("a", "nope")]), "bad.json")
    result = run_cli("check", bad)
    assert result.returncode == 2
    assert "'nope' is not a node of the graph" in result.stderr
    missing = graph([method("a", "no_such_task")])
    result = run_cli("check", write(tmp_path, missing, "missing.json"), "--trusted")
    assert result.returncode == 2
    assert "cannot import task_identifier 'tests.workflow.tasks.no_such_task'" in (
        result.stderr
    )


def test_show_prints_mermaid_and_dot() -> None:
    """show: a Mermaid flowchart by default, DOT with --format dot."""
    result = run_cli("show", DIAMOND)
    assert result.returncode == 0
    assert result.stdout.startswith("flowchart LR\n")
    assert '["product"]' in result.stdout
    assert result.stdout.count("-->") == 4
    result = run_cli("show", str(GRAPHS / "error_handler.json"), "--format", "dot")
    assert result.stdout.startswith("digraph workflow {")
    assert 'label="on error", style=dashed' in result.stdout


def test_show_draws_svg_with_graphviz_or_says_to_install_it(tmp_path: Path) -> None:
    """-o graph.svg renders with Graphviz's dot; without it, exit 2 naming it."""
    output = tmp_path / "graph.svg"
    result = run_cli("show", DIAMOND, "-o", str(output), env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "Graphviz's dot program is not on PATH" in result.stderr
    if not any((Path(d) / "dot").exists() for d in os.environ["PATH"].split(":")):
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    result = run_cli("show", DIAMOND, "-o", str(output))
    assert result.returncode == 0, result.stderr
    svg = output.read_text()
    assert "<svg" in svg
    assert ">product</text>" in svg


def test_cache_dir_skips_what_already_ran(tmp_path: Path) -> None:
    """--cache-dir: the second run reads every node's outputs back."""
    arguments = ["run", DIAMOND, "-v", "--worker-type", "thread"]
    arguments += ["--cache-dir", str(tmp_path / "cache")]
    first = run_cli(*arguments)
    assert first.returncode == 0
    assert "read from the cache" not in first.stderr
    second = run_cli(*arguments)
    assert second.stdout == first.stdout == "return_value: 43\n"
    assert "trio-wf: product: outputs read from the cache\n" in second.stderr
    assert "started" not in second.stderr


@pytest.mark.parametrize(
    "patterns", [["tests.workflow.tasks.*"], ["other.*", "tests.workflow.tasks.ad?"]]
)
def test_allow_task_patterns(tmp_path: Path, patterns: list[str]) -> None:
    """--allow-task, repeated: a task matching any pattern runs."""
    path = write(tmp_path, graph([method("a", "add", inputs={"a": 1})]))
    arguments = ["run", path, "--worker-type", "thread"]
    for pattern in patterns:
        arguments += ["--allow-task", pattern]
    result = run_cli(*arguments)
    assert (result.returncode, result.stdout) == (0, "return_value: 1\n")


def test_a_task_not_allowed_exits_2_before_running(tmp_path: Path) -> None:
    """The whole graph is checked before any node runs."""
    record = tmp_path / "ran"
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "record", inputs={"path": str(record), "name": "b"}),
        ]
    )
    result = run_cli("run", write(tmp_path, document), "--allow-task", "*.add")
    assert result.returncode == 2
    assert "'b'" in result.stderr
    assert "tests.workflow.tasks.record" in result.stderr
    assert not record.exists()


def test_insecure_needs_a_scheduler() -> None:
    """--insecure only loosens --scheduler; a remote plain-TCP scheduler without
    it is refused before any connection is tried."""
    result = run_cli("run", DIAMOND, "--insecure")
    assert result.returncode == 2
    assert "--insecure only applies with --scheduler" in result.stderr
    result = run_cli("run", DIAMOND, "--scheduler", "tcp://192.0.2.1:8786")
    assert result.returncode == 2
    assert "TLS" in result.stderr


def test_timeout_exits_124(tmp_path: Path) -> None:
    """--timeout kills the running node and exits with timeout(1)'s status."""
    result = run_cli("run", write(tmp_path, SLEEPER), "--timeout", "0.5")
    assert result.returncode == 124
    assert "did not finish within 0.5 s; nodes ['a'] were running" in result.stderr


def test_ctrl_c_exits_130_and_leaves_no_worker(tmp_path: Path) -> None:
    """Ctrl+C once the node runs: exit 130, one line, no traceback, no child."""
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    document = graph([method("a", "announce_and_sleep", inputs={"fifo": str(fifo)})])
    proc = subprocess.Popen(
        [TRIO_WF, "run", write(tmp_path, document)],
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
def test_the_pipeline_example_on_a_small_image(worker_type: str) -> None:
    """The example pipeline, fan-out, fan-in and loop, on a small image: the
    same summary whatever runs the tasks."""
    path = str(GRAPHS / "pipeline.json")
    arguments = ["--inputs", json.dumps(SMALL), "--worker-type", worker_type]
    result = run_cli("run", path, "--json", *arguments)
    assert json.loads(result.stdout) == {
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
    result = run_cli("run", "examples/graphs/pipeline.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "return_value:\n"
        "  {'size': '512x512',\n"
        "   'refinements': 22,\n"
        "   'roughness': 0.1617,\n"
        "   'mean': 95.5604,\n"
        "   'crc32': '3efebb01'}\n"
    )
