"""Collaboration tests of graph loading and validation: nothing runs, nothing spawns."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import (
    MAX_GRAPH_DEPTH,
    DataMapping,
    GraphValidationError,
    load_graph,
)

from .helpers import graph, link, method

CHAIN = graph(
    [method("a", "add", inputs={"a": 1}), method("b", "add", inputs={"b": 10})],
    [link("a", "b", ("return_value", "a"))],
)


def test_dict_is_read_never_modified() -> None:
    """The caller's dict is neither modified nor aliased by the records."""
    document = copy.deepcopy(CHAIN)
    document["nodes"][0]["uiProps"] = {"x": 1}
    before = copy.deepcopy(document)
    loaded = load_graph(document, inputs=[{"id": "a", "name": "a", "value": 5}])
    assert document == before
    assert loaded.nodes["a"].default_inputs == {"a": 5}
    assert loaded.nodes["a"].extra == {"uiProps": {"x": 1}}
    assert loaded.nodes["a"].extra is not document["nodes"][0]


def test_json_string_and_files(tmp_path: Path) -> None:
    """JSON text, .json, .yml/.yaml and other extensions load to the same graph."""
    expected = load_graph(CHAIN)
    text = json.dumps(CHAIN)
    assert load_graph(text) == expected
    for name in ("g.json", "g.txt"):
        (tmp_path / name).write_text(text)
        assert load_graph(tmp_path / name) == expected
        assert load_graph(str(tmp_path / name)) == expected
    yaml_text = textwrap.dedent(
        """
        graph: {id: test}
        nodes:
          - {id: a, task_type: method, task_identifier: tests.workflow.tasks.add,
             default_inputs: [{name: a, value: 1}]}
          - id: b
            task_type: method
            task_identifier: tests.workflow.tasks.add
            default_inputs: [{name: b, value: 10}]
        links:
          - source: a
            target: b
            data_mapping: [{source_output: return_value, target_input: a}]
        """
    )
    for name in ("g.yml", "g.yaml", "g.graph"):
        (tmp_path / name).write_text(yaml_text)
        assert load_graph(tmp_path / name) == expected
    with pytest.raises(FileNotFoundError):
        load_graph(tmp_path / "missing.json")


def test_records_normalise_ids_and_input_names() -> None:
    """Lists become tuple ids; digit strings become positional input names."""
    loaded = load_graph(
        graph(
            [
                method(["sub", "a"], "add", inputs={"0": 1, 1: 2, "b": 3}),
                method(7, "add"),
            ],
            [link(["sub", "a"], 7, ("return_value", "1"), (None, "all"))],
        )
    )
    assert list(loaded.nodes) == [("sub", "a"), 7]
    assert loaded.nodes["sub", "a"].default_inputs == {0: 1, 1: 2, "b": 3}
    assert loaded.nodes["sub", "a"].display_label == "sub:a"
    assert loaded.links[0].data_mapping == (
        DataMapping("return_value", 1),
        DataMapping(None, "all"),
    )
    assert pickle.loads(pickle.dumps(loaded)) == loaded


def test_unknown_attributes_are_kept() -> None:
    """Unknown graph, node, link and top-level attributes survive in ``extra``."""
    document = graph(
        [method("a", "add", color="red"), method("b", "add")],
        [link("a", "b", weight=3)],
        requirements=["numpy"],
        uiProps={"zoom": 2},
    )
    document["directed"] = True
    loaded = load_graph(document)
    assert loaded.extra == {"requirements": ["numpy"], "uiProps": {"zoom": 2}}
    assert loaded.top_level_extra == {"directed": True}
    assert loaded.nodes["a"].extra == {"color": "red"}
    assert loaded.links[0].extra == {"weight": 3}


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", 1.1, None])
def test_schema_versions(version: Any) -> None:
    """Schema 1.0 to 1.2 load; before 1.2, ``required: false`` meant "not set"."""
    document = graph([method("a", "add"), method("b", "add")], [link("a", "b")])
    document["links"][0]["required"] = False
    if version is not None:
        document["graph"]["schema_version"] = version
    loaded = load_graph(document)
    old = str(version) in ("1.0", "1.1")
    assert loaded.links[0].required is (None if old else False)
    assert loaded.analysis.required == (old,)


def test_deprecated_task_keys() -> None:
    """``{"method": "f"}`` is the old spelling of task_type/task_identifier."""
    loaded = load_graph(
        graph(
            [
                {"id": "a", "method": "tests.workflow.tasks.add"},
                {"id": "p", "ppfport": None},
            ]
        )
    )
    assert loaded.nodes["a"].task_type == "method"
    assert loaded.nodes["a"].task_identifier == "tests.workflow.tasks.add"
    assert loaded.nodes["p"].task_type == "ppfport"


def test_file_identifiers_resolve_against_the_graph_file(tmp_path: Path) -> None:
    """``file.py::f`` paths are relative to the graph file's directory."""
    document = graph([method("a", "add")])
    document["nodes"][0]["task_identifier"] = "lib/tasks.py::f"
    (tmp_path / "g.json").write_text(json.dumps(document))
    loaded = load_graph(tmp_path / "g.json")
    assert loaded.nodes["a"].task_identifier == f"{tmp_path}/lib/tasks.py::f"


INVALID = [
    pytest.param(
        graph([method("a", "add"), method("a", "add")]),
        "node 'a' is defined twice",
        id="duplicate",
    ),
    pytest.param(
        graph([method("a", "add")], [link("a", "zz")]),
        "link 0 ('a' -> 'zz'): target 'zz' is not a node",
        id="dangling",
    ),
    pytest.param(
        graph(
            [method("a", "add"), method("b", "add")],
            [link("a", "b", ("x", "y"), map_all_data=True)],
        ),
        "link 0 ('a' -> 'b'): map_all_data cannot be combined with data_mapping",
        id="map_all_data+data_mapping",
    ),
    pytest.param(
        graph(
            [method("a", "add"), method("b", "add")],
            [
                link(
                    "a",
                    "b",
                    on_error=True,
                    conditions=[{"source_output": "x", "value": 1}],
                )
            ],
        ),
        "link 0 ('a' -> 'b'): on_error cannot be combined with conditions",
        id="on_error+conditions",
    ),
    pytest.param(
        graph(
            [method("a", "add"), method("b", "add"), method("c", "add")],
            [
                link("a", "c", ("return_value", "a")),
                link("b", "c", ("return_value", "a")),
            ],
        ),
        "node 'c': input 'a' is written by two required links, link 0",
        id="two-required-writers",
    ),
    pytest.param(
        graph(
            [method("a", "add"), method("b", "add")], [link("a", "b"), link("b", "a")]
        ),
        "cycle without a conditional link, which would never end: 'a' -> 'b' -> 'a'",
        id="cycle",
    ),
    pytest.param(
        graph([{"id": "a", "task_type": "magic", "task_identifier": "x.y"}]),
        "node 'a': unknown task_type 'magic'",
        id="unknown-task-type",
    ),
    pytest.param(
        graph([{"id": "a", "task_type": "notebook", "task_identifier": "x.Y"}]),
        "node 'a': task_type 'notebook' is not supported by trio_wf yet",
        id="unsupported-task-type",
    ),
    pytest.param(
        graph([{"id": "a", "task_type": "method", "task_identifier": "nodots"}]),
        "node 'a': task_identifier must be 'package.module.function'",
        id="identifier-syntax",
    ),
    pytest.param(
        graph([{"id": "a", "task_type": "method"}]),
        "node 'a': task_identifier must be",
        id="identifier-missing",
    ),
    pytest.param(
        graph([{"id": "a"}]), "node 'a': needs a task_type", id="no-task-type"
    ),
    pytest.param(
        graph([method("a", "add", default_inputs=[{"name": "x"}])]),
        "node 'a': default_inputs[0] must be",
        id="default-input-without-value",
    ),
    pytest.param(
        graph([method(True, "add")]), "nodes[0].id must be a string", id="bool-id"
    ),
    pytest.param(
        graph(
            [method("a", "add"), method("b", "add")], [link("a", "b", sub_target="x")]
        ),
        "sub_target is only meaningful when the target is a graph node",
        id="sub-target",
    ),
    pytest.param(
        graph([method("a", "add")], schema_version="2.0"),
        "unsupported schema_version '2.0'",
        id="schema-version",
    ),
    pytest.param(
        {
            **graph([method("a", "add")]),
            "__ewoks_serialize__": {"serializer": "json_pickle"},
        },
        "saved by ewokscore with the 'json_pickle' serializer",
        id="pickled-values",
    ),
]


@pytest.mark.parametrize(("document", "message"), INVALID)
def test_validation_errors_name_the_culprit(document: Any, message: str) -> None:
    """Each malformed graph raises GraphValidationError naming the node or link."""
    with pytest.raises(GraphValidationError) as info:
        load_graph(document)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_validation_errors_carry_the_node_and_link() -> None:
    """The offending node id and link index are attributes too."""
    with pytest.raises(GraphValidationError) as info:
        load_graph(graph([method("a", "add")], [link("a", "zz")]))
    assert (info.value.node_id, info.value.link_index) == (None, 0)
    with pytest.raises(GraphValidationError) as info:
        load_graph(graph([method("a", "add"), method("a", "add")]))
    assert info.value.node_id == "a"
    copy_ = pickle.loads(pickle.dumps(info.value))
    assert (str(copy_), copy_.node_id) == (str(info.value), "a")


def test_text_is_capped_in_depth_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deeply nested or oversized graph text is refused before it is used."""
    deep = graph([method("a", "add")])
    value: Any = 1
    for _ in range(MAX_GRAPH_DEPTH):
        value = [value]
    deep["nodes"][0]["default_inputs"] = [{"name": "a", "value": value}]
    with pytest.raises(GraphValidationError, match="nested more than"):
        load_graph(json.dumps(deep))
    with pytest.raises(GraphValidationError, match="nested more than"):
        load_graph('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    from trio_wf.workflow import _limits

    monkeypatch.setattr(_limits, "MAX_GRAPH_BYTES", 100)
    with pytest.raises(GraphValidationError, match="longer than 100"):
        load_graph(json.dumps(CHAIN))


def test_yaml_alias_bomb_is_refused_cheaply(tmp_path: Path) -> None:
    """A small YAML file whose aliases stand for 3**40 values is refused, in
    the time its text takes: each anchor is measured once, not expanded."""
    lines = ["a0: &a0 [1, 2]"]
    for i in range(1, 40):
        lines.append(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]")
    lines += ["graph: {id: bomb}", "nodes: []"]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines))
    start = time.perf_counter()
    with pytest.raises(GraphValidationError, match="values once its aliases"):
        load_graph(tmp_path / "bomb.yaml")
    # Expanding 3**40 values would never end: the bound only catches that.
    assert time.perf_counter() - start < 10
    del lines[1:-2]  # a few aliases are fine
    (tmp_path / "small.yaml").write_text("\n".join(lines))
    assert load_graph(tmp_path / "small.yaml").top_level_extra == {"a0": [1, 2]}
    lines[-1] = "nodes: [[[" + "[" * MAX_GRAPH_DEPTH + "]]]" + "]" * MAX_GRAPH_DEPTH
    (tmp_path / "deep.yaml").write_text("\n".join(lines))
    with pytest.raises(GraphValidationError, match="nested more than"):
        load_graph(tmp_path / "deep.yaml")


def test_invalid_text(tmp_path: Path) -> None:
    """Malformed JSON is a GraphValidationError, not a bare decoder error; so
    is JSON that is not an object."""
    with pytest.raises(GraphValidationError, match="not valid JSON"):
        load_graph("{nope")
    (tmp_path / "list.json").write_text('[{"id": "a"}]')
    with pytest.raises(GraphValidationError, match="a graph must be a JSON object"):
        load_graph(tmp_path / "list.json")
    with pytest.raises(FileNotFoundError):  # only "{..." is JSON text
        load_graph('[{"id": "a"}]')


UNTRUSTED_SCRIPT = """
import sys
from trio_wf.workflow import load_graph
before = set(sys.modules)
graph = load_graph({
    "nodes": [
        {"id": "a", "task_type": "method", "task_identifier": "json.tool.main"},
        {"id": "b", "method": "tests.workflow.tasks.add"},
        {"id": "c", "ppfmethod": "xml.dom.minidom.parse"},
    ],
    "links": [{"source": "a", "target": "b"}],
})
new = sorted(set(sys.modules) - before)
print(new)
"""


def test_untrusted_loading_imports_nothing(tmp_path: Path) -> None:
    """Loading an untrusted graph leaves sys.modules as it was."""
    # cwd: `python -c` puts it first on sys.path, and the checkout's trio_wf/
    # would shadow the installed one.
    result = subprocess.run(
        [sys.executable, "-c", UNTRUSTED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize(
    ("identifier", "cause", "detail"),
    [
        ("tests.workflow.no_such_module.f", ModuleNotFoundError, "no_such_module"),
        ("tests.workflow.tasks.no_such_function", ImportError, "no_such_function"),
        ("tests.workflow.tasks.NOT_CALLABLE", TypeError, "not callable"),
        ("/no/such/file.py::f", ImportError, "does not exist"),
    ],
)
def test_trusted_loading_checks_identifiers(
    identifier: str, cause: type[BaseException], detail: str
) -> None:
    """trusted=True imports every task and names the node and identifier on failure."""
    document = graph([method("a", "add"), method("bad", "add")])
    document["nodes"][1]["task_identifier"] = identifier
    load_graph(document)  # untrusted: structure only
    with pytest.raises(GraphValidationError) as info:
        load_graph(document, trusted=True)
    assert f"node 'bad': cannot import task_identifier {identifier!r}" in str(
        info.value
    )
    assert detail in str(info.value)
    assert isinstance(info.value.__cause__, cause)
    assert info.value.node_id == "bad"


def test_trusted_loading_accepts_importable_tasks(tmp_path: Path) -> None:
    """Module and file identifiers that resolve make a trusted graph."""
    (tmp_path / "mytasks.py").write_text("def double(x):\n    return 2 * x\n")
    document = graph([method("a", "add", inputs={"a": 1}), method("b", "add")])
    document["nodes"][1]["task_identifier"] = "mytasks.py::double"
    document["nodes"][1]["default_inputs"] = [{"name": "x", "value": 2}]
    (tmp_path / "g.json").write_text(json.dumps(document))
    loaded = load_graph(tmp_path / "g.json", trusted=True)
    assert loaded.trusted
    assert load_graph(loaded) is loaded


def test_inputs_selectors() -> None:
    """inputs= items go to a node id, a label, a task suffix, all nodes, or starts."""
    document = graph(
        [
            method("a", "add", label="first"),
            method("b", "join"),
            method("c", "add"),
        ],
        [link("a", "c")],
    )
    loaded = load_graph(
        document,
        inputs=[
            {"name": "x", "value": 1},
            {"label": "first", "name": "y", "value": 2},
            {"task_identifier": "tasks.join", "name": 0, "value": "j"},
            {"all": True, "name": "z", "value": 3},
            {"id": "c", "name": "1", "value": 4},
        ],
    )
    defaults = {nid: dict(node.default_inputs) for nid, node in loaded.nodes.items()}
    assert defaults == {
        "a": {"x": 1, "y": 2, "z": 3},
        "b": {"x": 1, 0: "j", "z": 3},
        "c": {"z": 3, 1: 4},
    }
    assert load_graph(document, inputs={"x": 5}).nodes["b"].default_inputs == {"x": 5}
    with pytest.raises(ValueError, match=r"inputs\[0\] selects node 'nope'"):
        load_graph(document, inputs=[{"id": "nope", "name": "x", "value": 1}])
    with pytest.raises(ValueError, match=r"inputs\[0\] must be"):
        load_graph(document, inputs=[{"id": "a", "value": 1}])


def test_default_error_node_links() -> None:
    """A default error node gets an on_error link from every unhandled node."""
    document = graph(
        [
            method("a", "add"),
            method("b", "add"),
            method("h1", "handler"),
            method("h", "handler", default_error_node=True),
            method("after", "add"),
        ],
        [link("a", "b"), link("a", "h1", on_error=True), link("h", "after")],
    )
    loaded = load_graph(document)
    generated = loaded.links[3:]
    assert [(lk.source, lk.target) for lk in generated] == [("b", "h"), ("h1", "h")]
    assert all(lk.on_error and lk.map_all_data for lk in generated)


@pytest.mark.parametrize(
    ("nodes", "links", "problem"),
    [
        ([method("a", "add")], [], "'a'"),
        (
            [method("a", "identity", inputs={"value": 1}), method("b", "add")],
            [{"source": "a", "target": "b"}],
            "'a'",
        ),
        (
            [
                method("a", "identity", inputs={"value": 1}),
                method("b", "add", inputs={"b": 2}),
            ],
            [
                {
                    "source": "a",
                    "target": "b",
                    "data_mapping": [
                        {"source_output": "return_value", "target_input": "b"}
                    ],
                }
            ],
            "'a'",
        ),
    ],
    ids=["no-inputs", "trigger-only-link", "wrong-name-mapped"],
)
def test_trusted_loading_finds_missing_required_inputs(
    nodes: list[Any], links: list[Any], problem: str
) -> None:
    """Row 27: a required input with no source fails before anything runs,
    naming the node and the input; untrusted loading cannot tell, and accepts."""
    document = graph(nodes, links)
    load_graph(document)
    with pytest.raises(
        GraphValidationError, match=f"required input\\(s\\) {problem}"
    ) as info:
        load_graph(document, trusted=True)
    assert info.value.node_id == nodes[-1]["id"]


@pytest.mark.parametrize(
    ("nodes", "links"),
    [
        ([method("a", "add", inputs={"a": 1})], []),
        ([method("a", "add", inputs={0: 1})], []),
        (
            [method("a", "identity", inputs={"value": 1}), method("b", "add")],
            [
                {
                    "source": "a",
                    "target": "b",
                    "data_mapping": [
                        {"source_output": "return_value", "target_input": "a"}
                    ],
                }
            ],
        ),
        (
            [method("a", "identity", inputs={"value": 1}), method("b", "add")],
            [{"source": "a", "target": "b", "map_all_data": True}],
        ),
    ],
    ids=["keyword", "positional", "mapped", "map_all_data"],
)
def test_trusted_loading_accepts_provided_inputs(
    nodes: list[Any], links: list[Any]
) -> None:
    """Inputs given by default_inputs (by name or position) or links satisfy it."""
    assert load_graph(graph(nodes, links), trusted=True).trusted


def test_trusted_loading_counts_inputs_option() -> None:
    """inputs= entries count as sources of required inputs."""
    document = graph([method("a", "add")])
    loaded = load_graph(
        document, trusted=True, inputs=[{"id": "a", "name": "a", "value": 1}]
    )
    assert loaded.trusted
