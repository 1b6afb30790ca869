"""Graphs as ewokscore writes and reads them: its dumps, its serialized
values, its default error nodes at every level.

Contract tests of `load_graph` against the installed ewokscore: the graphs come
from ewokscore's own tests, and what trio_wf makes of them is compared with
what ewokscore's ``load_graph`` makes of the same documents, computed here, or
run with upstream's own assertions on real workers (ewokscore's sub-graph
files, one graph of ewoksppf's tests).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from ewokscore import load_graph as ewoks_load_graph
from ewokscore.tests import test_default_error_handlers
from ewokscore.tests.serialization import test_sub_graph as upstream_sub_graphs
from ewoksppf.tests import test_ppf_workflow24

from trio_wf.workflow import GraphValidationError, Link, execute_graph, load_graph

from .helpers import graph, method
from .tasks import RecordedWhenUnpickled


def with_identifiers(document: Any) -> Any:
    """``document`` with ewokscore's placeholder ``"dummy"`` identifiers (which
    ewokscore never checks) replaced by real ones, in nested graphs too."""
    document = copy.deepcopy(document)
    todo = [document]
    while todo:
        graph = todo.pop()
        for node in graph["nodes"]:
            if node["task_identifier"] == "dummy":
                node["task_identifier"] = "builtins.dict"
            elif node["task_type"] == "graph":
                todo.append(node["task_identifier"])
    return document


def ewoks_attributes(link: Link) -> dict[str, Any]:
    """A link's attributes as ewokscore's graph keeps them: those it sets."""
    attributes: dict[str, Any] = {}
    if link.map_all_data:
        attributes["map_all_data"] = True
    if link.on_error:
        attributes["on_error"] = True
    if link.data_mapping:
        attributes["data_mapping"] = [
            {"source_output": m.source_output, "target_input": m.target_input}
            for m in link.data_mapping
        ]
    return attributes


@pytest.mark.parametrize("model", ["model1", "model2"])
def test_default_error_nodes_are_wired_as_ewokscore_wires_them(model: str) -> None:
    """Each graph's default error node gets the errors of that graph's nodes,
    its sub-graphs' handlers included, and nothing from other levels."""
    document = getattr(test_default_error_handlers, model)()
    expected = {
        edge: dict(attributes)
        for edge, attributes in ewoks_load_graph(
            copy.deepcopy(document)
        ).graph.edges.items()
    }
    graph = load_graph(with_identifiers(document))
    links = {(link.source, link.target): ewoks_attributes(link) for link in graph.links}
    assert links == expected


def test_default_error_attributes_without_data_map_all_data() -> None:
    """As in ewokscore, a handler's default_error_attributes that map no data
    get map_all_data; those that do keep their mapping."""
    mapping = [{"source_output": "node_id", "target_input": "failed"}]
    document = {
        "graph": {"id": "g"},
        "nodes": [
            {"id": "a", "task_type": "method", "task_identifier": "builtins.dict"},
            {
                "id": "h1",
                "task_type": "method",
                "task_identifier": "builtins.dict",
                "default_error_node": True,
                "default_error_attributes": {"required": True},
            },
            {
                "id": "h2",
                "task_type": "method",
                "task_identifier": "builtins.dict",
                "default_error_node": True,
                "default_error_attributes": {"data_mapping": mapping},
            },
        ],
    }
    ewoks_edges = ewoks_load_graph(copy.deepcopy(document)).graph.edges
    graph = load_graph(document)
    for link in graph.links:
        expected = ewoks_edges[link.source, link.target]
        assert link.on_error is expected["on_error"] is True
        assert link.map_all_data is bool(expected.get("map_all_data"))
        assert len(link.data_mapping) == len(expected.get("data_mapping", ()))
    assert {(link.source, link.target) for link in graph.links} == set(ewoks_edges)


def test_upstream_nested_default_error_handlers_test_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ewoksppf's test of default error nodes that are sub-graphs, themselves
    with default error nodes: which tasks run, and what reaches the handlers
    (the failed task's inputs and WorkflowExceptionInstance)."""

    def execute(graph: Any, **options: Any) -> Any:
        return execute_graph(graph, worker_type="fork", **options)

    monkeypatch.setattr(test_ppf_workflow24, "execute_graph", execute)
    # Its argument is a fixture that configures pypushflow's database.
    test_ppf_workflow24.test_ppf_workflow24(None)


def described(loaded: Any) -> tuple[Any, ...]:
    """What running a loaded graph depends on, comparable across loads."""
    nodes = {
        node.id: (node.task_type, node.task_identifier, dict(node.default_inputs))
        for node in loaded.nodes.values()
    }
    links = sorted(
        (repr(link.source), repr(link.target), ewoks_attributes(link))
        for link in loaded.links
    )
    return nodes, links, loaded.analysis.start_nodes, loaded.analysis.end_nodes


@pytest.mark.parametrize("representation", ["json_dict", "json_string", "json", "yaml"])
def test_graph_saved_by_ewokscore_loads_as_the_graph_it_came_from(
    representation: str, tmp_path: Path
) -> None:
    """ewokscore's dump() of a graph of nested sub-graphs (flattened, tuple
    ids, the aliases of its sub-graphs left at the top) loads in trio_wf's
    loader as the same graph as the original document."""
    document = upstream_sub_graphs.nonserialized_graph()
    destination = {"json": tmp_path / "g.json", "yaml": tmp_path / "g.yml"}
    path = destination.get(representation)
    dumped = ewoks_load_graph(copy.deepcopy(document)).dump(
        None if path is None else str(path), representation=representation
    )
    assert "input_nodes" in (ewoks_load_graph(copy.deepcopy(document)).dump()["graph"])
    assert described(load_graph(dumped)) == described(load_graph(document))


@pytest.mark.parametrize("representation", ["json", "yaml"])
def test_upstream_sub_graph_files_test_passes_on_our_loader(
    representation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ewokscore's test of graph files naming sub-graph files (relative
    paths, paths through nested graph nodes, aliases that name no node),
    loaded and run by trio_wf, with upstream's assertions."""

    def load(source: str, root_dir: str) -> Any:
        return load_graph(Path(root_dir) / source)

    def execute(loaded: Any, **options: Any) -> Any:
        return execute_graph(loaded, worker_type="fork", **options)

    monkeypatch.setattr(upstream_sub_graphs, "load_graph", load)
    monkeypatch.setattr(upstream_sub_graphs, "execute_graph", execute)
    upstream_sub_graphs.test_sub_graph_execute(representation, tmp_path)


def pickled_graph(tmp_path: Path) -> tuple[Path, Path]:
    """A graph file ewokscore saved with json_pickle, whose default inputs are
    a tuple and a value that records its unpickling in a file."""
    marker = tmp_path / "unpickled.txt"
    nodes = [
        method("a", "identity", inputs={"value": (1, 2)}),
        method("b", "identity", inputs={"value": RecordedWhenUnpickled(str(marker))}),
    ]
    path = tmp_path / "pickled.json"
    ewoks_load_graph(graph(nodes)).dump(str(path), serializer="json_pickle")
    return path, marker


def parent_of(path: Path) -> Path:
    """A graph file beside ``path`` whose one node is that graph file."""
    parent = path.with_name("parent.json")
    node = {"id": "sub", "task_type": "graph", "task_identifier": path.name}
    parent.write_text(json.dumps(graph([node])))
    return parent


def test_pickled_values_are_refused_unless_the_graph_is_trusted(
    tmp_path: Path,
) -> None:
    """Loading a pickle runs code: an untrusted graph saved with json_pickle
    (or naming a sub-graph file that is) is refused, saying why and how to
    trust it, and nothing is unpickled."""
    path, marker = pickled_graph(tmp_path)
    with pytest.raises(GraphValidationError) as info:
        load_graph(path)
    message = str(info.value)
    assert "'json_pickle' serializer" in message
    assert "loading a pickle can run any code" in message
    assert "trusted=True" in message
    with pytest.raises(GraphValidationError, match=r"sub-graph file .*json_pickle"):
        execute_graph(parent_of(path))
    assert not marker.exists()


def test_pickled_values_are_decoded_after_the_allow_list(tmp_path: Path) -> None:
    """Trusted, the allow-list still comes first; then ewokscore decodes the
    values, the graph's and its sub-graph files'."""
    path, marker = pickled_graph(tmp_path)
    with pytest.raises(GraphValidationError, match="is not allowed"):
        load_graph(path, trusted=True, allowed_tasks=["builtins."])
    assert not marker.exists()
    result = execute_graph(
        load_graph(path, trusted=True), outputs=[{"all": True}], merge_outputs=False
    )
    assert result == {"a": {"return_value": (1, 2)}, "b": {"return_value": "unpickled"}}
    assert marker.read_text().split() == ["unpickled"]
    loaded = load_graph(parent_of(path), trusted=True)
    assert loaded.nodes["sub", "a"].default_inputs == {"value": (1, 2)}


def test_yaml_tuples_load_and_other_python_tags_do_not(tmp_path: Path) -> None:
    """ewokscore's YAML tags tuples !!python/tuple (a sub-graph path, say):
    they load as tuples; a tag that would build or call anything else is
    refused before anything is built."""
    marker = tmp_path / "called"
    text = (
        "graph: {id: g}\n"
        "nodes:\n"
        "- id: a\n"
        "  task_type: method\n"
        "  task_identifier: tests.workflow.tasks.identity\n"
        "  default_inputs:\n"
        "  - {name: value, value: !!python/tuple [1, 2]}\n"
    )
    path = tmp_path / "g.yml"
    path.write_text(text)
    assert load_graph(path).nodes["a"].default_inputs == {"value": (1, 2)}
    path.write_text(
        text.replace(
            "!!python/tuple [1, 2]",
            f"!!python/object/apply:tests.workflow.tasks.record [{marker}, x]",
        )
    )
    with pytest.raises(GraphValidationError, match="is not valid YAML"):
        load_graph(path)
    assert not marker.exists()
