"""`trio_wf.open_map` throughput and CPU-bound efficiency (issue 5's map targets).

Usage: ``python benchmarks/map_bench.py [--items N] [--jobs N]``.

* no-op items/s: ``open_map(int, range(N))``, automatic chunking, 2 tokens;
* CPU-bound efficiency: N jobs of ~100 ms of pure-Python work on 2 workers, as the
  jobs' own CPU time divided by 2 x wall time (immune to vCPU speed drift, like
  row 6b of ``run.py``), and as the issue's formula, N x job time / 2 / wall;
  next to it, in the same rounds, the same jobs in two bare forked processes (no
  library, no dispatch): the ceiling this machine allows (vCPU steal included).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))

import _jobs

import trio_wf


async def noop_rate(ctx: trio_wf.WorkerContext, items: int) -> float:
    limiter = trio.CapacityLimiter(2)
    started = time.perf_counter()
    count = 0
    async with trio_wf.open_map(int, range(items), context=ctx, limiter=limiter) as rs:
        async for _ in rs:
            count += 1
    assert count == items
    return items / (time.perf_counter() - started)


async def cpu_efficiency(
    ctx: trio_wf.WorkerContext, jobs: int, iterations: int, job_seconds: float
) -> tuple[float, float]:
    limiter = trio.CapacityLimiter(2)
    started = time.perf_counter()
    cpu = 0.0
    job = functools.partial(_jobs.burn_timed)
    async with trio_wf.open_map(
        job, [iterations] * jobs, context=ctx, limiter=limiter
    ) as results:
        async for seconds in results:
            cpu += seconds
    wall = time.perf_counter() - started
    return cpu / (2 * wall), jobs * job_seconds / 2 / wall


def bare_efficiency(jobs: int, iterations: int) -> float:
    """The same jobs, half each in two forked processes: sum of CPU / (2 x wall)."""
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # the child only burns, reports and leaves
            cpu = sum(_jobs.burn_timed(iterations) for _ in range(jobs // 2))
            os.write(write_fd, f"{cpu}\n".encode())
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    wall = time.perf_counter() - started
    os.close(write_fd)
    with os.fdopen(read_fd) as reports:
        return sum(map(float, reports.read().split())) / (2 * wall)


async def main(items: int, jobs: int, rounds: int) -> None:
    iterations = _jobs.calibrate_burn(0.1)
    started = time.perf_counter()
    _jobs.burn(iterations)
    job_seconds = time.perf_counter() - started
    rates, by_cpu, by_wall, bare = [], [], [], []
    async with trio_wf.open_worker_context() as ctx:
        await ctx.run_sync(int)  # warm: start the workers outside the timing
        await ctx.run_sync(int, limiter=trio.CapacityLimiter(2))
        for _ in range(rounds):
            rates.append(await noop_rate(ctx, items))
            cpu, wall = await cpu_efficiency(ctx, jobs, iterations, job_seconds)
            by_cpu.append(cpu)
            by_wall.append(wall)
            bare.append(bare_efficiency(jobs, iterations))
    print(
        f"open_map no-op: {statistics.median(rates):,.0f} items/s "
        f"(median of {rounds}; {items} items, 2 tokens)"
    )
    print(
        f"open_map CPU-bound efficiency: {statistics.median(by_cpu):.3f} by worker "
        f"CPU time, {statistics.median(by_wall):.3f} by the issue's formula "
        f"({jobs} x {job_seconds * 1e3:.0f} ms on 2 workers); two bare forked "
        f"processes: {statistics.median(bare):.3f} by CPU time"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trio.run(main, args.items, args.jobs, args.rounds)
