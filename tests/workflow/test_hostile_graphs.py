"""Collaboration tests of the loader and walker against mutated graphs (issue 15).

Valid graphs (a chain, positional inputs, a loop, error handlers, a sub-graph)
are mutated at random: wrong types, missing, extra and renamed keys, huge and
negative numbers, deep nesting, long strings, unicode ids, duplicated items,
self links and cycles.  Each is then run in this process, as a dict or as JSON
text, by the in-process test backend (tasks run in Trio's thread, so no worker
is started and none can be left behind).  Whatever comes in, the engine must
answer within a deadline with a result or a documented error whose message is
of bounded size; a node failure must come from the task itself, never from the
engine around it.

The suite runs a few hundred derandomized examples (profile ``ci``, a few
seconds); ``nox -s fuzz`` runs many more, at random (profile ``fuzz``, set by
``TRIO_WF_HYPOTHESIS_PROFILE``).
"""

from __future__ import annotations

import copy
import json
import os
import traceback
from pathlib import Path
from typing import Any

import hypothesis
import trio
from hypothesis import strategies as st

import trio_wf
from trio_wf.workflow import (
    GraphValidationError,
    LoopLimitError,
    TaskInputError,
    WorkflowExecutionError,
    aexecute_graph,
)

from .helpers import InProcess, graph, link, method

hypothesis.settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.data_too_large,
    ],
)
hypothesis.settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.too_slow,
        hypothesis.HealthCheck.data_too_large,
    ],
)
PROFILE = os.environ.get("TRIO_WF_HYPOTHESIS_PROFILE", "ci")

TASKS = "tests.workflow.tasks."
#: The only tasks a mutated graph may run: each one's work is bounded by its inputs.
ALLOWED = [
    f"{TASKS}{name}" for name in ("add", "identity", "join", "total", "fail", "handler")
]
#: The longest message an error may carry (documented on the Failure page).
MESSAGE_LIMIT = 2000
#: Seconds one example may take: generous, it only tells a hang from slowness.
DEADLINE = 20
#: Where the engine's own code lives: an error raised there by accident (not by
#: a ``raise`` statement of the engine) is a bug, even as a node's failure.
ENGINE = str(Path(trio_wf.__file__).parent)
#: The keys of the ewoks format, for renaming one into another.
KEYS = [
    *("graph", "nodes", "links", "id", "label", "schema_version"),
    *("task_type", "task_identifier", "default_inputs", "name", "value"),
    *("force_start_node", "conditions_else_value", "default_error_node"),
    *("default_error_attributes", "source", "target", "data_mapping"),
    *("source_output", "target_input", "conditions", "map_all_data", "on_error"),
    *("required", "sub_source", "sub_target", "input_nodes", "output_nodes"),
    *("node", "sub_node", "link_attributes"),
]
#: Strings with a meaning somewhere in a graph.
WORDS = [
    *("method", "ppfmethod", "ppfport", "class", "script", "graph", "notebook"),
    *(f"{TASKS}{name}" for name in ("add", "identity", "kwargs", "sleep")),
    *("os.system", "/dev/zero", "run{1}.json", "../g.json", "return_value"),
    *("_ppfdict", "1.0", "1.1", "1.2", "0", "999", "1000", "\u00b2", "a", "b"),
]


RV = "return_value"


def _base_graphs() -> list[dict[str, Any]]:
    chain = graph(
        [
            method("a", "add", inputs={"a": 1, "b": 2}),
            method("b", "add", inputs={"b": 3}),
            method("c", "identity"),
        ],
        [link("a", "b", (RV, "a")), link("b", "c", (RV, "value"))],
        schema_version="1.1",
    )
    positional = graph(
        [
            method(
                0,
                "total",
                default_inputs=[{"name": 0, "value": 1}, {"name": "1", "value": 2}],
            ),
            method(["j", 1], "join", inputs={"sep": "-"}),
        ],
        [link(0, ["j", 1], (RV, 0), conditions=[{"source_output": RV, "value": 3}])],
    )
    # b runs again while its result is 2: twice, then the loop ends.
    loop = graph(
        [
            method("a", "add", inputs={"a": 1, "b": 0}),
            method("b", "add", inputs={"b": 1}, conditions_else_value="else"),
            method("c", "identity"),
        ],
        [
            link("a", "b", (RV, "a")),
            link("b", "b", (RV, "a"), conditions=[{"source_output": RV, "value": 2}]),
            link(
                "b",
                "c",
                (RV, "value"),
                conditions=[{"source_output": RV, "value": "else"}],
            ),
        ],
        schema_version="1.2",
    )
    errors = graph(
        [
            method("f", "fail", inputs={"message": "boom"}),
            method("g", "fail", inputs={"message": "again"}),
            method("h", "handler"),
            method("d", "handler", default_error_node=True),
        ],
        [link("f", "h", on_error=True, map_all_data=True)],
    )
    inner = graph(
        [method("x", "add", inputs={"b": 2}), method("y", "identity")],
        [link("x", "y", (RV, "value"))],
        input_nodes=[{"id": "in", "node": "x"}],
    )
    subgraph = graph(
        [
            method("s", "add", inputs={"a": 1, "b": 1}),
            {"id": "g", "task_type": "graph", "task_identifier": inner},
            method("e", "identity"),
        ],
        [
            link("s", "g", (RV, "a"), sub_target="in"),
            link("g", "e", (RV, "value"), sub_source="y"),
        ],
    )
    return [chain, positional, loop, errors, subgraph]


BASES = _base_graphs()


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"v": value}
    return value


def _hostile_value() -> st.SearchStrategy[Any]:
    numbers = st.sampled_from(
        [10**9, 10**30, -(10**30), 2**63, 10**5000, -1, 0, 999, 1000, 1.5]
    ) | st.sampled_from([float("inf"), float("nan"), True, False, None])
    text = (
        st.text(max_size=12)
        | st.sampled_from(WORDS)
        | st.sampled_from(["x" * 200_000, "9" * 5000, "\u202e\U0001f600", "", " {"])
    )
    deep = st.integers(1, 300).map(_nested)
    leaf = st.integers() | st.floats() | numbers | text
    return leaf | deep | st.lists(leaf, max_size=3) | st.dictionaries(text, leaf)


def _locations(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``doc``, the root excluded."""
    found = []
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        items = ()
    for key, value in items:
        found.append((*path, key))
        found.extend(_locations(value, (*path, key)))
    return found


def _ids(doc: Any) -> list[Any]:
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        return []
    return [node.get("id") for node in nodes if isinstance(node, dict)]


@st.composite
def mutated_graphs(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    kinds = ["replace", "delete", "extra", "rename", "duplicate", "link", "wrap"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "link":
            ids = [*_ids(doc), draw(st.text(max_size=3))]
            if isinstance(doc.get("links"), list):
                # Self links, back links (cycles), links to nowhere.
                item = {
                    "source": draw(st.sampled_from(ids)),
                    "target": draw(st.sampled_from(ids)),
                }
                if draw(st.booleans()):
                    item[draw(st.sampled_from(KEYS))] = draw(_hostile_value())
                doc["links"].append(item)
            continue
        places = _locations(doc)
        if not places:  # everything was deleted
            break
        path = draw(st.sampled_from(places))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if kind == "replace":
            parent[last] = draw(_hostile_value())
        elif kind == "delete":
            del parent[last]
        elif kind == "wrap":
            parent[last] = [parent[last]] * draw(st.integers(1, 3))
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from(KEYS) | st.text(max_size=8))
            parent[new] = parent.pop(last)
        elif kind == "extra" and isinstance(parent[last], dict):
            key = draw(st.sampled_from(KEYS) | st.text(max_size=10))
            parent[last][key] = draw(_hostile_value())
        elif kind == "extra" and isinstance(parent[last], list):
            parent[last].append(draw(_hostile_value()))
    return doc


def _check_not_internal(exc: BaseException) -> None:
    """``exc`` was raised by a task, or on purpose by the engine: an error from
    a line of the engine that is not a ``raise`` is an internal one."""
    if isinstance(exc, (TaskInputError, LoopLimitError)):
        return
    frames = traceback.extract_tb(exc.__traceback__)
    assert frames, repr(exc)
    last = frames[-1]
    if last.filename.startswith(ENGINE):
        line = (last.line or "").strip()
        assert line.startswith("raise "), (
            f"{type(exc).__name__} from the engine, at {last.filename}:"
            f"{last.lineno} ({line}): {exc!r}"
        )


async def _run(graph: Any) -> None:
    with trio.fail_after(DEADLINE):
        try:
            result = await aexecute_graph(
                graph,
                context=InProcess(delay=0),
                allowed_tasks=ALLOWED,
                max_iterations=5,
            )
        except (GraphValidationError, WorkflowExecutionError, PermissionError) as exc:
            _check_documented(exc)
        else:
            assert isinstance(result, dict)


def _check_documented(exc: Exception) -> None:
    """A short message; a node's failure is the task's own doing."""
    message = str(exc)
    assert len(message) <= MESSAGE_LIMIT, f"{len(message)}-character message"
    if isinstance(exc, WorkflowExecutionError):
        assert exc.__cause__ is exc.failures[exc.node_id]
        for failure in exc.failures.values():
            _check_not_internal(failure)
    else:
        _check_not_internal(exc)


@hypothesis.settings(hypothesis.settings.get_profile(PROFILE))
@hypothesis.given(mutated_graphs(), st.booleans())
def test_mutated_graphs_give_a_result_or_a_documented_error(
    graph: dict[str, Any], as_text: bool
) -> None:
    """A mutated graph runs, or is refused (GraphValidationError; PermissionError
    for script nodes), or fails one of its nodes (WorkflowExecutionError, from
    the task), within the deadline and in a bounded message."""
    source: Any = graph
    if as_text:
        try:
            source = json.dumps(graph)
        except (ValueError, RecursionError):  # not JSON: the dict it is
            pass
    trio.run(_run, source)
