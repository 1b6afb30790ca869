"""Where the parent's time goes in a warm no-op call, by profiling many of them.

Usage::

    python benchmarks/profile_dispatch.py                     # trio_wf, cProfile
    python benchmarks/profile_dispatch.py --library trio_parallel --calls 20000
    python benchmarks/profile_dispatch.py --pyinstrument      # if installed

It first times the calls unprofiled (wall and parent CPU per call: the parent's CPU
is what a faster dispatch path has to remove), then profiles the same number of
calls and prints the top entries by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import pstats
import time
from typing import Any


async def _calls(ctx: Any, count: int) -> None:
    for _ in range(count):
        await ctx.run_sync(int)


async def _profile(library: str, count: int, top: int, use_pyinstrument: bool) -> None:
    lib = importlib.import_module(library)
    async with lib.open_worker_context() as ctx:
        await _calls(ctx, 200)  # a warm worker, warm caches
        wall, cpu = time.perf_counter(), time.process_time()
        await _calls(ctx, count)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{library}: {count} sequential no-op calls, unprofiled: "
            f"{wall / count * 1e6:.1f} us wall and {cpu / count * 1e6:.1f} us "
            f"parent CPU per call ({cpu / wall:.0%} of the wall time)"
        )
        if use_pyinstrument:
            import pyinstrument

            profiler = pyinstrument.Profiler(interval=0.0001, async_mode="disabled")
            profiler.start()
            await _calls(ctx, count)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            return
        profile = cProfile.Profile()
        profile.enable()
        await _calls(ctx, count)
        profile.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        print(f"--- top {top} by {order} ---")
        print(out.getvalue().split("ncalls", 1)[-1].join(["ncalls", ""]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default="trio_wf", help="trio_wf|trio_parallel")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args()
    import trio

    trio.run(_profile, args.library, args.calls, args.top, args.pyinstrument)


if __name__ == "__main__":
    main()
