"""Engine overhead per node of trio_wf.workflow, next to the dispatch it adds to.

Usage: python benchmarks/workflow_overhead.py [--nodes 1000] [--repeat 5]

Two graphs of no-op ``method`` nodes (``builtins.int``, called without
arguments): a chain (each node waits for the one before) and a fan (one source,
then every other node at once).  Each runs on one warm spawn worker context,
and so does its dispatch baseline: as many ``run_sync`` no-op calls, one after
the other for the chain, side by side under the same limiter for the fan.  The
engine overhead per node is (graph time - baseline time) / nodes, the median
over runs that alternate between the two.  The
sequential backend (tasks called in the Trio thread, no dispatch at all) shows
the engine's own cost.  Loading (parsing, validating, analysing) is measured
apart: a graph is usually loaded once.

Target: at most 100 us of engine overhead per node beyond the dispatch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import trio_wf
from trio_wf.workflow import Graph, aexecute_graph, load_graph

NOOP = "builtins.int"


def noops(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "task_type": "method", "task_identifier": NOOP} for i in range(n)]


def chain(n: int) -> dict[str, Any]:
    nodes = noops(n)
    links = [{"source": i, "target": i + 1} for i in range(n - 1)]
    return {"graph": {"id": "chain"}, "nodes": nodes, "links": links}


def fan(n: int) -> dict[str, Any]:
    nodes = noops(n)
    links = [{"source": 0, "target": i} for i in range(1, n)]
    return {"graph": {"id": "fan"}, "nodes": nodes, "links": links}


async def timed(job: Callable[[], Awaitable[object]]) -> float:
    """How long ``job()`` takes, in seconds."""
    start = time.perf_counter()
    await job()
    return time.perf_counter() - start


async def best(repeat: int, job: Callable[[], Awaitable[object]]) -> float:
    """The median of ``repeat`` timings of ``job()``, in seconds."""
    return statistics.median([await timed(job) for _ in range(repeat)])


async def main(n: int, repeat: int) -> None:
    workers = os.cpu_count() or 1
    limiter = trio.CapacityLimiter(workers)
    print(f"{n} no-op nodes, {workers} workers, median of {repeat} runs\n")
    graphs: dict[str, Graph] = {}
    for name, build in (("chain", chain), ("fan", fan)):
        document = build(n)
        start = time.perf_counter()
        graphs[name] = load_graph(document)
        load = time.perf_counter() - start
        print(f"load_graph({name}): {load * 1e3:.1f} ms ({load / n * 1e6:.1f} us/node)")
    print()
    async with trio_wf.open_worker_context() as context:

        async def warm() -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(workers):
                    nursery.start_soon(context.run_sync, time.sleep, 0.2)

        await warm()

        async def one_by_one() -> None:
            for _ in range(n):
                await context.run_sync(int, limiter=limiter)

        async def side_by_side() -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(run_one)

        async def run_one() -> None:
            await context.run_sync(int, limiter=limiter)

        baselines = {"chain": one_by_one, "fan": side_by_side}
        rows = []
        for name, graph in graphs.items():

            async def engine(graph: Graph = graph) -> None:
                await aexecute_graph(graph, context=context, max_workers=workers)

            # Interleaved, so that both see the same machine: other processes
            # come and go on a shared machine.
            pairs = [
                (await timed(baselines[name]), await timed(engine))
                for _ in range(repeat)
            ]
            baseline = statistics.median(b for b, _ in pairs)
            total = statistics.median(t for _, t in pairs)
            overhead = statistics.median(t - b for b, t in pairs)
            rows.append((name, baseline, total, overhead))

    in_process = {}
    for name, graph in graphs.items():

        async def sequential(graph: Graph = graph) -> None:
            await aexecute_graph(graph, worker_type="sequential")

        in_process[name] = await best(repeat, sequential)

    print(f"{'graph':6} {'dispatch':>14} {'engine+dispatch':>16} {'overhead':>14}")
    for name, baseline, total, overhead in rows:
        print(
            f"{name:6} {baseline / n * 1e6:11.1f} us {total / n * 1e6:13.1f} us "
            f"{overhead / n * 1e6:11.1f} us  per node"
        )
    print()
    for name, total in in_process.items():
        print(
            f"{name:6} sequential backend (no dispatch): "
            f"{total / n * 1e6:.1f} us per node, all engine"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    trio.run(main, arguments.nodes, arguments.repeat)
