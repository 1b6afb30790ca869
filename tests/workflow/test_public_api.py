"""Collaboration tests of trio_wf.workflow's public surface."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import trio_wf
from trio_wf import workflow
from trio_wf.workflow import NodeStatus, WorkflowExecutionError

CONSTANTS = {"MAX_GRAPH_BYTES", "MAX_GRAPH_DEPTH", "NodeId", "InputName"}


def test_all_matches_the_public_names() -> None:
    """__all__ lists exactly the public names (ruff keeps it sorted)."""
    public = {name for name in vars(workflow) if not name.startswith("_")}
    assert set(workflow.__all__) == public
    assert len(set(workflow.__all__)) == len(workflow.__all__)


@pytest.mark.parametrize("name", sorted(set(workflow.__all__) - CONSTANTS))
def test_public_names_are_documented_and_at_home(name: str) -> None:
    """Every public name has a docstring and claims to live in trio_wf.workflow."""
    obj = getattr(workflow, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"
    assert obj.__module__ == "trio_wf.workflow"


def test_trio_wf_does_not_import_the_workflow_package(tmp_path: Path) -> None:
    """``import trio_wf`` stays lean: the workflow engine is imported on demand."""
    code = "import sys, trio_wf; print('trio_wf.workflow' in sys.modules)"
    # cwd: not the checkout, whose trio_wf/ would shadow the installed one.
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "False"
    assert trio_wf.workflow is workflow


def test_execution_error_pickles() -> None:
    """WorkflowExecutionError keeps its attributes through pickle."""
    error = WorkflowExecutionError(
        "boom",
        node_id=("sub", 1),
        label="sub:1",
        task_identifier="pkg.f",
        failures={("sub", 1): ValueError("x")},
        outputs={"a": {"return_value": 1}},
        statuses={"a": NodeStatus.SUCCEEDED},
        results={},
    )
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "boom"
    assert copy.node_id == ("sub", 1)
    assert copy.statuses == {"a": NodeStatus.SUCCEEDED}
