"""Collaboration tests of the engine against hostile graphs and inputs (issue 15).

Each test is one way an attacker or a careless user found to make the loader or
the walker hang, leak an internal error, misread a path, repeat megabytes of
input, or import a task the allow-list refuses.  Tasks run in this process
(``worker_type="sequential"`` or the in-process test backend), except where
the command line is under test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_wf import _util
from trio_wf.workflow import (
    GraphValidationError,
    WorkflowExecutionError,
    _limits,
    aexecute_graph,
    execute_graph,
    load_graph,
)
from trio_wf.workflow._cli import main

from .helpers import InProcess, graph, link, method

ROOT = Path(__file__).parents[2]
#: The longest message an error may carry (the documented limit).
MESSAGE_LIMIT = 2000
#: How much of one value a message quotes (the documented limit).
QUOTE_LIMIT = 200
#: Positions are 0 to this (the documented limit).
LAST_POSITION = 999


def two_nodes(**link_attributes: Any) -> Any:
    return graph(
        [method("a", "add"), method("b", "add")], [link("a", "b", **link_attributes)]
    )


# -- 1. a huge positional input name ---------------------------------------------


@pytest.mark.parametrize("position", [LAST_POSITION + 1, 10**9, 10**30, "9" * 5000])
def test_positional_input_names_are_checked_against_the_limit(position: Any) -> None:
    """Issue 15.1: a position past the limit is refused on load, naming the node,
    however big: no work in proportion to the number."""
    document = graph(
        [
            {
                "id": "n",
                "task_type": "method",
                "task_identifier": "builtins.abs",
                "default_inputs": [
                    {"name": 0, "value": -1},
                    {"name": position, "value": 1},
                ],
            }
        ]
    )
    with pytest.raises(GraphValidationError) as info:
        load_graph(document)
    message = str(info.value)
    assert message.startswith("node 'n': default_inputs[1].name ")
    assert f"0 to {LAST_POSITION}" in message
    assert info.value.node_id == "n"
    assert len(message) < 500


def test_the_last_position_is_allowed() -> None:
    """Position 999 loads; a gap before it fails the node, named, at run time."""
    inputs = [{"name": 0, "value": -1}, {"name": LAST_POSITION, "value": 1}]
    node = {
        "id": "n",
        "task_type": "method",
        "task_identifier": "builtins.abs",
        "default_inputs": inputs,
    }
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(graph([node]), worker_type="sequential", timeout=10)
    assert str(info.value.__cause__) == (
        "node 'n' has positional inputs [0, 999] but not 1: positional inputs "
        "must be numbered from 0 without gaps"
    )


@pytest.mark.parametrize(
    "where",
    [
        lambda p: link("a", "b", ("return_value", p)),
        lambda p: link("a", "b", ("return_value", str(p))),
    ],
)
def test_positions_in_links_and_inputs_are_checked_too(where: Any) -> None:
    """Link target inputs and ``inputs=`` names obey the same limit."""
    document = graph([method("a", "add"), method("b", "add")], [where(10**9)])
    with pytest.raises(GraphValidationError, match=r"^link 0 \('a' -> 'b'\): data"):
        load_graph(document)
    with pytest.raises(ValueError, match=r"inputs\[0\]\.name must be"):
        load_graph(graph([method("a", "add")]), inputs=[{"name": 10**9, "value": 1}])


# -- 2. wrong types anywhere ----------------------------------------------------

NODE = {"id": "a", "task_type": "method", "task_identifier": "m.f"}
WRONG_TYPES = [
    (two_nodes(conditions=1.5), r"^link 0 \('a' -> 'b'\): conditions must be a list"),
    (two_nodes(data_mapping=5), r"^link 0 \('a' -> 'b'\): data_mapping must be a li"),
    (two_nodes(data_mapping="ab"), r"^link 0 \('a' -> 'b'\): data_mapping must be a "),
    (two_nodes(conditions={"a": 1}), r"^link 0 \('a' -> 'b'\): conditions must be a"),
    (two_nodes(data_mapping=[{"target_input": [1]}]), r"target_input must be a str"),
    (two_nodes(map_all_data="yes"), r"^link 0 \('a' -> 'b'\): map_all_data must be"),
    (two_nodes(sub_source={}), r"^link 0 \('a' -> 'b'\): sub_source is only"),
    (graph([{**NODE, "default_inputs": 5}]), r"^node 'a': default_inputs must be a"),
    (graph([{**NODE, "default_inputs": 0}]), r"^node 'a': default_inputs must be a"),
    (graph([{**NODE, "default_inputs": {"x": 1}}]), r"^node 'a': default_inputs mu"),
    (graph([{**NODE, "default_inputs": [{"name": "\u00b2", "value": 1}]}]), None),
    (graph([{**NODE, "label": 3}]), r"^node 'a': label must be a string"),
    (graph([{**NODE, "force_start_node": "no"}]), r"^node 'a': force_start_node mu"),
    (graph([{**NODE, "id": 1.5}]), r"^nodes\[0\]\.id must be a string"),
    (graph([{**NODE, "id": []}]), r"^nodes\[0\]\.id must be a string"),
    (graph([{**NODE, "task_type": ["method"]}]), r"^node 'a': unknown task_type"),
    (graph([{**NODE, "task_identifier": 7}]), r"^node 'a': task_identifier must be"),
    ({"graph": [], "nodes": []}, r"^'graph' must be an object"),
    ({"graph": {"id": "g"}, "nodes": {}}, r"^'nodes' must be a list"),
    ({"graph": {"id": "g"}, "nodes": [], "links": 3}, r"^'links' must be a list"),
    (graph([NODE], input_nodes=3), r"^graph input_nodes must be a list"),
    (
        graph([NODE], output_nodes=[{"id": "x", "node": "a", "link_attributes": 1}]),
        "link_attributes must be an object",
    ),
    (
        graph([{**NODE, "default_error_node": True, "default_error_attributes": 1}]),
        r"^node 'a': default_error_attributes must be an object",
    ),
    (
        graph(
            [
                {
                    "id": "g",
                    "task_type": "graph",
                    "task_identifier": graph([NODE]),
                    "force_start_node": "x",
                }
            ]
        ),
        r"^node 'g': force_start_node must be true or false",
    ),
    (
        graph([{"id": "g", "task_type": "graph", "task_identifier": "no\0such.json"}]),
        r"^node 'g': cannot read sub-graph",
    ),
]


@pytest.mark.parametrize(("document", "pattern"), WRONG_TYPES)
def test_wrong_types_are_validation_errors(document: Any, pattern: str | None) -> None:
    """Issue 15.2: a wrong type anywhere is a GraphValidationError naming the
    node or link and the field, never an internal TypeError or KeyError."""
    if pattern is None:
        load_graph(document)
        return
    with pytest.raises(GraphValidationError) as info:
        load_graph(document)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_unicode_digits_are_names_not_positions() -> None:
    """Only ASCII digit strings are positions: ``"²"`` is a keyword like any."""
    loaded = load_graph(
        graph([{**NODE, "default_inputs": [{"name": "²", "value": 1}]}])
    )
    assert dict(loaded.nodes["a"].default_inputs) == {"²": 1}


def deep(depth: int) -> Any:
    value: Any = "a"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "document",
    [
        graph([{**NODE, "id": deep(10_000)}]),
        graph([{**NODE, "default_inputs": [{"name": "x", "value": deep(10_000)}]}]),
        graph([NODE], [link("a", deep(10_000))]),
    ],
)
def test_deep_dicts_are_refused_like_deep_text(document: Any) -> None:
    """A dict is held to the nesting limit of text: no RecursionError."""
    with pytest.raises(GraphValidationError, match="nested more than 100 levels"):
        load_graph(document)


def test_a_recursive_dict_is_refused() -> None:
    """A list that contains itself nests without end."""
    loop: list[Any] = ["a"]
    loop.append(loop)
    with pytest.raises(GraphValidationError, match="nested more than"):
        load_graph(graph([{**NODE, "id": loop}]))


def test_sub_graphs_used_many_times_are_counted_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten graph nodes per level naming the next level's file, twelve levels
    deep, would flatten to 10**12 nodes: refused once the count passes the
    limit (lowered here, to keep the test fast)."""
    monkeypatch.setattr(_limits, "MAX_GRAPH_ELEMENTS", 10_000)
    for level in range(12):
        nodes = [
            {"id": i, "task_type": "graph", "task_identifier": f"level{level + 1}.json"}
            for i in range(10)
        ]
        (tmp_path / f"level{level}.json").write_text(json.dumps(graph(nodes)))
    (tmp_path / "level12.json").write_text(json.dumps(graph([NODE])))
    start = time.perf_counter()
    with pytest.raises(GraphValidationError, match="more than 10000 nodes and links"):
        load_graph(tmp_path / "level0.json")
    assert time.perf_counter() - start < 10


def test_a_sub_graph_file_must_be_a_regular_file(tmp_path: Path) -> None:
    """A FIFO (or a device) named as a sub-graph would block the load forever."""
    os.mkfifo(tmp_path / "pipe.json")
    document = graph(
        [{"id": "g", "task_type": "graph", "task_identifier": "pipe.json"}]
    )
    (tmp_path / "g.json").write_text(json.dumps(document))
    with pytest.raises(GraphValidationError, match="is not a regular file"):
        load_graph(tmp_path / "g.json")
    with pytest.raises(GraphValidationError, match="is not a regular file"):
        load_graph(tmp_path / "pipe.json")


# -- 3. a path is a path ----------------------------------------------------------


def test_a_path_with_braces_is_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15.3: only a str starting with ``{`` (after whitespace) is JSON."""
    path = tmp_path / "run{1}.json"
    path.write_text(json.dumps(graph([method("a", "add", inputs={"a": 1})])))
    assert load_graph(str(path)).id == "test"
    assert load_graph(path).id == "test"
    assert load_graph("\n  " + path.read_text()).id == "test"
    assert main(["run", str(path), "--worker-type", "sequential"]) == 0
    assert capsys.readouterr().out == "return_value: 1\n"
    brace = tmp_path / "{x}.json"
    brace.write_text(path.read_text())
    assert main(["run", str(brace), "--worker-type", "sequential"]) == 0
    with pytest.raises(FileNotFoundError):
        load_graph(str(tmp_path / "no{such}.json"))


# -- 4. messages quote a bounded part of the input -----------------------------


def test_a_huge_id_is_quoted_with_its_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15.4: a 10 MB node id in a dangling link: a short message that
    shows its start, an ellipsis and its full length."""
    huge = "x" * 10_000_000
    document = graph([method("a", "add")], [link("a", huge)])
    with pytest.raises(GraphValidationError) as info:
        load_graph(document)
    message = str(info.value)
    assert len(message) < 1000
    assert f"'{'x' * QUOTE_LIMIT}'... (10000000 characters)" in message
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1000
    assert "(10000000 characters) is not a node of the graph" in err


def test_a_huge_error_from_a_task_is_cut(tmp_path: Path) -> None:
    """A task failing with a 10 MB message: WorkflowExecutionError stays short
    (its cause keeps the whole message)."""
    document = graph([method("a", "fail", inputs={"message": "y" * 10_000_000})])
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(document, worker_type="sequential")
    assert len(str(info.value)) <= MESSAGE_LIMIT
    assert "ValueError: yyyy" in str(info.value)
    assert len(str(info.value.__cause__)) == 10_000_000


@pytest.mark.parametrize(
    "document",
    [
        graph([{**NODE, "task_identifier": "m." + "-" * 10**6}]),
        graph([{**NODE, "task_type": "t" * 10**6}]),
        graph([{**NODE, "label": 10**10000}]),
        graph([NODE], schema_version="9" * 10**6),
        graph(
            [{**NODE, "id": ["i" * 10**6] * 1000}, {**NODE, "id": ["i" * 10**6] * 1000}]
        ),
        graph(
            [method(str(i) * 1000, "add") for i in range(1000)],
            [link(str(i) * 1000, str(i + 1) * 1000) for i in range(999)]
            + [link("999" * 1000, "0" * 1000)],
        ),
    ],
)
def test_every_message_is_bounded(document: Any) -> None:
    """Long identifiers, task types, labels, versions, ids and cycles."""
    with pytest.raises(GraphValidationError) as info:
        load_graph(document)
    assert len(str(info.value)) <= MESSAGE_LIMIT


# -- 5. the allow-list from the command line ------------------------------------


def test_the_command_line_imports_nothing_the_allow_list_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15.5: ``--trusted --allow-task`` checks the allow-list before
    importing: the module that writes a marker when imported is never run."""
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef f():\n    pass\n"
    )
    document = graph(
        [{"id": "evil", "task_type": "method", "task_identifier": "evil.py::f"}]
    )
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    for extra in (["--trusted"], [], ["--trusted", "--worker-type", "sequential"]):
        status = main(["run", str(path), "--allow-task", "ok.*", *extra])
        assert status == 2
        assert "node 'evil': task_identifier" in capsys.readouterr().err
        assert not marker.exists()
    # Inside a sub-graph, from the library: the same.
    outer = graph([{"id": "g", "task_type": "graph", "task_identifier": "graph.json"}])
    (tmp_path / "outer.json").write_text(json.dumps(outer))
    with pytest.raises(GraphValidationError, match=r"node \('g', 'evil'\): task_id"):
        load_graph(tmp_path / "outer.json", trusted=True, allowed_tasks=["ok.*"])
    assert main(["run", str(tmp_path / "outer.json"), "--allow-task", "ok.*"]) == 2
    assert not marker.exists()
    # Allowed, a trusted load imports it (which is what --trusted is for).
    allowed = ["--allow-task", f"{tmp_path}/*", "--worker-type", "sequential"]
    assert main(["run", str(path), *allowed, "--trusted"]) == 0
    assert marker.exists()


# -- 6. loading never blocks Trio's thread ---------------------------------------


class SlowGraph(dict):  # type: ignore[type-arg]
    """A graph dict whose reading blocks (in whatever thread reads it) until
    ``release`` is set: a stand-in for a graph that takes long to prepare."""

    def __init__(self, document: Any) -> None:
        super().__init__(document)
        self.entered = threading.Event()
        self.release = threading.Event()

    def get(self, key: Any, default: Any = None) -> Any:
        self.entered.set()
        self.release.wait(30)
        return super().get(key, default)


async def test_a_timeout_fires_while_the_graph_is_prepared() -> None:
    """Issue 15.6: the run's timeout covers loading, which happens off Trio's
    thread: it fires while the load is blocked."""
    slow = SlowGraph(graph([method("a", "add", inputs={"a": 1})]))
    start = trio.current_time()
    try:
        with pytest.raises(TimeoutError, match="being prepared"):
            await aexecute_graph(slow, timeout=0.2, context=InProcess(delay=0))
        # Generous: only tells "fired while loading" from "fired after 30 s".
        assert trio.current_time() - start < 15
    finally:
        slow.release.set()


async def test_a_cancellation_fires_while_the_graph_is_prepared() -> None:
    """A cancel scope around the run is obeyed while the load is blocked."""
    slow = SlowGraph(graph([method("a", "add", inputs={"a": 1})]))
    start = trio.current_time()
    try:
        with trio.move_on_after(0.2) as scope:
            await aexecute_graph(slow, context=InProcess(delay=0))
        assert scope.cancelled_caught
        assert slow.entered.is_set()
        assert trio.current_time() - start < 15
    finally:
        slow.release.set()


def test_ctrl_c_fires_while_the_graph_is_prepared() -> None:
    """SIGINT while the load is blocked raises KeyboardInterrupt at once."""
    slow = SlowGraph(graph([method("a", "add", inputs={"a": 1})]))

    def interrupt() -> None:
        if slow.entered.wait(30):
            signal.raise_signal(signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            execute_graph(slow, worker_type="sequential")
        assert time.monotonic() - start < 15
    finally:
        slow.release.set()
        thread.join()


def test_the_failure_page_lists_the_limits() -> None:
    """Issue 15.7: the Failure semantics page gives every limit's value."""
    page = (ROOT / "docs" / "failures.rst").read_text()
    for value in [
        f"{_limits.MAX_GRAPH_VALUES:,}",
        f"{_limits.MAX_GRAPH_ELEMENTS:,}",
        f"{_limits.MAX_GRAPH_DEPTH} levels",
        f"{_limits.MAX_NESTING} levels",
        f"0 to {_limits.MAX_POSITION}",
        f"{_util.QUOTE_LIMIT} characters",
        f"{_util.MESSAGE_LIMIT} characters",
        f"{_limits.MAX_GRAPH_BYTES // 2**20} MiB",
    ]:
        assert value in page, value
    assert (MESSAGE_LIMIT, QUOTE_LIMIT) == (_util.MESSAGE_LIMIT, _util.QUOTE_LIMIT)
