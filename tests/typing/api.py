"""Static checks of the public API's types: mypy checks this file, nobody runs it."""

from __future__ import annotations

import functools

import trio
from typing_extensions import assert_type

import trio_wf


def add(a: int, b: str) -> float:
    return a + len(b)


def no_args() -> bytes:
    return b""


async def run_sync_is_fully_typed() -> None:
    assert_type(await trio_wf.run_sync(add, 1, "x"), float)
    assert_type(await trio_wf.run_sync(no_args, kill_on_cancel=True), bytes)
    assert_type(await trio_wf.run_sync(functools.partial(add, 1), "x"), float)
    await trio_wf.run_sync(add, "wrong", "x")  # type: ignore[arg-type]
    await trio_wf.run_sync(add, 1)  # type: ignore[arg-type]
    await trio_wf.run_sync(add, 1, "x", limiter=trio.CapacityLimiter(1))


async def contexts_are_typed() -> None:
    async with trio_wf.open_worker_context(
        idle_timeout=1.0,
        init=bool,
        retire=trio_wf.retire_policy(max_jobs=10),
        grace_period=2.0,
        worker_type=trio_wf.WorkerType.FORKSERVER,
    ) as ctx:
        assert_type(ctx, trio_wf.WorkerContext)
        assert_type(await ctx.run_sync(add, 1, "x"), float)
        assert_type(ctx.statistics(), trio_wf.WorkerContextStatistics)
        assert_type(ctx.statistics().idle_workers, int)
        backend: trio_wf.SupportsRunSync = ctx
        assert_type(await backend.run_sync(no_args), bytes)
    async with trio_wf.cache_scope(worker_type=trio_wf.WorkerType.SPAWN):
        pass
    assert_type(trio_wf.current_default_worker_limiter(), trio.CapacityLimiter)


def errors_are_typed(exc: trio_wf.BrokenWorkerError) -> None:
    assert_type(exc.pid, int | None)
    assert_type(exc.exitcode, int | None)
    assert_type(exc.signal_name, str | None)
    assert_type(exc.workers, tuple[trio_wf.WorkerExit, ...])
