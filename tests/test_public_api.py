"""Collaboration tests of the public surface: exports, names, docstrings, finality."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import trio_wf

# Classes that cross the process boundary live in the trio-free worker package, so
# that workers can unpickle them without importing trio; they keep that module.
WORKER_SIDE = {"RemoteError", "RetirePolicy"}


def test_all_matches_the_public_names() -> None:
    """__all__ lists exactly the public names of the package."""
    public = {
        name
        for name, obj in vars(trio_wf).items()
        if not name.startswith("_") and not inspect.ismodule(obj)  # trio_wf.workflow
    }
    assert set(trio_wf.__all__) - {"__version__"} == public
    assert sorted(trio_wf.__all__) == list(trio_wf.__all__)


def test_dir_lists_open_dask_context() -> None:
    """dir(trio_wf) lists the lazily imported open_dask_context with the rest."""
    assert "open_dask_context" in dir(trio_wf)
    assert set(dir(trio_wf)) == {*vars(trio_wf), "open_dask_context"}


def test_import_trio_wf_imports_no_dask(tmp_path: Path) -> None:
    """import trio_wf, and dir(trio_wf), leave Dask (an optional extra) unimported."""
    code = (
        "import sys, trio_wf; "
        "assert 'open_dask_context' in dir(trio_wf); "
        "loaded = {'dask', 'distributed'} & set(sys.modules); "
        "assert not loaded, loaded"
    )
    # Not from the checkout: the installed trio_wf is the one under test.
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("name", sorted(set(trio_wf.__all__) - {"__version__"}))
def test_public_names_are_documented_and_at_home(name: str) -> None:
    """Every public name has a docstring and claims to live in trio_wf."""
    obj = getattr(trio_wf, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"
    expected = "_trio_wf_worker." if name in WORKER_SIDE else "trio_wf"
    assert obj.__module__.startswith(expected)
    if name not in WORKER_SIDE:
        assert obj.__module__ == "trio_wf"


def test_errors_pickle_and_keep_their_attributes() -> None:
    """BrokenWorkerError survives pickling with its worker records."""
    error = trio_wf.BrokenWorkerError("boom", trio_wf.WorkerExit(12, -9))
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "boom"
    assert (copy.pid, copy.exitcode, copy.signal_name) == (12, -9, "SIGKILL")


def test_worker_exit_descriptions() -> None:
    """WorkerExit says how a worker ended, in words."""
    assert "exited with code 3" in trio_wf.WorkerExit(1, 3).describe()
    assert "killed by SIGSEGV" in trio_wf.WorkerExit(1, -11).describe()
    assert "out of memory" in trio_wf.WorkerExit(1, -9).describe()
    assert "still running" in trio_wf.WorkerExit(1, None).describe()
    assert trio_wf.WorkerExit(1, 0).signal_name is None


def test_remote_error_keeps_what_it_can() -> None:
    """RemoteError carries the original type name, message and traceback text."""
    error = trio_wf.RemoteError("pkg.Oops", "it broke", "Traceback ...\n")
    assert "pkg.Oops: it broke" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.type_name, copy.message, copy.remote_traceback) == error.args
