"""Fan a CPU-bound function out over worker processes, and time the speed-up.

Counts the primes in consecutive ranges, first one range after the other in this
process (the baseline), then all ranges at once with `trio_wf.run_sync` from the
tasks of a nursery.  The results are the same; only the time differs.
"""

from __future__ import annotations

import os
import time

import trio

import trio_wf

CHUNKS = 8
CHUNK_SIZE = 75_000


def count_primes(start: int, stop: int) -> int:
    """Count the primes in ``range(start, stop)`` by trial division: pure Python."""
    count = 0
    for n in range(max(start, 2), stop):
        divisor = 2
        while divisor * divisor <= n and n % divisor:
            divisor += 1
        if divisor * divisor > n:
            count += 1
    return count


def sequential(bounds: list[tuple[int, int]]) -> list[int]:
    """The baseline: one range after the other, in this process."""
    return [count_primes(start, stop) for start, stop in bounds]


async def parallel(bounds: list[tuple[int, int]]) -> list[int]:
    """One task per range; each sends its range to a worker process."""
    results = [0] * len(bounds)

    async def count_chunk(i: int, start: int, stop: int) -> None:
        results[i] = await trio_wf.run_sync(count_primes, start, stop)

    async with trio.open_nursery() as nursery:
        for i, (start, stop) in enumerate(bounds):
            nursery.start_soon(count_chunk, i, start, stop)
    return results


def main() -> None:
    bounds = [(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE) for i in range(CHUNKS)]

    started = time.perf_counter()
    expected = sequential(bounds)
    sequential_time = time.perf_counter() - started

    # The timing includes starting the workers (one per CPU): that is part of the
    # price of the first call.  Later calls reuse the cached workers.
    started = time.perf_counter()
    results = trio.run(parallel, bounds)
    parallel_time = time.perf_counter() - started

    if results != expected:
        raise SystemExit(f"parallel results {results} differ from {expected}")
    for (start, stop), primes in zip(bounds, results, strict=True):
        print(f"primes in [{start}, {stop}): {primes}")
    print(f"total: {sum(results)} primes below {bounds[-1][1]}")
    print(
        f"speed-up: {sequential_time / parallel_time:.1f}x on {os.cpu_count()} CPUs "
        f"(sequential {sequential_time:.2f} s, parallel {parallel_time:.2f} s)"
    )


if __name__ == "__main__":
    main()
