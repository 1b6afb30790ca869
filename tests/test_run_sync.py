"""Contract tests of `run_sync` on real worker processes, under every worker type."""

from __future__ import annotations

import functools
import os
import signal
from typing import Any

import psutil
import pytest
import trio
import trio.lowlevel
import trio.testing

import trio_wf
from trio_wf import BrokenWorkerError, WorkerType

from . import workers
from .helpers import wait_event


async def test_returns_result_from_another_process(worker_type: WorkerType) -> None:
    """The function runs in a worker process and its result comes back."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            assert await ctx.run_sync(workers.add, 2, 3) == 5
            assert await ctx.run_sync(os.getpid) != os.getpid()
            keyword = functools.partial(workers.add, scale=10)
            assert await ctx.run_sync(keyword, 1, 2) == 30


async def test_workers_are_reused(worker_type: WorkerType) -> None:
    """Sequential calls reuse the cached worker."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            assert await ctx.run_sync(workers.pid) == first
            assert ctx.statistics() == trio_wf.WorkerContextStatistics(1, 0)


async def test_lambdas_and_closures_travel_by_value(worker_type: WorkerType) -> None:
    """Lambdas and local functions are shipped with cloudpickle."""
    offset = 5

    def local(x: int) -> int:
        return x + offset

    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            assert await ctx.run_sync(lambda: 41 + 1) == 42
            assert await ctx.run_sync(local, 1) == 6


async def test_callable_and_arguments_share_objects(worker_type: WorkerType) -> None:
    """A callable holding state (a bound method, a builtin bound to an object)
    travels in one pickle with the arguments, so shared objects stay shared; a
    module's function, pickled once per process, keeps working with new
    arguments."""
    box = workers.Box()
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            assert await ctx.run_sync(box.same, box) is True
            assert await ctx.run_sync([1, 2].copy) == [1, 2]
            for n in range(3):
                assert await ctx.run_sync(workers.add, n, 1) == n + 1


async def test_entry_is_a_checkpoint() -> None:
    """run_sync always checkpoints, and a cancelled entry never starts a worker."""
    children = psutil.Process().children()
    async with trio_wf.open_worker_context() as ctx:
        with trio.CancelScope() as scope:
            scope.cancel()
            await ctx.run_sync(workers.pid)
        assert scope.cancelled_caught
        assert ctx.statistics() == trio_wf.WorkerContextStatistics(0, 0)
        assert psutil.Process().children() == children
        with trio.fail_after(20):
            await ctx.run_sync(workers.pid)  # start one, then check a warm call
            with trio.testing.assert_checkpoints():
                await ctx.run_sync(workers.pid)


async def test_limiter_is_held_during_worker_start() -> None:
    """The limiter token is taken before the worker starts and kept until the end."""
    limiter = trio.CapacityLimiter(1)
    async with trio_wf.open_worker_context() as ctx, trio.open_nursery() as nursery:
        nursery.start_soon(
            functools.partial(ctx.run_sync, workers.pid, limiter=limiter)
        )
        nursery.start_soon(
            functools.partial(ctx.run_sync, workers.pid, limiter=limiter)
        )
        await trio.testing.wait_all_tasks_blocked()
        # One call is starting its worker (blocked on the pipe), the other queued.
        assert limiter.borrowed_tokens == 1
        assert limiter.statistics().tasks_waiting == 1
        assert ctx.statistics().running_workers == 1


async def test_any_async_context_manager_is_a_limiter(manager: Any) -> None:
    """As in trio-parallel, limiter may be any async context manager; it is held
    for the whole call."""
    semaphore = trio.Semaphore(1)
    started, release = manager.Event(), manager.Event()
    async with trio_wf.open_worker_context() as ctx, trio.open_nursery() as nursery:
        with trio.fail_after(20):
            nursery.start_soon(
                functools.partial(
                    ctx.run_sync, workers.block, started, release, limiter=semaphore
                )
            )
            await wait_event(started)
            assert semaphore.value == 0
            release.set()
    assert semaphore.value == 1


async def test_exception_keeps_type_traceback_and_cause(
    worker_type: WorkerType,
) -> None:
    """A worker's exception is re-raised with its remote traceback and cause chain."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20), pytest.raises(ValueError) as info:
            await ctx.run_sync(workers.raise_chain)
    assert info.value.args == ("outer", 42)
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.__cause__.args == ("inner cause",)
    frames = [entry.name for entry in info.traceback]
    assert "raise_chain" in frames  # the remote frame
    assert any(
        "worker process" in note for note in getattr(info.value, "__notes__", [])
    )


async def test_system_exit_is_reraised() -> None:
    """sys.exit() in a job re-raises SystemExit in the caller; the worker lives on."""
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            with pytest.raises(SystemExit) as info:
                await ctx.run_sync(os.sys.exit, 3)  # type: ignore[attr-defined]
            assert info.value.code == 3
            assert await ctx.run_sync(workers.pid) == first


async def test_async_function_is_refused() -> None:
    """An async function gets a clear TypeError, and no never-awaited warning."""

    async def coro_fn() -> None:
        await trio.lowlevel.checkpoint()  # pragma: no cover, never run

    async with trio_wf.open_worker_context() as ctx:
        with pytest.raises(TypeError, match=r"expected a sync function.*coro_fn"):
            await ctx.run_sync(coro_fn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected a sync function"):
            await ctx.run_sync(functools.partial(coro_fn))  # type: ignore[arg-type]
        assert ctx.statistics().idle_workers == 0


async def test_kill_on_cancel_false_waits_for_the_result(
    worker_type: WorkerType, manager: Any
) -> None:
    """Without kill_on_cancel, cancellation waits for the job, which returns;
    the cancellation is delivered at the caller's next checkpoint."""
    started, release, done = manager.Event(), manager.Event(), manager.Event()
    scope = trio.CancelScope()
    record = []
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:

        async def call() -> None:
            with scope:
                record.append(await ctx.run_sync(workers.block, started, release, done))
                await trio.lowlevel.checkpoint()
                record.append("not reached")  # pragma: no cover

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await wait_event(started)
                scope.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert not done.is_set()
                release.set()
        assert scope.cancelled_caught
        assert done.is_set()
        assert record == [record[0]]
        assert isinstance(record[0], int)
        assert ctx.statistics().idle_workers == 1  # the worker went back to the cache


async def test_kill_on_cancel_true_kills_the_worker(
    worker_type: WorkerType, manager: Any
) -> None:
    """With kill_on_cancel, cancellation kills and reaps the worker at once."""
    started = manager.Event()
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        functools.partial(
                            ctx.run_sync,
                            workers.started_then_sleep,
                            started,
                            kill_on_cancel=True,
                        )
                    )
                    await wait_event(started)
                    scope.cancel()
            assert scope.cancelled_caught
            assert not psutil.pid_exists(victim)  # killed and reaped
            assert ctx.statistics() == trio_wf.WorkerContextStatistics(0, 0)
            assert await ctx.run_sync(workers.pid) != victim  # still usable


async def test_cancellable_is_a_deprecated_alias(manager: Any) -> None:
    """cancellable=True warns and behaves as kill_on_cancel=True."""
    started = manager.Event()
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20), trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    with pytest.warns(DeprecationWarning, match="kill_on_cancel") as w:
                        await ctx.run_sync(
                            workers.started_then_sleep, started, cancellable=True
                        )
                    assert w[0].filename == __file__  # it blames the caller

                nursery.start_soon(call)
                await wait_event(started)
                scope.cancel()
        assert scope.cancelled_caught


async def test_module_level_cancellable_blames_the_caller() -> None:
    """The module-level run_sync's cancellable warning points at its caller too."""
    with (
        trio.fail_after(20),
        pytest.warns(DeprecationWarning, match="kill_on_cancel") as w,
    ):
        assert await trio_wf.run_sync(workers.add, 1, 2, cancellable=True) == 3
    assert w[0].filename == __file__


async def test_workers_ignore_sigint(worker_type: WorkerType) -> None:
    """SIGINT inside a worker does nothing: Ctrl+C is the parent's business."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            assert await ctx.run_sync(workers.sigint_disposition)
            assert await ctx.run_sync(workers.raise_sigint) == "survived"


@pytest.mark.parametrize(
    ("job", "exitcode", "text"),
    [
        (functools.partial(workers.exit_now, 42), 42, "exited with code 42"),
        (workers.segfault, -signal.SIGSEGV, "killed by SIGSEGV"),
    ],
    ids=["os._exit", "segfault"],
)
async def test_dead_worker_fails_only_its_call(
    worker_type: WorkerType, job: Any, exitcode: int, text: str
) -> None:
    """A worker death raises BrokenWorkerError for its call alone."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            results = []

            async def bystander() -> None:
                results.append(await ctx.run_sync(workers.add, 1, 1))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(bystander)
                with pytest.raises(BrokenWorkerError) as info:
                    await ctx.run_sync(job)
            assert results == [2]
            error = info.value
            assert error.exitcode == exitcode
            assert error.pid is not None
            assert str(error.pid) in str(error)
            assert text in str(error)
            assert error.args[-1].exitcode == exitcode  # trio-parallel's spelling
            assert not psutil.pid_exists(error.pid)
            assert await ctx.run_sync(workers.pid) != error.pid


async def test_externally_killed_worker(worker_type: WorkerType, manager: Any) -> None:
    """A SIGKILL from outside names the signal and hints at memory."""
    started = manager.Event()
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            async with trio.open_nursery() as nursery:

                async def killer() -> None:
                    await wait_event(started)
                    os.kill(victim, signal.SIGKILL)

                nursery.start_soon(killer)
                with pytest.raises(BrokenWorkerError, match=r"SIGKILL.*out of memory"):
                    await ctx.run_sync(workers.started_then_sleep, started)
            assert (await ctx.run_sync(workers.pid)) != victim


# Not fork: a forked worker inherits the parent's modules, trio included.
@pytest.mark.parametrize(
    "worker_type", [WorkerType.SPAWN, WorkerType.FORKSERVER], ids=lambda t: t.value
)
async def test_workers_import_no_trio(worker_type: WorkerType) -> None:
    """Spawn and forkserver workers start without importing trio or trio_wf."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            modules = await ctx.run_sync(workers.modules_loaded)
    assert "trio" not in modules
    assert "trio_wf" not in modules


async def test_spawned_workers_start_lean() -> None:
    """A spawned worker imports only what it needs to run a job: typing,
    traceback and the like would add milliseconds to every cold start."""
    modules_now = functools.partial(eval, "sorted(__import__('sys').modules)")
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20):
            modules = await ctx.run_sync(modules_now)
    assert "_trio_wf_worker._main" in modules
    assert not {"typing", "traceback", "trio", "cloudpickle", "tblib"} & set(modules)


async def test_tasks_may_start_process_pools(worker_type: WorkerType) -> None:
    """Workers are not daemonic: jobs may start subprocesses and process pools."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(60):
            results = await ctx.run_sync(workers.use_process_pools)
    assert results == [42] + [14] * 6
