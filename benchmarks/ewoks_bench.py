"""ewokscore Task nodes on trio_wf, ewokscore's sequential engine and ewoksppf.

Usage: python benchmarks/ewoks_bench.py [--chain 16] [--fan 200] [--repeat 3]
       [--sizes 1000 10000] [--no-ppf]

Needs ``pip install 'trio-wf[ewoks]' ewoksppf``.  Graphs of no-op ewokscore
tasks (`ewoks_noop.Noop`, trigger-only links): a chain (each node waits for the
one before) and a fan (one source, then every other node at once).

* **task**: ewokscore's own cost of a task, in this process: build it with
  ``instantiate_task``, ``execute()`` it, take its transfer data.
* **trio_wf, warm**: on one warm spawn context of 2 workers, per node, beside
  the same graph of no-op ``method`` nodes (``builtins.int``) and a chain of
  bare ``run_sync`` calls (the dispatch).  The engine overhead of a class task
  is (ewoks chain - dispatch chain) / nodes - task.
* **end to end**: one ``execute_graph`` call per engine, start-up included:
  trio_wf (2 spawn workers, which import ewokscore, or 2 fork workers, which
  inherit it), ewokscore's sequential
  engine, ewoksppf (process pool, 2 workers, ``scaling_workers=False``).  The
  ewoks engines load the graph with ewokscore's loader, whose analysis grows
  exponentially along a chain: keep ``--chain`` under 18.
* trio_wf alone, warm, at ``--sizes`` nodes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

HERE = os.path.dirname(os.path.abspath(__file__))
# Workers (ours and ewoksppf's) import ewoks_noop by name.
sys.path.insert(0, HERE)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [HERE, *filter(None, [os.environ.get("PYTHONPATH")])]
)

import trio_wf  # noqa: E402
from trio_wf.workflow import aexecute_graph, execute_graph, load_graph  # noqa: E402

NOOP_TASK = "ewoks_noop.Noop"
NOOP_METHOD = "builtins.int"
WORKERS = 2


def nodes(n: int, task_type: str, identifier: str) -> list[dict[str, Any]]:
    return [
        # String ids: ewoksppf fails on int ids (ewokscore's node_id_as_string).
        {"id": f"n{i}", "task_type": task_type, "task_identifier": identifier}
        for i in range(n)
    ]


def chain(n: int, task_type: str = "class", identifier: str = NOOP_TASK) -> Any:
    links = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return {
        "graph": {"id": "chain"},
        "nodes": nodes(n, task_type, identifier),
        "links": links,
    }


def fan(n: int, task_type: str = "class", identifier: str = NOOP_TASK) -> Any:
    links = [{"source": "n0", "target": f"n{i}"} for i in range(1, n)]
    return {
        "graph": {"id": "fan"},
        "nodes": nodes(n, task_type, identifier),
        "links": links,
    }


def timed(job: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def atimed(job: Callable[[], Awaitable[object]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await job()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def task_cost(n: int = 2000) -> float:
    from ewokscore.inittask import instantiate_task

    attrs = {"task_type": "class", "task_identifier": NOOP_TASK}

    def run() -> None:
        for i in range(n):
            task = instantiate_task(i, attrs, inputs={})
            task.execute()
            task.get_output_transfer_data()

    return timed(run, 3) / n


async def warm_trio_wf(args: argparse.Namespace, task: float) -> None:
    limiter = trio.CapacityLimiter(WORKERS)
    async with trio_wf.open_worker_context() as context:
        async with trio.open_nursery() as nursery:  # start both workers
            for _ in range(WORKERS):
                nursery.start_soon(
                    lambda: context.run_sync(time.sleep, 0.2, limiter=limiter)
                )
        await context.run_sync(__import__, "ewoks_noop")

        async def run(graph: Any) -> None:
            await aexecute_graph(graph, context=context, max_workers=WORKERS)

        for shape, build in (("chain", chain), ("fan", fan)):
            for n in (args.chain if shape == "chain" else args.fan, *args.sizes):
                ewoks = load_graph(build(n))
                method = load_graph(build(n, "method", NOOP_METHOD))
                t_ewoks = await atimed(lambda g=ewoks: run(g), args.repeat) / n
                t_method = await atimed(lambda g=method: run(g), args.repeat) / n
                line = (
                    f"trio_wf warm {shape:5} {n:6}: ewoks task "
                    f"{t_ewoks * 1e6:7.1f} us/node, method {t_method * 1e6:6.1f}"
                )
                if shape == "chain":

                    async def calls(n: int = n) -> None:
                        for _ in range(n):
                            await context.run_sync(int, limiter=limiter)

                    dispatch = await atimed(calls, args.repeat) / n
                    over = t_ewoks - dispatch - task
                    line += (
                        f", dispatch {dispatch * 1e6:6.1f}; engine overhead of a "
                        f"class task {over * 1e6:6.1f} us"
                    )
                print(line, flush=True)


def engines(graph: Any, no_ppf: bool) -> dict[str, Callable[[], object]]:
    """One ``execute_graph`` call of ``graph`` per engine, by name."""
    import ewokscore

    runs: dict[str, Callable[[], object]] = {
        "trio_wf": lambda: execute_graph(graph, max_workers=WORKERS),
        # Forked workers inherit the ewokscore this process imported, as
        # ewoksppf's (fork-started, on Linux before 3.14) process pool does.
        "trio_wf fork": lambda: execute_graph(
            graph, max_workers=WORKERS, worker_type="fork"
        ),
        "ewokscore sequential": lambda: ewokscore.execute_graph(graph),
    }
    if no_ppf:
        return runs
    try:
        import ewoksppf
    except ImportError:
        return runs
    runs["ewoksppf process x2"] = lambda: ewoksppf.execute_graph(
        graph, pool_type="process", max_workers=WORKERS, scaling_workers=False
    )
    return runs


def end_to_end(args: argparse.Namespace) -> None:
    for shape, build, n in (("chain", chain, args.chain), ("fan", fan, args.fan)):
        row = {
            name: timed(run, args.repeat)
            for name, run in engines(build(n), args.no_ppf).items()
        }
        base = row["trio_wf"]
        cells = ", ".join(
            f"{name} {t * 1e3:.0f} ms (x{t / base:.2f})" for name, t in row.items()
        )
        print(f"end to end {shape} {n}: {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=16)
    parser.add_argument("--fan", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-ppf", action="store_true")
    args = parser.parse_args()
    task = task_cost()
    print(f"ewokscore task, in process: {task * 1e6:.1f} us", flush=True)
    trio.run(warm_trio_wf, args, task)
    end_to_end(args)


if __name__ == "__main__":
    main()
