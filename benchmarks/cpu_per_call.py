"""CPU time per warm no-op call, parent and child, trio_wf against the raw pipe.

Usage: ``python benchmarks/cpu_per_call.py [--calls N] [--rounds N] [--spinners]``.

Latency on a small virtual machine mixes what a library does with how fast a
halted vCPU wakes up; CPU time per call shows the first alone.  For the raw-pipe
floor (``_floor.py``) and for ``WorkerContext.run_sync(int)``, interleaved round by
round, it prints the medians of: wall time per call, the parent's CPU time per
call, and the child's (echo child or worker) user and system CPU time per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import trio

sys.path.insert(0, str(Path(__file__).parent))

from _floor import FloorChannel
from _spinners import spinners

import trio_wf


async def _measure(
    call: Callable[[], Awaitable[object]], child: psutil.Process, calls: int
) -> tuple[float, float, float, float]:
    before = child.cpu_times()
    cpu = time.process_time()
    wall = time.perf_counter()
    for _ in range(calls):
        await call()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    after = child.cpu_times()
    return (
        wall / calls,
        cpu / calls,
        (after.user - before.user) / calls,
        (after.system - before.system) / calls,
    )


async def main(calls: int, rounds: int) -> None:
    floor = FloorChannel()
    try:
        async with trio_wf.open_worker_context() as ctx:
            worker = psutil.Process(await ctx.run_sync(os.getpid))
            contenders = {
                "raw-pipe floor": (
                    lambda: floor.roundtrip(b"\0" * 8),
                    psutil.Process(floor.pid),
                ),
                "trio_wf": (lambda: ctx.run_sync(int), worker),
            }
            results: dict[str, list[tuple[float, float, float, float]]] = {
                name: [] for name in contenders
            }
            for _ in range(rounds):
                for name, (call, child) in contenders.items():
                    results[name].append(await _measure(call, child, calls))
    finally:
        floor.close()
    header = ("wall", "parent CPU", "child user", "child sys")
    print(" " * 15 + "".join(f"{h:>12}" for h in header))
    for name, rows in results.items():
        medians = [
            statistics.median(column) * 1e6 for column in zip(*rows, strict=True)
        ]
        print(f"{name:15}" + "".join(f"{m:9.1f} us" for m in medians))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Child CPU times come in clock ticks (10 ms): many calls per round.
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spinners", action="store_true")
    args = parser.parse_args()
    with spinners(args.spinners):
        trio.run(main, args.calls, args.rounds)
