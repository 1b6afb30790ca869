"""The worker side of `trio_wf.open_map`: run a function over a chunk of items."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def run_chunk(
    fn: Callable[[Any], Any], items: Sequence[Any]
) -> tuple[float, list[Any]]:
    """Return the seconds it took and ``[fn(item) for item in items]``."""
    started = time.perf_counter()
    results = [fn(item) for item in items]
    return time.perf_counter() - started, results
