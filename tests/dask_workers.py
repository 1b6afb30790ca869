"""Functions that tests/test_dask.py sends to Dask workers, importable by name."""

from __future__ import annotations

import os

INIT_VARIABLE = "TRIO_WF_DASK_INIT"


def mark_init() -> None:
    os.environ[INIT_VARIABLE] = str(os.getpid())


def init_mark() -> str | None:
    return os.environ.get(INIT_VARIABLE)


def fail_init() -> None:
    raise RuntimeError("no GPU here")
