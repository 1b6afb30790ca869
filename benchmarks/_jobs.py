"""The functions the benchmarks send to workers.

Workers import this module by name (``benchmarks/`` is on the ``sys.path`` every
contender hands its workers), so it must stay cheap to import: no trio, no numpy.
"""

from __future__ import annotations

import time


def echo(value: object) -> object:
    """Return the argument unchanged (the payload row)."""
    return value


def burn(iterations: int) -> int:
    """Spin the CPU in pure Python for ``iterations`` loop turns (the CPU row)."""
    total = 0
    for i in range(iterations):
        total += i ^ (i >> 3)
    return total


def burn_timed(iterations: int) -> float:
    """``burn`` and return the CPU seconds it took this thread (the GIL excluded)."""
    start = time.thread_time()
    burn(iterations)
    return time.thread_time() - start


def calibrate_burn(target_seconds: float) -> int:
    """Return the ``burn`` argument that takes about ``target_seconds`` here."""
    iterations = 100_000
    while True:
        start = time.perf_counter()
        burn(iterations)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            break
        iterations *= 4
    # Refine on runs of the full length: the short estimate is easily off.
    for _ in range(2):
        iterations = max(1, round(iterations * target_seconds / elapsed))
        start = time.perf_counter()
        burn(iterations)
        elapsed = time.perf_counter() - start
    return max(1, round(iterations * target_seconds / elapsed))


def sleep(seconds: float) -> None:
    """Block in ``time.sleep`` (the kill-on-cancel row's victim)."""
    time.sleep(seconds)


def echo_after(value: object, seconds: float) -> object:
    """Sleep, then return the argument: overlapping calls reach every worker."""
    time.sleep(seconds)
    return value
