"""Collaboration tests of the task allow-list (fault row 28, "a graph file is code")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import GraphValidationError, execute_graph, load_graph

from .helpers import graph, link, method

RV = "return_value"
TASKS = "tests.workflow.tasks"


def counted(counter: Path) -> Any:
    task = {"path": str(counter)}
    return graph(
        [
            method("a", "record", inputs={**task, "name": "a"}),
            method("b", "record", inputs={**task, "name": "b"}),
        ],
        [link("a", "b")],
    )


@pytest.mark.parametrize(
    "allowed",
    [
        [f"{TASKS}.record"],  # exact
        [f"{TASKS}."],  # module prefix
        ["tests.workflow."],  # package prefix
        ["tests.*.record"],  # glob
        [f"{TASKS}.add", f"{TASKS}.rec*"],
    ],
)
def test_allowed_graphs_run(tmp_path: Path, allowed: list[str]) -> None:
    """Exact identifiers, prefixes and globs allow a task."""
    counter = tmp_path / "runs.txt"
    result = execute_graph(
        counted(counter), allowed_tasks=allowed, worker_type="sequential"
    )
    assert result == {RV: "b"}
    assert counter.read_text() == "a\nb\n"


@pytest.mark.parametrize(
    "allowed",
    [
        [],  # entry points only
        [f"{TASKS}.recor"],  # an exact identifier is no prefix
        [f"{TASKS}.add"],
        ["tests.workflow.task."],
        ["*.add", "other.*"],
    ],
)
def test_refused_graphs_run_nothing(tmp_path: Path, allowed: list[str]) -> None:
    """Row 28: the error names the node and identifier; no task runs."""
    counter = tmp_path / "runs.txt"
    with pytest.raises(GraphValidationError) as info:
        execute_graph(counted(counter), allowed_tasks=allowed)
    assert info.value.node_id == "a"
    assert str(info.value) == (
        f"node 'a': task_identifier '{TASKS}.record' is not allowed: it matches "
        f"neither allowed_tasks nor a 'trio_wf.tasks' entry point"
    )
    assert not counter.exists()


def test_refused_tasks_are_never_imported(tmp_path: Path) -> None:
    """Even a trusted load checks the allow-list before importing anything."""
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef f():\n    pass\n"
    )
    document = graph(
        [
            method("ok", "add"),
            {
                "id": "evil",
                "task_type": "method",
                "task_identifier": f"{tmp_path}/evil.py::f",
            },
        ],
        [link("ok", "evil")],
    )
    before = set(sys.modules)
    for trusted in (False, True):
        with pytest.raises(GraphValidationError, match="node 'evil': task_ident"):
            load_graph(
                document, trusted=trusted, allowed_tasks=[f"{TASKS}.", "/nowhere/*"]
            )
    assert not marker.exists()
    assert set(sys.modules) == before


def test_file_tasks_match_by_absolute_path(tmp_path: Path) -> None:
    """A relative ``file.py::f`` is matched as the absolute path it resolves to."""
    (tmp_path / "mytasks.py").write_text("def double(x):\n    return 2 * x\n")
    path = tmp_path / "g.json"
    path.write_text(
        '{"graph": {"id": "g"}, "nodes": [{"id": "a", "task_type": "method", '
        '"task_identifier": "mytasks.py::double", '
        '"default_inputs": [{"name": "x", "value": 21}]}]}'
    )
    for allowed in (
        [f"{tmp_path}/mytasks.py::double"],
        [f"{tmp_path}/mytasks.py::"],
        [f"{tmp_path}/"],
        [f"{tmp_path}/*.py::*"],
    ):
        assert execute_graph(path, allowed_tasks=allowed, worker_type="sequential") == {
            RV: 42
        }
    with pytest.raises(GraphValidationError, match=r"mytasks\.py::double' is not all"):
        load_graph(path, allowed_tasks=["mytasks.py::double"])


def test_entry_points_are_always_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution's ``trio_wf.tasks`` entry points allow their objects:
    ``module:function`` that function, a bare module everything under it."""
    info = tmp_path / "fake_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-tasks\n")
    (info / "entry_points.txt").write_text(
        f"[trio_wf.tasks]\nadd = {TASKS}:add\nall = tests.workflow.helpers\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ok = graph([method("a", "add", inputs={"a": 1})])
    assert load_graph(ok, allowed_tasks=()).nodes["a"].task_identifier
    helper = method("h", "add", task_identifier="tests.workflow.helpers.graph")
    load_graph(graph([helper]), allowed_tasks=())
    with pytest.raises(GraphValidationError, match="node 'b'"):
        load_graph(graph([method("b", "identity")]), allowed_tasks=())


def test_scripts_and_graph_objects_are_checked(tmp_path: Path) -> None:
    """Script commands are identifiers too; a loaded `Graph` is checked again."""
    script = {"id": "s", "task_type": "script", "task_identifier": ["echo", "hi"]}
    loaded = load_graph(graph([script]))
    with pytest.raises(GraphValidationError, match="node 's'"):
        execute_graph(loaded, allow_scripts=True, allowed_tasks=[f"{TASKS}."])
    result = execute_graph(loaded, allow_scripts=True, allowed_tasks=["echo *"])
    assert result["out"] == "hi\n"


@pytest.mark.parametrize("allowed", ["tests.workflow.tasks.", [1], b"x"])
def test_allowed_tasks_must_be_strings(allowed: Any) -> None:
    """A bare string (a common slip) or non-strings are refused."""
    with pytest.raises(TypeError, match="allowed_tasks must be a collection"):
        load_graph(graph([method("a", "add")]), allowed_tasks=allowed)
