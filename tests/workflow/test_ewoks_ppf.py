"""ewoksppf's own tests of its error conventions, run on trio_wf.

Contract tests (real worker processes).  The test functions come from the
installed ewoksppf package, with their graphs and assertions; only the
``execute_graph`` they call is swapped for trio_wf's, directly or through the
``trio`` engine ewoks loads, as ewokscore's sub-graph test is in
``test_ewoks_corpus.py``.  They check what a failure leaves in the result
with ``raise_on_error=False`` (``WorkflowExceptionInstance``), and what the
default error handlers of nested sub-graphs receive along their ``on_error``
links (the failed task's inputs and the exception).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ewoksppf.tests import test_ppf_workflow2

from trio_wf.workflow import execute_graph
from trio_wf.workflow._engine_plugin import TrioWorkflowEngine


def run_directly(graph: Any, **options: Any) -> Any:
    return execute_graph(graph, worker_type="fork", **options)


def run_as_ewoks_engine(graph: Any, **options: Any) -> Any:
    return TrioWorkflowEngine().execute_graph(graph, worker_type="fork", **options)


@pytest.mark.parametrize("execute", [run_directly, run_as_ewoks_engine])
def test_upstream_failure_in_result_test_passes(
    execute: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """raise_on_error=False: the exception is the result's
    WorkflowExceptionInstance (ewoksppf's test_ppf_workflow2)."""
    monkeypatch.setattr(test_ppf_workflow2, "execute_graph", execute)
    # Its first argument is a fixture that configures pypushflow's database.
    test_ppf_workflow2.test_workflow2(None, tmp_path)
