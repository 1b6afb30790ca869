"""ewokscore ``Task`` classes as ``class`` nodes, and ewokscore persistence.

Contract tests: real worker processes (fork, which inherits the ewokscore this
module imports, and spawn where the worker's own import matters) and real
files under ``varinfo["root_uri"]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import import_module
from pathlib import Path
from typing import Any

import ewokscore
import pytest
from ewokscore import Task
from ewoksutils.exceptions import TaskInputError as EwoksTaskInputError

from trio_wf.workflow import (
    GraphValidationError,
    WorkflowExecutionError,
    execute_graph,
    load_graph,
)

from .helpers import graph, link, method

TASKS = "tests.workflow.ewoks_tasks"


def ewoks_node(node_id: Any, name: str, **inputs: Any) -> dict[str, Any]:
    """A ``class`` node running ``tests.workflow.ewoks_tasks.<name>``."""
    return {
        "id": node_id,
        "task_type": "class",
        "task_identifier": f"{TASKS}.{name}",
        "default_inputs": [{"name": k, "value": v} for k, v in inputs.items()],
    }


def chain(record: Path) -> Any:
    """a (1) -> b (a + 10) -> c (b + 100), each recording its runs."""
    nodes = [
        ewoks_node("a", "RecordedSum", a=1, record=str(record)),
        ewoks_node("b", "RecordedSum", b=10, record=str(record)),
        ewoks_node("c", "RecordedSum", b=100, record=str(record)),
    ]
    pairs = ("result", "a")
    return graph(nodes, [link("a", "b", pairs), link("b", "c", pairs)])


def runs(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


def test_task_subclasses_run_in_workers(tmp_path: Path) -> None:
    """Inputs, optional inputs and outputs flow as in ewokscore."""
    record = tmp_path / "runs.txt"
    result = execute_graph(chain(record), worker_type="spawn")
    assert result == {"result": 111}
    assert runs(record) == ["a", "b", "c"]


@pytest.mark.parametrize("scheme", ["json", "nexus"])
def test_rerun_with_the_same_varinfo_executes_nothing(
    tmp_path: Path, scheme: str
) -> None:
    """Outputs are stored by ewokscore; a second run finds them all."""
    record = tmp_path / "runs.txt"
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": scheme}
    first = execute_graph(chain(record), varinfo=varinfo, worker_type="fork")
    assert runs(record) == ["a", "b", "c"]
    second = execute_graph(chain(record), varinfo=varinfo, worker_type="fork")
    assert first == second == {"result": 111}
    assert runs(record) == ["a", "b", "c"]
    suffix = ".json" if scheme == "json" else ".nx"
    assert any(path.suffix == suffix for path in (tmp_path / "store").rglob("*"))


def test_changed_input_reruns_its_node_and_what_follows(tmp_path: Path) -> None:
    """Hashes chain through the links, as ewokscore's uhashes do."""
    record = tmp_path / "runs.txt"
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": "json"}
    execute_graph(chain(record), varinfo=varinfo, worker_type="fork")
    record.write_text("")
    result = execute_graph(
        chain(record),
        varinfo=varinfo,
        inputs=[{"id": "b", "name": "b", "value": 20}],
        worker_type="fork",
    )
    assert result == {"result": 121}
    assert runs(record) == ["b", "c"]


def test_method_nodes_are_stored_too_with_varinfo(tmp_path: Path) -> None:
    """With varinfo, method nodes run as ewokscore's MethodExecutorTask."""
    record = tmp_path / "runs.txt"
    node = method("m", "record", inputs={"path": str(record), "name": "m"})
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": "json"}
    for _ in range(2):
        result = execute_graph(graph([node]), varinfo=varinfo, worker_type="fork")
        assert result == {"return_value": "m"}
    assert runs(record) == ["m"]


def test_node_varinfo_stores_that_node_only(tmp_path: Path) -> None:
    """A node's own ``varinfo`` attribute turns ewokscore persistence on for it."""
    record = tmp_path / "runs.txt"
    document = chain(record)
    document["nodes"][0]["varinfo"] = {"root_uri": str(tmp_path / "store")}
    for _ in range(2):
        assert execute_graph(document, worker_type="fork") == {"result": 111}
    assert runs(record) == ["a", "b", "c", "b", "c"]


def test_trio_wf_class_protocol_gets_values_from_stored_outputs(
    tmp_path: Path,
) -> None:
    """Downstream of ewokscore tasks, a class of trio_wf's own protocol gets
    plain values, not ewokscore's references to stored data."""
    record = tmp_path / "runs.txt"
    nodes = [
        ewoks_node("a", "RecordedSum", a=1, record=str(record)),
        {
            "id": "acc",
            "task_type": "class",
            "task_identifier": "tests.workflow.tasks.Accumulate",
        },
    ]
    document = graph(nodes, [link("a", "acc", ("result", "value"))])
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": "nexus"}
    result = execute_graph(document, varinfo=varinfo, worker_type="fork")
    assert result == {"value": 2, "done": False}


def test_output_tasks_are_the_executed_tasks(tmp_path: Path) -> None:
    """``output_tasks=True`` returns each node's ewokscore Task, done."""
    tasks = execute_graph(
        chain(tmp_path / "runs.txt"), output_tasks=True, worker_type="fork"
    )
    assert list(tasks) == ["a", "b", "c"]
    assert all(task.done for task in tasks.values())
    assert tasks["c"].get_output_values() == {"result": 111}


def test_missing_optional_input_is_missing_data() -> None:
    """An optional input nobody gave is ewokscore's MISSING_DATA in the task."""
    result = execute_graph(
        graph([ewoks_node("n", "MissingInputs")]), worker_type="fork"
    )
    assert result == {"missing": True}
    result = execute_graph(
        graph([ewoks_node("n", "MissingInputs", x=1)]), worker_type="fork"
    )
    assert result == {"missing": False}


def test_failing_task_raises_its_own_exception() -> None:
    """The cause is the task's exception, not ewokscore's TaskExecutionError."""
    document = graph([ewoks_node("f", "Fails", message="abc")])
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(document, worker_type="fork")
    assert info.value.node_id == "f"
    assert type(info.value.__cause__) is ValueError
    assert str(info.value.__cause__) == "abc"


def test_missing_required_input_is_ewokscores_error() -> None:
    """ewokscore's Task checks its required inputs, with its own error."""
    document = graph([ewoks_node("f", "Fails")])
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(document, worker_type="fork")
    assert isinstance(info.value.__cause__, EwoksTaskInputError)
    assert "message" in str(info.value.__cause__)


def test_file_task_class_runs(tmp_path: Path) -> None:
    """``/path/file.py::Class`` names a Task class (ewokscore 5.0 cannot)."""
    source = tmp_path / "mytasks.py"
    source.write_text(
        textwrap.dedent(
            """
            from ewokscore import Task

            class Double(Task, input_names=["x"], output_names=["y"]):
                def run(self):
                    self.outputs.y = 2 * self.inputs.x
            """
        )
    )
    node = {
        "id": "d",
        "task_type": "class",
        "task_identifier": f"{source}::Double",
        "default_inputs": [{"name": "x", "value": 21}],
    }
    varinfo = {"root_uri": str(tmp_path / "store"), "scheme": "json"}
    for _ in range(2):
        result = execute_graph(graph([node]), varinfo=varinfo, worker_type="spawn")
        assert result == {"y": 42}


def _imports_after(code: str, cwd: Path) -> list[str]:
    script = code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    # cwd: `python -c` puts it first on sys.path, and the checkout's trio_wf/
    # would shadow the installed one.
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=cwd,
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def test_trio_wf_and_graphs_without_class_tasks_never_import_ewokscore(
    tmp_path: Path,
) -> None:
    """The extra costs nothing to those who do not use it (fresh interpreter)."""
    imported = _imports_after("import trio_wf, trio_wf.workflow", tmp_path)
    assert "ewokscore" not in imported
    code = textwrap.dedent(
        """
        from trio_wf.workflow import execute_graph
        document = {
            "graph": {"id": "g"},
            "nodes": [{
                "id": "n", "task_type": "method",
                "task_identifier": "tests.workflow.tasks.ewokscore_imported",
            }],
            "links": [],
        }
        imported = execute_graph(document, worker_type="spawn")["return_value"]
        assert imported is False, "a worker imported ewokscore"
        """
    )
    code = f"import sys; sys.path.append({str(Path(__file__).parents[2])!r})\n" + code
    imported = _imports_after(code, tmp_path)
    assert not [name for name in imported if name.startswith("ewoks")]


def short_name_graph(record: Path) -> Any:
    """RecordedSum by its last name, Doubled by its registry_name."""
    nodes = [
        {**ewoks_node("a", "RecordedSum", a=1, record=str(record))},
        {"id": "b", "task_type": "class", "task_identifier": "trio-wf-doubled"},
    ]
    nodes[0]["task_identifier"] = "RecordedSum"
    return graph(nodes, [link("a", "b", ("result", "x"))])


def test_registered_short_names_resolve_in_trusted_graphs(tmp_path: Path) -> None:
    """As ewokscore resolves them: a class's last name or its registry_name,
    among the classes imported (here by this module); the node then names
    the class in full, as the allow-list sees it.  ewokscore's sequential
    engine gives the same result."""
    document = short_name_graph(tmp_path / "runs.txt")
    loaded = load_graph(document, trusted=True, allowed_tasks=[f"{TASKS}."])
    assert [node.task_identifier for node in loaded.nodes.values()] == [
        f"{TASKS}.RecordedSum",
        f"{TASKS}.Doubled",
    ]
    expected = ewokscore.execute_graph(document)
    assert execute_graph(loaded, worker_type="fork") == expected == {"result": 2}
    with pytest.raises(GraphValidationError, match="is not allowed"):
        load_graph(document, trusted=True, allowed_tasks=["tests.workflow.tasks."])


def test_short_names_need_a_trusted_graph_and_a_registered_class(
    tmp_path: Path,
) -> None:
    """Untrusted, a short name is refused, saying how to trust the graph; a
    name no imported class answers to, or several do, is refused too."""
    document = short_name_graph(tmp_path / "runs.txt")
    with pytest.raises(GraphValidationError) as info:
        execute_graph(document)
    message = str(info.value)
    assert "'RecordedSum' is a short name" in message
    assert "trusted=True" in message
    assert "'package.module.Class'" in message
    document["nodes"][0]["task_identifier"] = "NoSuchTask"
    with pytest.raises(GraphValidationError, match="no registered class"):
        load_graph(document, trusted=True)
    # Two imported classes named SumTask: upstream's example, and this one.
    import_module("ewokscore.tests.examples.tasks.sumtask")

    class SumTask(Task, output_names=["result"]):  # registered by its definition
        def run(self) -> None:
            self.outputs.result = 0

    document["nodes"][0]["task_identifier"] = "SumTask"
    with pytest.raises(GraphValidationError, match="several registered classes"):
        load_graph(document, trusted=True)
