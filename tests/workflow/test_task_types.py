"""Contract tests of the class and script task types: real classes, real programs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import (
    GraphValidationError,
    WorkflowExecutionError,
    aexecute_graph,
    execute_graph,
    load_graph,
)
from trio_wf.workflow._cli import main

from .helpers import InProcess, graph, link, method


def task_class(node_id: Any, name: str, **attributes: Any) -> dict[str, Any]:
    node = method(node_id, name, **attributes)
    node["task_type"] = "class"
    return node


async def test_class_task_outputs(autojump_clock: Any, backend: InProcess) -> None:
    """A class task reads self.inputs and sets self.outputs; undeclared inputs
    are not passed, missing optional ones are absent."""
    document = graph(
        [
            task_class("a", "Accumulate", inputs={"value": 1, "unknown": "x"}),
            task_class("b", "Accumulate", inputs={"step": 10}),
        ],
        [link("a", "b", ("value", "value"))],
    )
    result = await aexecute_graph(
        document, context=backend, outputs=[{"all": True}], merge_outputs=False
    )
    assert result == {
        "a": {"value": 2, "done": False},
        "b": {"value": 12, "done": True},
    }


async def test_class_task_in_a_loop(autojump_clock: Any, backend: InProcess) -> None:
    """ewoks' own example: a class node looping on itself until a condition."""
    document = graph(
        [task_class("c", "Accumulate", inputs={"value": 0}, force_start_node=True)],
        [
            link(
                "c",
                "c",
                map_all_data=True,
                conditions=[{"source_output": "done", "value": False}],
            )
        ],
    )
    assert await aexecute_graph(document, context=backend) == {
        "value": 3,
        "done": True,
    }


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("Accumulate", {}, "requires inputs ['value']; missing ['value']"),
        ("ForgetsAnOutput", {"value": 1}, "did not set its outputs ['done']"),
        ("SetsAnUndeclaredOutput", {"value": 1}, "cannot set 'other'"),
        ("add", {"value": 1}, "is not a task class: not a class with a run()"),
        ("NOT_CALLABLE", {"value": 1}, "not a class with a run() method, no input"),
        ("Accumulate", {0: 1}, "got positional inputs [0]"),
    ],
)
async def test_class_task_errors(
    autojump_clock: Any,
    backend: InProcess,
    name: str,
    inputs: dict[Any, Any],
    message: str,
) -> None:
    """A class that breaks the protocol fails its node, saying how."""
    document = graph([task_class("a", name, inputs=inputs)])
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document, context=backend)
    assert message in str(info.value)


def test_trusted_loading_checks_task_classes() -> None:
    """trusted=True imports a class task and checks it follows the protocol."""
    load_graph(
        graph([task_class("a", "Accumulate", inputs={"value": 1})]), trusted=True
    )
    with pytest.raises(GraphValidationError, match="is not a task class"):
        load_graph(graph([task_class("a", "add")]), trusted=True)


def script(node_id: Any, identifier: Any, **inputs: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "task_type": "script",
        "task_identifier": identifier,
        "default_inputs": [{"name": k, "value": v} for k, v in inputs.items()],
    }


ECHO = [
    sys.executable,
    "-c",
    "import sys; print(sys.argv[1:]); print('e', end='', file=sys.stderr)",
]


def test_script_arguments_and_outputs() -> None:
    """Inputs become arguments as in ewokscore (named ones first, values as
    str() writes them, "" a bare flag, then positional ones); the options are
    not arguments; outputs are return_code, out, err."""
    inputs = {"1": "second", "0": "first", "k": "v", "name": 2, "flag": ""}
    inputs |= {"yes": True, "none": None, "_capture_output": True}
    inputs |= {"_merge_err": False, "_raise_on_error": True, "_timeout": 30}
    document = graph([script("s", ECHO, **inputs)])
    result = execute_graph(document, allow_scripts=True, worker_type="sequential")
    assert result == {
        "return_code": 0,
        "out": "['-k', 'v', '--name', '2', '--flag', '--yes', 'True', '--none', "
        "'None', 'first', 'second']\n",
        "err": "e",
    }


def test_script_output_capture_follows_its_options(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """_merge_err sends the standard error to out; _capture_output false
    leaves both streams to the caller's, and out and err are None."""
    merged = graph([script("s", ECHO, _merge_err=True)])
    result = execute_graph(merged, allow_scripts=True, worker_type="sequential")
    assert result == {"return_code": 0, "out": "[]\ne", "err": None}
    capfd.readouterr()
    free = graph([script("s", ECHO, _capture_output=False)])
    result = execute_graph(free, allow_scripts=True, worker_type="sequential")
    assert result == {"return_code": 0, "out": None, "err": None}
    assert capfd.readouterr() == ("[]\n", "e")


def test_script_files_run_with_their_interpreter(tmp_path: Path) -> None:
    """A shebang names the interpreter, even of a .py file; a shell script
    without one runs under bash; a .py file without one with this Python."""
    shebang = tmp_path / "shebang.py"
    shebang.write_text("#!/bin/sh\necho from sh $1\n")
    shebang.chmod(0o755)
    shell = tmp_path / "plain.sh"
    shell.write_text("[[ -n $BASH_VERSION ]] && echo bash $1\n")
    python = tmp_path / "plain.py"
    python.write_text("import sys; print(sys.executable, sys.argv[1])\n")
    nodes = [
        script(name, f"{path} x", _raise_on_error=True)
        for name, path in (("a", shebang), ("b", shell), ("c", python))
    ]
    result = execute_graph(
        graph(nodes),
        allow_scripts=True,
        outputs=[{"all": True, "name": "out"}],
        merge_outputs=False,
    )
    assert result == {
        "a": {"out": "from sh x\n"},
        "b": {"out": "bash x\n"},
        "c": {"out": f"{sys.executable} x\n"},
    }


def test_scripts_need_to_be_allowed(tmp_path: Path) -> None:
    """A graph with a script node is refused before anything runs."""
    marker = tmp_path / "ran"
    document = graph(
        [
            method("a", "record", inputs={"path": str(marker), "name": "a"}),
            script("s", ["touch", str(marker)]),
        ]
    )
    with pytest.raises(PermissionError, match=r"nodes \['s'\] are script tasks"):
        execute_graph(document)
    assert not marker.exists()


def test_script_environment_is_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script sees PATH and friends, and its _env, not the whole environment."""
    monkeypatch.setenv("TRIO_WF_SECRET", "hunter2")
    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    document = graph([script("s", [sys.executable, "-c", code], _env={"MINE": "1"})])
    result = execute_graph(document, allow_scripts=True)
    names = json.loads(result["out"])
    assert "MINE" in names
    assert "PATH" in names
    assert "TRIO_WF_SECRET" not in names


def test_script_failures() -> None:
    """A non-zero exit fails the node unless _raise_on_error is false; a
    _timeout kills the program."""
    exit3 = [sys.executable, "-c", "import sys; sys.exit(3)"]
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(graph([script("s", exit3)]), allow_scripts=True)
    assert isinstance(info.value.__cause__, subprocess.CalledProcessError)
    assert "returned non-zero exit status 3" in str(info.value)
    lenient = graph([script("s", exit3, _raise_on_error=False)])
    assert execute_graph(lenient, allow_scripts=True)["return_code"] == 3
    sleeper = graph([script("s", ["sleep", "60"], _timeout=0.2)])
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(sleeper, allow_scripts=True)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert "did not finish within 0.2 s" in str(info.value)


def test_script_paths_are_relative_to_the_graph_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .py script runs with this Python; the CLI needs --allow-scripts."""
    (tmp_path / "hello.py").write_text("import sys; print('hello', *sys.argv[1:])\n")
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph([script("s", "hello.py world", name="x")])))
    assert main(["run", str(path), "--json"]) == 2
    assert "--allow-scripts" in capsys.readouterr().err
    assert main(["run", str(path), "--json", "--allow-scripts"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["out"] == "hello world --name x\n"


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        ([], "must be an argv list of strings or a command string"),
        (["ok", 3], "must be an argv list of strings"),
        ("echo 'unclosed", "cannot be split"),
    ],
)
def test_bad_script_identifiers(identifier: Any, message: str) -> None:
    """A script identifier that names no program is refused on load."""
    with pytest.raises(GraphValidationError, match=message):
        load_graph(graph([script("s", identifier)]))
