"""What connecting to a Dask scheduler for one run costs, phase by phase.

Usage::

    python benchmarks/dask_connect.py [--rounds 7]

(in a venv with ``trio-wf[dask]``; ``nox -s dask_bench`` makes one).  One
``LocalCluster`` of 2 process workers on loopback; each round, in turn:

- ``trio_wf``: ``open_dask_context(address)`` entered, its first
  ``run_sync(int)``, a second one, and the context left;
- ``Dask``: ``distributed.Client(address)``, its first
  ``submit(int).result()``, a second one, and ``client.close()``;

that is, what ``execute_graph(graph, scheduler=ADDRESS)`` pays around the
graph's own calls, next to what Dask's client costs by itself.  Medians in ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import distributed
import trio
from dask_workflow_bench import local_cluster

import trio_wf

PHASES = ("connect", "first call", "second call", "close")


def plain(address: str) -> list[float]:
    """The phases of a plain Dask client, in seconds."""
    times = []
    start = time.perf_counter()
    client = distributed.Client(address, set_as_default=False)
    times.append(time.perf_counter() - start)
    for _ in range(2):
        start = time.perf_counter()
        client.submit(int, pure=False).result()
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    client.close()
    times.append(time.perf_counter() - start)
    return times


async def context(address: str) -> list[float]:
    """The phases of ``open_dask_context(address)``, in seconds."""
    times = []
    start = time.perf_counter()
    manager = trio_wf.open_dask_context(address)
    ctx = await manager.__aenter__()
    times.append(time.perf_counter() - start)
    try:
        for _ in range(2):
            start = time.perf_counter()
            await ctx.run_sync(int)
            times.append(time.perf_counter() - start)
    finally:
        start = time.perf_counter()
        await manager.__aexit__(None, None, None)
        times.append(time.perf_counter() - start)
    return times


def main(rounds: int) -> None:
    with local_cluster() as cluster:
        address = cluster.scheduler_address
        contenders: dict[str, Callable[[], list[float]]] = {
            "trio_wf": lambda: trio.run(context, address),
            "Dask": lambda: plain(address),
        }
        samples: dict[str, list[list[float]]] = {name: [] for name in contenders}
        for run in contenders.values():
            run()  # warm up: imports, the workers' first task
        for _ in range(rounds):
            for name, run in contenders.items():
                samples[name].append(run())
        header = "".join(f"{phase:>13}" for phase in PHASES)
        print(f"{'':10}{header}{'total':>9}")
        for name, rows in samples.items():
            medians = [statistics.median(col) * 1000 for col in zip(*rows, strict=True)]
            cells = "".join(f"{value:>13.1f}" for value in medians)
            print(f"{name:10}{cells}{sum(medians):>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    sys.exit(main(parser.parse_args().rounds))
