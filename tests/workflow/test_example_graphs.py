"""Contract tests: the graphs in examples/graphs run in real workers and give
the results their comments promise."""

from __future__ import annotations

from pathlib import Path

from trio_wf.workflow import execute_graph

GRAPHS = Path(__file__).parents[2] / "examples" / "graphs"


def test_diamond() -> None:
    """6 * 7, then 43 and 41 side by side, then the larger."""
    assert execute_graph(GRAPHS / "diamond.json") == {"return_value": 43}


def test_conditional() -> None:
    """The else branch runs when the condition does not hold."""
    path = GRAPHS / "conditional.yaml"
    assert execute_graph(path) == {"return_value": {"size": "big"}}
    inputs = [{"id": "is_big", "name": 0, "value": 3}]
    assert execute_graph(path, inputs=inputs) == {"return_value": {"size": "small"}}


def test_error_handler() -> None:
    """The default error node receives the failure as ewoksppf passes it."""
    result = execute_graph(GRAPHS / "error_handler.json")["return_value"]
    assert result["node"] == "parse"
    error = result["error"]
    assert error["errorMessage"].startswith("invalid literal for int()")
    assert "ValueError: invalid literal" in "".join(error["traceBack"])


def test_subgraph() -> None:
    """diamond.json twice: 6 * 7 + 1 = 43, then 43 * 7 + 1 = 302."""
    path = GRAPHS / "subgraph.json"
    assert execute_graph(path) == {"return_value": 302}
    per_node = execute_graph(path, outputs=[{"all": True}], merge_outputs=False)
    assert per_node[("first", "largest")] == {"return_value": 43}
    assert list(per_node)[:2] == [("first", "product"), ("first", "minus_one")]
