"""Contract tests of the module-level API: default context, cache_scope, limiter."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
import trio
import trio.testing

import trio_wf
from trio_wf import _defaults

from . import workers


async def test_run_sync_uses_the_default_context() -> None:
    """Module-level run_sync caches workers in the default context."""
    with trio.fail_after(20):
        first = await trio_wf.run_sync(workers.pid)
        assert await trio_wf.run_sync(workers.pid) == first
    assert trio_wf.default_context_statistics() == trio_wf.WorkerContextStatistics(1, 0)


async def test_default_limiter_is_per_run_with_one_token_per_cpu() -> None:
    """The default limiter has os.cpu_count() tokens and belongs to this run."""
    limiter = trio_wf.current_default_worker_limiter()
    assert limiter is trio_wf.current_default_worker_limiter()
    assert limiter.total_tokens == os.cpu_count()

    async def other_run() -> trio.CapacityLimiter:
        return trio_wf.current_default_worker_limiter()

    other = await trio.to_thread.run_sync(trio.run, other_run)
    assert other is not limiter


async def test_default_limiter_bounds_concurrency(manager: Any) -> None:
    """With one token, a second call waits for the first."""
    trio_wf.current_default_worker_limiter().total_tokens = 1
    started, release = manager.Event(), manager.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio_wf.run_sync, workers.block, started, release)
        with trio.fail_after(20):
            await trio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
        nursery.start_soon(trio_wf.run_sync, workers.pid)
        await trio.testing.wait_all_tasks_blocked()
        assert trio_wf.current_default_worker_limiter().statistics().tasks_waiting == 1
        release.set()


async def test_cache_scope_overrides_for_the_task_tree() -> None:
    """cache_scope applies to the task and the tasks it starts, and is closed."""
    with trio.fail_after(20):
        default_pid = await trio_wf.run_sync(workers.pid)
        async with trio_wf.cache_scope(init=workers.count_init):
            scoped = await trio_wf.run_sync(workers.init_calls)
            assert scoped[0] != default_pid
            assert scoped[1] == 1
            child: list[tuple[int, int]] = []

            async def in_child() -> None:
                child.append(await trio_wf.run_sync(workers.init_calls))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(in_child)
            assert child == [scoped]
            assert trio_wf.default_context_statistics().idle_workers == 1
        assert await trio_wf.run_sync(workers.pid) == default_pid


async def test_cache_scope_nests_and_spares_explicit_contexts() -> None:
    """Inner scopes win; explicit contexts are never overridden."""
    with trio.fail_after(20):
        async with trio_wf.open_worker_context() as explicit:
            explicit_pid = await explicit.run_sync(workers.pid)
            async with trio_wf.cache_scope():
                outer = await trio_wf.run_sync(workers.pid)
                async with trio_wf.cache_scope():
                    inner = await trio_wf.run_sync(workers.pid)
                    assert await explicit.run_sync(workers.pid) == explicit_pid
                assert await trio_wf.run_sync(workers.pid) == outer
    assert len({explicit_pid, outer, inner}) == 3


async def test_cache_scope_follows_task_tree_not_call_stack() -> None:
    """A task started in an outer nursery does not see an inner scope."""
    async with trio.open_nursery() as nursery, trio_wf.cache_scope():
        scoped = trio_wf.default_context_statistics
        assert _defaults.get_default_context() is not _defaults._default_context
        seen: list[object] = []

        async def outside() -> None:
            seen.append(_defaults.get_default_context())

        nursery.start_soon(outside)
        await trio.testing.wait_all_tasks_blocked()
        assert scoped is trio_wf.default_context_statistics
    assert seen == [_defaults._default_context]


async def test_configure_default_context() -> None:
    """configure_default_context replaces the default; old workers go away."""
    with trio.fail_after(20):
        old = await trio_wf.run_sync(workers.pid)
        trio_wf.configure_default_context(retire=trio_wf.retire_policy(max_jobs=1))
        first = await trio_wf.run_sync(workers.pid)
        second = await trio_wf.run_sync(workers.pid)
    assert len({old, first, second}) == 3


async def test_configure_default_context_main_thread_only() -> None:
    """Calling it from another thread raises RuntimeError."""
    with pytest.raises(RuntimeError, match="main thread"):
        await trio.to_thread.run_sync(trio_wf.configure_default_context)


def test_sequential_runs_share_default_workers() -> None:
    """Workers of the default context survive from one trio.run to the next."""

    async def pid() -> int:
        with trio.fail_after(20):
            return await trio_wf.run_sync(workers.pid)

    assert trio.run(pid) == trio.run(pid)


async def test_concurrent_runs_in_threads() -> None:
    """Several trio.run in threads can use the default context at once."""

    async def hammer(i: int) -> None:
        with trio.fail_after(20):
            for _ in range(20):
                assert await trio_wf.run_sync(int, i, kill_on_cancel=True) == i

    async with trio.open_nursery() as nursery:
        for i in range(2):
            nursery.start_soon(trio.to_thread.run_sync, trio.run, hammer, i)


def test_workers_outlive_the_thread_that_started_them() -> None:
    """A worker started by a trio.run in a thread survives that thread's exit."""
    pids: list[int] = []

    async def pid() -> int:
        with trio.fail_after(20):
            return await trio_wf.run_sync(workers.pid)

    thread = threading.Thread(target=lambda: pids.append(trio.run(pid)))
    thread.start()
    thread.join()
    assert trio.run(pid) == pids[0]
