"""Preloaded by the workers of the clusters tests/test_dask_cli.py starts.

They are not our descendants, so they do not inherit the test process's
multiprocessing authkey: this gives it to them, so that the Manager events the
tests pass to tasks can connect back to the manager.
"""

from __future__ import annotations

import multiprocessing
import os

AUTHKEY_VARIABLE = "TRIO_WF_TEST_AUTHKEY"


def dask_setup(worker: object) -> None:
    """Called by Dask when the worker starts."""
    multiprocessing.current_process().authkey = bytes.fromhex(
        os.environ[AUTHKEY_VARIABLE]
    )
