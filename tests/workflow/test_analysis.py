"""Collaboration tests of graph analysis: order, start/end nodes, required links."""

from __future__ import annotations

import time
from typing import Any

import pytest

from trio_wf.workflow import GraphValidationError, load_graph

from .helpers import graph, link, method

IF_TRUE = [{"source_output": "return_value", "value": True}]


def analysed(nodes: list[Any], links: list[Any]) -> Any:
    return load_graph(graph(nodes, links)).analysis


def test_order_is_topological_with_ties_by_id() -> None:
    """Sources come first; among ready nodes, ints, then strings, then tuples."""
    nodes = [method(i, "add") for i in ["z", 3, ("t", 1), "b", 1]]
    analysis = analysed(nodes, [link("z", "b"), link(3, "b")])
    assert analysis.order == (1, 3, "z", "b", ("t", 1))
    assert analysis.start_nodes == (1, 3, "z", ("t", 1))
    assert analysis.end_nodes == (1, "b", ("t", 1))


def test_end_nodes_ignore_error_handlers_links() -> None:
    """A node whose only outgoing links are on_error links is an end node."""
    analysis = analysed(
        [method("a", "add"), method("b", "add"), method("h", "handler")],
        [link("a", "b"), link("b", "h", on_error=True)],
    )
    assert analysis.end_nodes == ("b", "h")
    assert analysis.start_nodes == ("a",)


def test_force_start_node() -> None:
    """force_start_node makes a start node of a node with incoming links."""
    analysis = analysed(
        [method("a", "add"), method("b", "add", force_start_node=True)],
        [link("a", "b")],
    )
    assert analysis.start_nodes == ("a", "b")


def test_required_links_follow_ewokscore_5() -> None:
    """Explicit flags win; conditional links are optional, and so is everything
    downstream of an optional link; required: true does not stop that taint."""
    nodes = [method(n, "add") for n in "abcdefgh"]
    links = [
        link("a", "b"),  # 0: plain, nothing optional upstream -> required
        link("b", "c", conditions=IF_TRUE),  # 1: conditional -> optional
        link("c", "d"),  # 2: downstream of 1 -> optional
        link("d", "e", required=True),  # 3: explicit -> required
        link("e", "f"),  # 4: still downstream of 1 -> optional
        link("a", "g", on_error=True),  # 5: on_error -> optional
        link("a", "h", required=False),  # 6: explicit -> optional
        link("b", "h"),  # 7: a and b have nothing optional upstream -> required
        link("a", "c", on_error=True, required=True),  # 8: explicit wins
    ]
    analysis = analysed(nodes, links)
    assert analysis.required == (
        True,
        False,
        False,
        True,
        False,
        False,
        False,
        True,
        True,
    )


def test_conditional_branches_merge_optional() -> None:
    """After a condition, merged branches stay optional (ewokscore's behaviour)."""
    nodes = [method(n, "add") for n in "abcd"]
    links = [
        link("a", "b", conditions=IF_TRUE),
        link("a", "c", conditions=[{"source_output": "return_value", "value": None}]),
        link("b", "d"),
        link("c", "d"),
    ]
    assert analysed(nodes, links).required == (False, False, False, False)


def test_cycle_without_condition_is_refused() -> None:
    """An unconditional cycle can never end: the error names it."""
    nodes = [method(n, "add") for n in "abcd"]
    with pytest.raises(GraphValidationError, match="'b' -> 'c' -> 'd' -> 'b'") as info:
        analysed(
            nodes, [link("a", "b"), link("b", "c"), link("c", "d"), link("d", "b")]
        )
    assert info.value.node_id == "b"


def test_loops_are_strongly_connected_components() -> None:
    """Each loop is listed once, in graph order; the order puts a loop's nodes
    together, after what feeds it and before what it feeds."""
    nodes = [method(n, "add") for n in "zabcdexy"]
    links = [
        link("z", "b"),
        link("b", "c"),
        link("c", "b", conditions=IF_TRUE),
        link("c", "d"),
        link("d", "d", conditions=IF_TRUE),
        link("d", "e"),
        link("a", "x"),
        link("x", "y"),
        link("y", "a", conditions=IF_TRUE),
    ]
    documents = graph(nodes, links)
    documents["nodes"][1]["force_start_node"] = True  # a: the x-y-a loop's head
    analysis = load_graph(documents).analysis
    assert analysis.loops == (("a", "x", "y"), ("b", "c"), ("d",))
    assert analysis.order == ("a", "x", "y", "z", "b", "c", "d", "e")
    assert analysis.end_nodes == ("e",)


def test_a_node_looping_on_itself_is_an_end_node() -> None:
    """Without end nodes, those with uncovered conditions end the run (ewokscore)."""
    nodes = [method("c", "add", force_start_node=True)]
    analysis = analysed(nodes, [link("c", "c", conditions=IF_TRUE)])
    assert analysis.start_nodes == analysis.end_nodes == ("c",)
    with pytest.raises(GraphValidationError, match="no start node"):
        analysed([method("c", "add")], [link("c", "c", conditions=IF_TRUE)])


def test_empty_graph() -> None:
    """A graph without nodes loads (and runs nothing)."""
    analysis = analysed([], [])
    assert analysis.order == analysis.start_nodes == analysis.end_nodes == ()


@pytest.mark.parametrize("shape", ["chain", "fan", "conditional-chain"])
def test_analysis_of_large_graphs_ends(shape: str) -> None:
    """A 10,000-node chain or fan loads and is analysed.

    ewokscore 5.0 needs 2.1 s for a 20-node chain, and never ends for 200 nodes.
    The bound below only tells "ends" from "exponential" on a loaded 2-core
    machine; how fast it is lives in ``benchmarks/graph_prepare.py``.
    """
    n = 10_000
    nodes = [method(i, "add") for i in range(n)]
    if shape == "fan":
        links = [link(0, i, ("return_value", "a")) for i in range(1, n)]
    else:
        extra = {"conditions": IF_TRUE} if shape == "conditional-chain" else {}
        links = [link(i, i + 1, ("return_value", "a"), **extra) for i in range(n - 1)]
    document = graph(nodes, links)
    start = time.perf_counter()
    analysis = load_graph(document).analysis
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"{shape} took {elapsed:.3f} s"
    assert analysis.order == tuple(range(n))
    assert analysis.start_nodes == (0,)
    if shape == "fan":
        assert analysis.end_nodes == tuple(range(1, n))
    else:
        assert analysis.end_nodes == (n - 1,)
    assert all(analysis.required) is (shape != "conditional-chain")
