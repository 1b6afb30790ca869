"""ewokscore 5.0's example graphs under trio_wf, judged by ewokscore itself.

Contract tests (real worker processes).  The graphs, their expected values and
the assertion helpers all come from the installed ewokscore package
(``ewokscore.tests.examples.graphs``, ``ewokscore.tests.utils.results``), used
as upstream's ``test_examples.py`` uses them: the default result of each graph
for persistence none, json and nexus, then the executed ``Task`` of every node
(``output_tasks=True``), and, with a scheme, every node's stored outputs read
back by ewokscore from ``root_uri``.  Upstream runs ``output_tasks`` only on the
graphs its sequential engine supports (acyclic, no conditions); here also on
the acyclic ones with conditions, when a scheme lets ewokscore read back the
nodes that did not run.  Each graph runs on trio_wf directly and on the
``trio`` engine ewoks loads; ewokscore's own sub-graph execution test runs on
that engine too.

Fork workers: they inherit the ewokscore this process imported for the
helpers, where each spawned worker would import it again (half a second).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ewokscore import load_graph as ewoks_load_graph
from ewokscore.bindings import graph_is_supported
from ewokscore.tests import test_sub_graph
from ewokscore.tests.examples.graphs import get_graph, graph_names
from ewokscore.tests.utils.results import (
    assert_execute_graph_default_result,
    assert_execute_graph_tasks,
)

from trio_wf.workflow import execute_graph, load_graph
from trio_wf.workflow._engine_plugin import TrioWorkflowEngine

SCHEMES = (None, "json", "nexus")


def run_directly(graph: Any, **options: Any) -> Any:
    # Trusted: triangle1 has no node without incoming links, and ewokscore's
    # start nodes need the classes' required inputs.
    return execute_graph(load_graph(graph.dump(), trusted=True), **options)


def run_as_ewoks_engine(graph: Any, **options: Any) -> Any:
    # Exactly upstream's calls, on the engine `ewoks --engine trio` loads.
    return TrioWorkflowEngine().execute_graph(graph, **options)


@pytest.mark.parametrize("execute", [run_directly, run_as_ewoks_engine])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("graph_name", sorted(graph_names()))
def test_example_graph_gives_upstream_results(
    graph_name: str, scheme: str | None, execute: Any, tmp_path: Path
) -> None:
    """Default results, executed tasks and stored outputs, as upstream expects."""
    graph, expected = get_graph(graph_name)
    ewoksgraph = ewoks_load_graph(graph)
    varinfo = {"root_uri": str(tmp_path), "scheme": scheme} if scheme else None

    result = execute(ewoksgraph, varinfo=varinfo, worker_type="fork")
    assert_execute_graph_default_result(ewoksgraph, result, expected, varinfo)

    if graph_is_supported(ewoksgraph) or (scheme and not ewoksgraph.is_cyclic):
        tasks = execute(
            ewoksgraph, varinfo=varinfo, output_tasks=True, worker_type="fork"
        )
        assert_execute_graph_tasks(ewoksgraph, tasks, expected, varinfo)


def test_upstream_sub_graph_test_passes_on_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ewokscore's own sub-graph execution test, its engine swapped for ours."""

    def execute_graph(graph: Any, **options: Any) -> Any:
        return run_as_ewoks_engine(graph, worker_type="fork", **options)

    monkeypatch.setattr(test_sub_graph, "execute_graph", execute_graph)
    test_sub_graph.test_sub_graph_execute()


def test_empty_graph_returns_an_empty_dict() -> None:
    """Upstream's ``empty`` graph has no nodes; its result is ``{}``."""
    document, expected = get_graph("empty")
    assert expected == {}
    assert execute_graph(document) == {}


def test_example_graph_runs_in_spawned_workers(tmp_path: Path) -> None:
    """Spawned workers import ewokscore themselves; results and files agree."""
    document, expected = get_graph("acyclic1")
    ewoksgraph = ewoks_load_graph(get_graph("acyclic1")[0])
    varinfo = {"root_uri": str(tmp_path), "scheme": "json"}
    result = execute_graph(document, varinfo=varinfo, worker_type="spawn")
    assert_execute_graph_default_result(ewoksgraph, result, expected, varinfo)


def test_graph_without_start_node_needs_trust_to_infer_one() -> None:
    """ewokscore's start-node rule imports the classes: untrusted, it says so."""
    document, _ = get_graph("triangle1")
    with pytest.raises(ValueError, match=r"load the graph trusted") as info:
        load_graph(document)
    assert "force_start_node" in str(info.value)
    assert load_graph(document, trusted=True).analysis.start_nodes == ("task1",)
