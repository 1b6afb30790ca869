"""Workflows on a Dask cluster: node throughput of trio_wf next to ewoksdask's engine.

Usage::

    nox -s dask_bench                    # installs ewoksdask in the session's venv
    python benchmarks/dask_workflow_bench.py [--rounds 5] [--fan 200] [--chain 16]

(the second form in a venv with ``trio-wf[dask]`` and ``ewoksdask``).  One
``LocalCluster`` of 2 process workers of one thread, on loopback, runs four
shapes of graph, each of method nodes linked by ``return_value``:

- fan: one source node, then ``--fan`` independent nodes fed by it;
- chain: ``--chain`` nodes one after the other (ewoksdask's loader grows
  exponentially along a chain: keep it short);

of no-op nodes and of nodes that spin the CPU for 10 ms.  Each is run by:

- ``trio_wf``: ``execute_graph(graph, scheduler=ADDRESS)``, which connects to
  the cluster for the run, as ewoksdask does;
- ``trio_wf, open context``: ``aexecute_graph(graph, context=ctx)`` on a
  context opened once;
- ``ewoksdask``: ``ewoksdask.execute_graph(graph, scheduler=ADDRESS)``.

Rounds are interleaved (each round runs every contender once, after one warm-up
run each); the table shows the median wall time, the node throughput
(nodes / s) and trio_wf's throughput over ewoksdask's, and, for the 10 ms nodes,
the time over the ideal (fan: total work / 2 workers; chain: total work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import distributed
import trio

import trio_wf
from trio_wf.workflow import aexecute_graph, execute_graph

#: The nodes' task module: the workers import it by name (they start with this
#: script's sys.path, its directory first).
TASKS = "_dask_workflow_tasks"
BUSY_MS = 10.0
LINK = [{"source_output": "return_value", "target_input": "value"}]


def node(i: int, task: str) -> dict[str, Any]:
    node = {"id": str(i), "task_type": "method", "task_identifier": f"{TASKS}.{task}"}
    if task == "busy":
        node["default_inputs"] = [{"name": "ms", "value": BUSY_MS}]
    return node


def fan(n: int, task: str) -> dict[str, Any]:
    nodes = [node(i, task) for i in range(n + 1)]
    links = [
        {"source": "0", "target": str(i), "data_mapping": LINK} for i in range(1, n + 1)
    ]
    return {"graph": {"id": f"fan{n}"}, "nodes": nodes, "links": links}


def chain(n: int, task: str) -> dict[str, Any]:
    nodes = [node(i, task) for i in range(n)]
    links = [
        {"source": str(i), "target": str(i + 1), "data_mapping": LINK}
        for i in range(n - 1)
    ]
    return {"graph": {"id": f"chain{n}"}, "nodes": nodes, "links": links}


def local_cluster() -> distributed.LocalCluster:
    """The benchmarks' cluster: 2 process workers of one thread, on loopback."""
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=50,
    )


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(rounds: int, fan_size: int, chain_size: int) -> None:
    from ewoksdask import execute_graph as ewoksdask_execute

    shapes = [
        (f"fan {fan_size}, no-op", fan(fan_size, "noop"), None),
        (f"fan {fan_size}, 10 ms", fan(fan_size, "busy"), (fan_size + 1) / 2),
        (f"chain {chain_size}, no-op", chain(chain_size, "noop"), None),
        (f"chain {chain_size}, 10 ms", chain(chain_size, "busy"), chain_size),
    ]
    with local_cluster() as cluster:
        address = cluster.scheduler_address
        print(f"LocalCluster of 2 workers, {os.cpu_count()} CPUs, ", end="")
        print("load " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
        header = f"{'':18}{'contender':24}{'median s':>9}{'nodes/s':>9}"
        print(header + f"{'vs ewoksdask':>14}{'vs ideal':>10}")
        for name, graph, ideal_nodes in shapes:
            nodes = len(graph["nodes"])

            async def on_context(graph: dict[str, Any] = graph) -> list[float]:
                async with trio_wf.open_dask_context(address, share_tasks=True) as ctx:
                    await aexecute_graph(graph, context=ctx)
                    times = []
                    for _ in range(rounds):
                        start = time.perf_counter()
                        await aexecute_graph(graph, context=ctx)
                        times.append(time.perf_counter() - start)
                    return times

            contenders: dict[str, Callable[[], object]] = {
                "trio_wf": lambda g=graph: execute_graph(g, scheduler=address),
                "ewoksdask": lambda g=graph: ewoksdask_execute(g, scheduler=address),
            }
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for run in contenders.values():
                run()  # warm up: imports, connections, the workers' caches
            for n in range(rounds):
                order = list(contenders)[n % 2 :] + list(contenders)[: n % 2]
                for contender in order:
                    samples[contender].append(timed(contenders[contender]))
            samples["trio_wf, open context"] = trio.run(on_context)
            reference = nodes / statistics.median(samples["ewoksdask"])
            for contender in ("trio_wf", "trio_wf, open context", "ewoksdask"):
                median = statistics.median(samples[contender])
                rate = nodes / median
                ratio = "" if contender == "ewoksdask" else f"{rate / reference:.2f}x"
                over = ""
                if ideal_nodes is not None:
                    over = f"{median / (ideal_nodes * BUSY_MS / 1000):.2f}x"
                print(f"{name:18}{contender:24}{median:>9.3f}{rate:>9.0f}", end="")
                print(f"{ratio:>14}{over:>10}", flush=True)
                name = ""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fan", type=int, default=200)
    parser.add_argument("--chain", type=int, default=16)
    options = parser.parse_args()
    sys.exit(main(options.rounds, options.fan, options.chain))
