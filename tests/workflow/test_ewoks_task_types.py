"""ewokscore's method-task and script-task tests, as one-node graphs on trio_wf.

Contract tests (real worker processes, real programs), against the installed
ewokscore.  Its method-task tests (``ewokscore.tests.test_method_task``) run
with their own assertions: the ``Task.instantiate`` they call is answered by a
one-node graph executed by trio_wf, whose executed ``Task`` (``output_tasks``)
they then inspect.  Its script-task tests cannot be pointed at an engine that
way (trio_wf runs scripts from the parent, not as ewokscore tasks), so their
cases, with upstream's own scripts, run as one-node graphs on trio_wf and on
ewokscore's sequential engine, and the results must be the same.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ewokscore
import pytest
from ewokscore.tests import test_method_task, test_script_task

from trio_wf.workflow import execute_graph

TASK_TYPES = {"MethodExecutorTask": "method", "PpfMethodExecutorTask": "ppfmethod"}


def one_node_graph(
    task_type: str, identifier: str, inputs: dict[Any, Any]
) -> dict[str, Any]:
    defaults = [{"name": name, "value": value} for name, value in inputs.items()]
    node = {
        "id": "task",
        "task_type": task_type,
        "task_identifier": identifier,
        "default_inputs": defaults,
    }
    return {"graph": {"id": "one_node"}, "nodes": [node], "links": []}


class TaskOnTrio:
    """What ``Task.instantiate(name, inputs=..., varinfo=...)`` returns in
    upstream's tests: ``execute()`` runs the task as a one-node graph on
    trio_wf, then everything else is the ``Task`` that trio_wf executed."""

    def __init__(self, name: str, inputs: dict[Any, Any], varinfo: Any) -> None:
        inputs = dict(inputs)
        identifier = inputs.pop("_method")
        self._graph = one_node_graph(TASK_TYPES[name], identifier, inputs)
        self._varinfo = varinfo
        self._task: Any = None

    def execute(self) -> None:
        tasks = execute_graph(
            self._graph, varinfo=self._varinfo, output_tasks=True, worker_type="fork"
        )
        self._task = tasks["task"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


class InstantiateOnTrio:
    @staticmethod
    def instantiate(name: str, inputs: dict[Any, Any], varinfo: Any = None) -> Any:
        return TaskOnTrio(name, inputs, varinfo)


METHOD_TESTS = [
    name
    for name in dir(test_method_task)
    if name.startswith("test_") and callable(getattr(test_method_task, name))
]


@pytest.mark.parametrize("test_name", METHOD_TESTS)
def test_upstream_method_task_test_passes(
    test_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positional and keyword inputs, ``*args``/``**kwargs``, ppfmethod."""
    monkeypatch.setattr(test_method_task, "Task", InstantiateOnTrio)
    # Upstream's varinfo fixture.
    getattr(test_method_task, test_name)({"root_uri": str(tmp_path)})


def run_both(document: dict[str, Any], varinfo: Any) -> tuple[Any, Any]:
    """The results of ewokscore's sequential engine, then of trio_wf."""
    theirs = ewokscore.execute_graph(document, varinfo=varinfo)
    ours = execute_graph(document, varinfo=varinfo, allow_scripts=True)
    return theirs, ours


def script_file(path: Path, text: str, shebang: str | None) -> str:
    """Write an upstream script as upstream's tests do: executable, with or
    without a shebang."""
    with open(path, "w") as file:
        if shebang:
            file.write(f"#!{shebang}\n")
        file.writelines(text)
    path.chmod(0o755)
    return str(path)


SCRIPTS = [
    ("test.py", test_script_task.pyscript, sys.executable),
    ("test.sh", test_script_task.shellscript, "/bin/bash"),
]


@pytest.mark.parametrize("varinfo", [False, True])
@pytest.mark.parametrize("shebang", [True, False])
@pytest.mark.parametrize("fail", [True, False])
@pytest.mark.parametrize(("filename", "text", "interpreter"), SCRIPTS)
def test_upstream_script_cases_give_ewokscore_results(
    filename: str,
    text: str,
    interpreter: str,
    fail: bool,
    shebang: bool,
    varinfo: bool,
    tmp_path: Path,
) -> None:
    """upstream's python and shell script cases: arguments, interpreter,
    captured output, return code, with or without a shebang."""
    path = script_file(tmp_path / filename, text, interpreter if shebang else None)
    inputs = {"a": 11 if fail else 10, "_capture_output": True}
    inputs["_raise_on_error"] = False
    document = one_node_graph("script", path, inputs)
    theirs, ours = run_both(
        document, {"root_uri": str(tmp_path / "store")} if varinfo else None
    )
    assert ours == theirs
    assert (ours["return_code"] != 0) is fail
    assert f"input a = {inputs['a']}" in ours["out"]


def test_upstream_command_case_gives_ewokscore_results(tmp_path: Path) -> None:
    """upstream's command case: a program from PATH, a positional argument
    written as the string "0"."""
    (tmp_path / "test.txt").touch()
    inputs = {"0": str(tmp_path), "_capture_output": True, "_raise_on_error": False}
    theirs, ours = run_both(one_node_graph("script", "dir", inputs), None)
    assert ours == theirs
    assert "test.txt" in ours["out"]
