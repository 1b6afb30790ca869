"""Row 5: the first call of a brand-new context, per worker type.

Each measurement opens a new context (or executor, or trio run for anyio, whose
process pool belongs to the run), times its first no-op call, and closes it outside
the timed region.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from _contenders import wait_future
from _report import Cell
from _rounds import Contenders, Settings, interleave, suffix

WORKER_TYPES = ("spawn", "forkserver", "fork")
ColdMeasure = Callable[[], Awaitable[float]]


def _worker_pool(module: str) -> Callable[[str], ColdMeasure]:
    """trio_wf and trio-parallel share this API: one measurement serves both."""

    def for_type(worker_type: str) -> ColdMeasure:
        async def measure() -> float:
            library = importlib.import_module(module)
            async with library.open_worker_context(
                worker_type=library.WorkerType(worker_type)
            ) as ctx:
                start = time.perf_counter()
                await ctx.run_sync(int)
                return time.perf_counter() - start

        return measure

    return for_type


def _anyio_cold_run() -> float:
    import anyio.to_process

    async def first_call() -> float:
        start = time.perf_counter()
        await anyio.to_process.run_sync(int)
        return time.perf_counter() - start

    # A new trio.run gives a new, empty anyio process pool; its worker is
    # killed when that run ends.
    return trio.run(first_call)


def _anyio(worker_type: str) -> ColdMeasure:
    async def measure() -> float:
        return await trio.to_thread.run_sync(_anyio_cold_run)

    return measure


def _process_pool(worker_type: str) -> ColdMeasure:
    async def measure() -> float:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context(worker_type)
        )
        try:
            start = time.perf_counter()
            await wait_future(executor.submit(int))
            return time.perf_counter() - start
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(executor.shutdown)

    return measure


# Per contender: which worker types it has, and how to measure one.
COLD: dict[str, tuple[tuple[str, ...], Callable[[str], ColdMeasure]]] = {
    "trio_wf": (WORKER_TYPES, _worker_pool("trio_wf")),
    "trio-parallel": (WORKER_TYPES, _worker_pool("trio_parallel")),
    "anyio": (("spawn",), _anyio),
    "cf-process-pool": (WORKER_TYPES, _process_pool),
}
COLD_UNSUPPORTED = {
    "loky": "the reusable executor is process-wide; no fresh one per measurement",
    "trio.to_thread": "threads have no cold start worth the name",
    "raw-pipe floor": "not a worker pool",
}


async def row_cold(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Row 5: the first call of a new context, per worker type (one discarded)."""
    result: list[Cell] = []
    for worker_type in WORKER_TYPES:
        scenario = f"5 cold first call, {worker_type}{suffix(spinners)}"
        cells: dict[str, Cell] = {}
        measures = {}
        for name in contenders:
            cell = Cell(scenario, name, "ms", False, spinners=spinners)
            if name in COLD:
                types, factory = COLD[name]
                if worker_type not in types:
                    continue
                measures[name] = factory(worker_type)
            elif worker_type == WORKER_TYPES[0]:  # say why once, not per type
                cell.error = COLD_UNSUPPORTED.get(name, "no cold-start measurement")
            else:
                continue
            cells[name] = cell

        async def measure(
            name: str, measures: Any = measures
        ) -> tuple[float, list[float]]:
            return (await measures[name]()) * 1e3, []

        # Round 0 is the warm-up (forkserver start, page cache); it is dropped.
        await interleave(cells, 1, measure, settings.timeout)
        for cell in cells.values():
            cell.rounds.clear()
        await interleave(cells, settings.cold_rounds, measure, settings.timeout)
        result.extend(cells.values())
    return result
