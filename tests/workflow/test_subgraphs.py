"""Collaboration tests of sub-graphs (task_type "graph"), flattened on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trio_wf.workflow import (
    GraphValidationError,
    WorkflowExecutionError,
    aexecute_graph,
    load_graph,
)

from .helpers import InProcess, graph, link, method

RV = "return_value"


def adder(**attributes: Any) -> Any:
    """in (+10) -> out (+100), with aliases x (in) and y (out)."""
    return graph(
        [
            method("in", "add", inputs={"b": 10}),
            method("out", "add", inputs={"b": 100}),
        ],
        [link("in", "out", (RV, "a"))],
        input_nodes=[{"id": "x", "node": "in"}],
        output_nodes=[{"id": "y", "node": "out"}],
        **attributes,
    )


def parent(sub: Any, **graph_node: Any) -> Any:
    return graph(
        [
            method("a", "add", inputs={"a": 1}),
            {"id": "G", "task_type": "graph", "task_identifier": sub, **graph_node},
            method("c", "identity"),
        ],
        [
            link("a", "G", (RV, "a"), sub_target="x"),
            link("G", "c", (RV, "value"), sub_source="y"),
        ],
    )


async def test_a_sub_graph_file_is_flattened(
    tmp_path: Path, autojump_clock: Any, backend: InProcess
) -> None:
    """A graph node's nodes get tuple ids; links go through its aliases."""
    (tmp_path / "sub.json").write_text(json.dumps(adder()))
    (tmp_path / "main.json").write_text(json.dumps(parent("sub.json")))
    loaded = load_graph(tmp_path / "main.json")
    assert list(loaded.nodes) == ["a", ("G", "in"), ("G", "out"), "c"]
    assert loaded.nodes["G", "in"].display_label == "G:in"
    assert [(k.source, k.target) for k in loaded.links] == [
        (("G", "in"), ("G", "out")),
        ("a", ("G", "in")),
        (("G", "out"), "c"),
    ]
    assert loaded.links[1].sub_target == "x"
    result = await aexecute_graph(loaded, context=backend)
    assert result == {RV: 111}


async def test_inline_nested_sub_graphs_and_paths(
    autojump_clock: Any, backend: InProcess
) -> None:
    """Sub-graphs nest; a reference can be a node id or a path through graph
    nodes; the graph node's default inputs go to the input nodes."""
    middle = graph(
        [{"id": "H", "task_type": "graph", "task_identifier": adder()}],
        [],
        input_nodes=[{"id": "entry", "node": "H", "sub_node": "x"}],
        output_nodes=[{"id": "exit", "node": "H", "sub_node": ["out"]}],
    )
    document = parent(middle)
    document["links"][0]["sub_target"] = "entry"
    document["links"][1]["sub_source"] = ["H", "y"]
    result = await aexecute_graph(document, context=backend, merge_outputs=False)
    assert result == {"c": {RV: 111}}
    alone = graph(
        [
            {
                "id": "G",
                "task_type": "graph",
                "task_identifier": adder(),
                "default_inputs": [{"name": "a", "value": 5}],
            }
        ]
    )
    assert await aexecute_graph(alone, context=backend) == {RV: 115}


async def test_a_failure_inside_names_the_tuple_id(
    autojump_clock: Any, backend: InProcess
) -> None:
    """A failing node of a sub-graph is named by its tuple id and label."""
    sub = adder()
    sub["nodes"][1] = method("out", "fail", inputs={"message": "inner"})
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(parent(sub), context=backend)
    assert info.value.node_id == ("G", "out")
    assert "task 'G:out' (node id ('G', 'out')" in str(info.value)


def test_sub_graph_errors(tmp_path: Path) -> None:
    """Unknown aliases, missing files and self-inclusion name the graph node."""
    bad_alias = parent(adder())
    bad_alias["links"][0]["sub_target"] = "nope"
    with pytest.raises(GraphValidationError, match="'nope' is neither a node nor"):
        load_graph(bad_alias)
    with pytest.raises(GraphValidationError, match="node 'G': cannot read sub-graph"):
        load_graph(parent(str(tmp_path / "missing.json")))
    (tmp_path / "loop.json").write_text(json.dumps(parent("loop.json")))
    with pytest.raises(GraphValidationError, match="includes itself"):
        load_graph(tmp_path / "loop.json")
    broken = adder()
    broken["nodes"][0]["task_type"] = "bogus"
    with pytest.raises(GraphValidationError, match="in sub-graph node 'G': node 'in'"):
        load_graph(parent(broken))
    with pytest.raises(GraphValidationError, match="must be a graph file path or"):
        load_graph(parent(42))


def test_an_alias_is_checked_when_a_link_uses_it() -> None:
    """An alias naming no node of its graph is an error once a link goes
    through it, and none before (as in ewokscore, whose saved graphs keep the
    aliases of their sub-graphs)."""
    sub = adder()
    sub["graph"]["input_nodes"].append({"id": "stale", "node": "gone"})
    sub["graph"]["output_nodes"].append({"id": "loose"})
    assert list(load_graph(sub).nodes) == ["in", "out"]
    assert list(load_graph(parent(sub)).nodes) == ["a", ("G", "in"), ("G", "out"), "c"]
    used = parent(sub)
    used["links"][0]["sub_target"] = "stale"
    with pytest.raises(GraphValidationError) as info:
        load_graph(used)
    assert "alias 'stale' of the sub-graph" in str(info.value)
    assert "'gone' is not a node of the graph" in str(info.value)
    used["links"][0]["sub_target"] = "x"
    used["links"][1]["sub_source"] = "loose"
    with pytest.raises(GraphValidationError, match=r"output_nodes\[1\] names no node"):
        load_graph(used)
