"""Functions that tests/test_dask.py sends to Dask workers, importable by name."""

from __future__ import annotations

import os
from typing import Any

INIT_VARIABLE = "TRIO_WF_DASK_INIT"


def mark_init() -> None:
    os.environ[INIT_VARIABLE] = str(os.getpid())


def init_mark() -> str | None:
    return os.environ.get(INIT_VARIABLE)


def fail_init() -> None:
    raise RuntimeError("no GPU here")


def task_key(n: int, seconds: float = 0.0) -> tuple[int, str]:
    """``n``, and the key of the Dask task that runs this call, after sleeping."""
    import time

    import distributed

    time.sleep(seconds)
    return n, distributed.get_worker().get_current_task()


def task_key_or_fail(n: int) -> Any:
    """`task_key`, but 7 raises and 8 returns what cannot be pickled."""
    import threading

    if n == 7:
        raise ValueError(n)
    if n == 8:
        return threading.Lock()
    return task_key(n)


def announce_and_sleep(started: Any) -> None:
    """Set ``started``, then sleep (until killed)."""
    import time

    started.set()
    time.sleep(3600)


def exit_at(n: int, at: int) -> int:
    """``n``, unless it is ``at``: then the worker process exits."""
    if n == at:
        os._exit(42)
    return n
