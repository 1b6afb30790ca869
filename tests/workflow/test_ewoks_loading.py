"""Graphs as ewokscore's loader reads them: default error nodes at every level.

Contract tests of `load_graph` against the installed ewokscore: the graphs come
from ewokscore's own tests, and what trio_wf makes of them is compared with
what ewokscore's ``load_graph`` makes of the same documents, computed here.
One graph of ewoksppf's tests also runs, on real workers, with its own
assertions.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ewokscore import load_graph as ewoks_load_graph
from ewokscore.tests import test_default_error_handlers
from ewoksppf.tests import test_ppf_workflow24

from trio_wf.workflow import Link, execute_graph, load_graph


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
