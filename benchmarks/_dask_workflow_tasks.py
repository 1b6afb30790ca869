"""The tasks of benchmarks/dask_workflow_bench.py's graphs (imported by workers)."""

from __future__ import annotations

import time
from typing import Any


def noop(value: Any = None) -> Any:
    return value


def busy(value: Any = None, ms: float = 10.0) -> Any:
    """Spin the CPU for ``ms`` milliseconds: work that holds a worker."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    return value
