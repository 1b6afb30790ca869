"""Kill-on-cancel, cancel -> return, under every worker type: trio_wf and trio-parallel.

Usage: ``python benchmarks/kill_bench.py [--rounds N]`` (in the bench session's venv).

Row 4 of the side-by-side table measures the default (spawn) workers only.  Here
each worker type gets a context of both libraries, measured in interleaved rounds
(the order alternates), as row 4 measures it (``_scenarios.time_kill``): a warm
worker starts ``time.sleep(30)`` with ``kill_on_cancel=True``, its scope is
cancelled 0.2 s later, and the time from ``cancel()`` to the call returning (the
worker killed and reaped) is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import statistics

import trio
from _scenarios import time_kill

LIBRARIES = ("trio_wf", "trio_parallel")


async def main(rounds: int) -> None:
    for worker_type in ("SPAWN", "FORKSERVER", "FORK"):
        times: dict[str, list[float]] = {name: [] for name in LIBRARIES}
        async with contextlib.AsyncExitStack() as stack:
            contexts = {}
            for name in LIBRARIES:
                library = importlib.import_module(name)
                kind = getattr(library.WorkerType, worker_type)
                contexts[name] = await stack.enter_async_context(
                    library.open_worker_context(worker_type=kind)
                )
            for index in range(rounds):
                order = LIBRARIES if index % 2 else LIBRARIES[::-1]
                for name in order:
                    ctx = contexts[name]
                    kill = functools.partial(ctx.run_sync, kill_on_cancel=True)
                    times[name].append(await time_kill(ctx.run_sync, kill))
        cells = [
            f"{name}: median {statistics.median(values):.2f} ms "
            f"(min {min(values):.2f}, max {max(values):.2f})"
            for name, values in times.items()
        ]
        print(f"{worker_type.lower():10}  " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    trio.run(main, parser.parse_args().rounds)
