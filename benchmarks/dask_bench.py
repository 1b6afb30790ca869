"""The Dask row: trio_wf's Dask context next to a plain ``Client.submit``.

Usage: python benchmarks/dask_bench.py [--calls 2000] [--latency 200] [--workers 2]

Both run on one private ``LocalCluster`` (``open_dask_context``: process
workers of one thread, on loopback), warmed up first:

- latency: the median of ``--latency`` sequential no-op calls (``int()``), in ms;
- throughput: ``--calls`` no-op calls started at once, in calls/s: from one Trio
  nursery for the context (no limiter: the scheduler queues them), and
  ``client.gather([client.submit(int, pure=False) ...])`` for plain Dask.

The plain Dask numbers are measured in a thread (its Client methods block), so
both sides pay for the same cluster, on the same machine, in the same process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import trio

import trio_wf


def plain_latency(client: Any, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.submit(int, pure=False).result()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def plain_throughput(client: Any, calls: int) -> float:
    start = time.perf_counter()
    client.gather([client.submit(int, pure=False) for _ in range(calls)])
    return calls / (time.perf_counter() - start)


async def context_latency(ctx: Any, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await ctx.run_sync(int)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def context_throughput(ctx: Any, calls: int) -> float:
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(calls):
            nursery.start_soon(ctx.run_sync, int)
    return calls / (time.perf_counter() - start)


async def main(calls: int, latency: int, workers: int) -> None:
    async with trio_wf.open_dask_context(n_workers=workers) as ctx:
        client = ctx.client
        for _ in range(20):  # warm up both paths
            await ctx.run_sync(int)
        await trio.to_thread.run_sync(plain_latency, client, 20)
        rows = [
            (
                "trio_wf dask context",
                await context_latency(ctx, latency),
                await context_throughput(ctx, calls),
            ),
            (
                "plain Client.submit",
                await trio.to_thread.run_sync(plain_latency, client, latency),
                await trio.to_thread.run_sync(plain_throughput, client, calls),
            ),
        ]
    print(f"LocalCluster of {workers} process workers, {os.cpu_count()} CPUs")
    print(f"{'':24}{'latency (ms)':>14}{f'{calls} calls (calls/s)':>24}")
    for name, lat, rate in rows:
        print(f"{name:24}{lat * 1e3:>14.2f}{rate:>24.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    trio.run(main, options.calls, options.latency, options.workers)
