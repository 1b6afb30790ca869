"""Contract tests of worker contexts: options, life cycle, validation."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import trio_wf
from trio_wf import BrokenWorkerError, WorkerContextStatistics, WorkerType

from . import workers
from .helpers import wait_until_exited


async def test_idle_workers_exit_by_themselves(worker_type: WorkerType) -> None:
    """A worker idle for idle_timeout exits; the next call starts a new one."""
    async with trio_wf.open_worker_context(
        idle_timeout=0.1, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            await wait_until_exited(first)
            assert ctx.statistics() == WorkerContextStatistics(0, 0)
            assert await ctx.run_sync(workers.pid) != first


async def test_idle_timeout_race_resubmits_the_job(worker_type: WorkerType) -> None:
    """A job sent to a worker that is just timing out runs on another worker."""
    async with trio_wf.open_worker_context(
        idle_timeout=0, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            # idle_timeout=0: a worker leaves as soon as its pipe is empty after a
            # job, so calls keep racing with leaving workers; none may fail.
            results = [await ctx.run_sync(workers.add, i, 1) for i in range(20)]
    assert results == list(range(1, 21))


async def test_new_worker_takes_its_first_job(
    worker_type: WorkerType, tmp_path: Path
) -> None:
    """However short the idle timeout, a worker started for a call runs its job:
    one call starts exactly one worker (no goodbye, no resubmission)."""
    log = tmp_path / "starts"
    init = functools.partial(workers.record_start, str(log))
    for round_ in range(1, 4):
        async with trio_wf.open_worker_context(
            idle_timeout=0, init=init, worker_type=worker_type
        ) as ctx:
            with trio.fail_after(20):
                pid = await ctx.run_sync(workers.pid)
        starts = log.read_text().split()
        assert len(starts) == round_
        assert starts[-1] == str(pid)


async def test_init_runs_once_per_worker(worker_type: WorkerType) -> None:
    """init runs once in each new worker, before its first job."""
    async with trio_wf.open_worker_context(
        init=workers.count_init, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.init_calls)
            second = await ctx.run_sync(workers.init_calls)
    assert first == second
    assert first[1] == 1


async def test_failing_init_fails_fast_with_its_cause(worker_type: WorkerType) -> None:
    """A failing init gives BrokenWorkerError caused by the init exception, once."""
    async with trio_wf.open_worker_context(
        init=workers.failing_init, worker_type=worker_type
    ) as ctx:
        for _ in range(2):
            with trio.fail_after(20), pytest.raises(BrokenWorkerError) as info:
                await ctx.run_sync(workers.pid)
            assert "tests.workers.failing_init" in str(info.value)
            assert "was not run" in str(info.value)
            assert isinstance(info.value.__cause__, RuntimeError)
            assert info.value.exitcode == 1  # its own exit status, not a kill
            assert "init exploded" in str(info.value.__cause__)
            assert ctx.statistics() == WorkerContextStatistics(0, 0)


async def test_retire_policy_after_jobs(worker_type: WorkerType) -> None:
    """retire_policy(max_jobs=2) gives each worker exactly two jobs."""
    async with trio_wf.open_worker_context(
        retire=trio_wf.retire_policy(max_jobs=2), worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            pids = [await ctx.run_sync(workers.pid) for _ in range(6)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert len(set(pids)) == 3


async def test_retire_policy_on_memory() -> None:
    """A max_rss below any real process size retires after every job."""
    async with trio_wf.open_worker_context(
        retire=trio_wf.retire_policy(max_rss=1)
    ) as ctx:
        with trio.fail_after(20):
            pids = [await ctx.run_sync(workers.pid) for _ in range(3)]
    assert len(set(pids)) == 3


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_jobs": 0}, {"max_rss": -1}, {"max_jobs": 1.5}, {"max_jobs": True}],
)
def test_retire_policy_validation(kwargs: dict[str, Any]) -> None:
    """retire_policy rejects missing and non-positive limits, naming them."""
    with pytest.raises(ValueError, match="max_"):
        trio_wf.retire_policy(**kwargs)


async def test_failing_retire_is_reported(worker_type: WorkerType, capfd: Any) -> None:
    """A raising retire fails the next call on that worker, naming the callable."""
    async with trio_wf.open_worker_context(
        retire=workers.bad_retire, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            with pytest.raises(BrokenWorkerError, match="retire callable") as info:
                await ctx.run_sync(workers.pid)
            assert "tests.workers.bad_retire" in str(info.value)
            assert "AssertionError: retire exploded" in str(info.value)
            assert info.value.pid == first
            assert info.value.exitcode == 3  # its own exit status, not a kill
            # The next call after that works (and its worker fails retire again).
            assert await ctx.run_sync(workers.pid) != first
            with pytest.raises(BrokenWorkerError):
                await ctx.run_sync(workers.pid)
    if worker_type is not WorkerType.FORKSERVER:
        # Forkserver workers write to the stderr the server started with, which
        # predates this test's capture.
        assert "retire exploded" in capfd.readouterr().err


async def test_start_workers_ahead_of_the_calls(worker_type: WorkerType) -> None:
    """start_workers starts workers in parallel; the next calls use them."""
    me = psutil.Process()
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            await ctx.start_workers(3)
            assert ctx.statistics() == WorkerContextStatistics(3, 0)
            started = {p.pid for p in me.children(recursive=True)}
            await ctx.start_workers(2)  # enough are idle already
            pids = set()

            async def call() -> None:
                pids.add(await ctx.run_sync(workers.pid))

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(call)
            assert pids <= started
            assert {p.pid for p in me.children(recursive=True)} == started


async def test_start_workers_of_the_current_context() -> None:
    """The module-level start_workers uses run_sync's context; by default it
    starts one worker per token of the default limiter."""
    with trio.fail_after(20):
        await trio_wf.start_workers()
    tokens = trio_wf.current_default_worker_limiter().total_tokens
    assert trio_wf.default_context_statistics().idle_workers == tokens


async def test_start_workers_failures_and_validation(worker_type: WorkerType) -> None:
    for bad in ["2", -1, True]:
        with pytest.raises(ValueError, match="count must be a non-negative int"):
            await trio_wf.start_workers(bad)  # type: ignore[arg-type]
    async with trio_wf.open_worker_context(
        init=workers.failing_init, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20), pytest.raises(BrokenWorkerError, match="init"):
            await ctx.start_workers(2)
        assert ctx.statistics() == WorkerContextStatistics(0, 0)
    with pytest.raises(trio.ClosedResourceError):
        await ctx.start_workers(1)


async def test_leaving_worker_is_reaped_even_when_cancelled() -> None:
    """Waiting for a worker that said it is leaving (retire or init failed) is
    cancellable, and still kills and reaps it (the leak check sees the rest)."""
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
        worker = ctx._pool._idle.pop()  # an idle worker, which will not leave
        with trio.CancelScope() as scope:
            scope.cancel()
            await worker.reap_leaving()
        assert scope.cancelled_caught
        assert not psutil.pid_exists(pid)


async def test_grace_period_then_kill(worker_type: WorkerType) -> None:
    """Workers that do not exit within grace_period are killed and reported."""
    with trio.fail_after(20):
        with pytest.raises(BrokenWorkerError, match=r"killed after the 0\.2s") as info:
            async with trio_wf.open_worker_context(
                retire=workers.loopy_retire, grace_period=0.2, worker_type=worker_type
            ) as ctx:
                pid = await ctx.run_sync(workers.pid)
        assert info.value.pid == pid
        assert not psutil.pid_exists(pid)


async def test_grace_period_zero_kills_at_once() -> None:
    """grace_period=0 kills idle workers straight away (and says so)."""
    with trio.fail_after(20), pytest.raises(BrokenWorkerError):
        async with trio_wf.open_worker_context(grace_period=0) as ctx:
            await ctx.run_sync(workers.pid)


async def test_close_leaves_nothing_and_refuses_new_calls(
    worker_type: WorkerType,
) -> None:
    """Closing a context reaps its workers; later calls raise ClosedResourceError."""
    async with trio_wf.open_worker_context(
        idle_timeout=math.inf, grace_period=math.inf, worker_type=worker_type
    ) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
    assert not psutil.pid_exists(pid)
    with pytest.raises(trio.ClosedResourceError):
        await ctx.run_sync(workers.pid)


async def test_close_waits_for_running_calls(manager: Any) -> None:
    """Leaving the context block waits for calls still running in it."""
    started, release = manager.Event(), manager.Event()
    results: list[int] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            async with trio_wf.open_worker_context() as ctx:

                async def call() -> None:
                    results.append(await ctx.run_sync(workers.block, started, release))

                nursery.start_soon(call)
                await trio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
                assert ctx.statistics().running_workers == 1
                release.set()
            assert len(results) == 1


async def test_statistics_count_running_and_idle(manager: Any) -> None:
    """statistics() reports idle workers and running calls."""
    started, release = manager.Event(), manager.Event()
    async with trio_wf.open_worker_context() as ctx, trio.open_nursery() as nursery:
        with trio.fail_after(20):
            assert ctx.statistics() == WorkerContextStatistics(0, 0)
            nursery.start_soon(ctx.run_sync, workers.block, started, release)
            await trio.to_thread.run_sync(started.wait, abandon_on_cancel=True)
            assert ctx.statistics() == WorkerContextStatistics(0, 1)
            release.set()
    assert ctx.statistics() == WorkerContextStatistics(0, 0)  # closed: reaped


async def test_idle_worker_killed_externally_is_pruned(worker_type: WorkerType) -> None:
    """An idle worker that died is dropped silently; the next call gets a new one."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            os.kill(victim, 9)
            await wait_until_exited(victim)
            assert await ctx.run_sync(workers.pid) != victim


async def test_idle_worker_sleeps(worker_type: WorkerType) -> None:
    """A worker polls for its next job only briefly (SPIN), then sleeps: an idle
    pool costs no CPU."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            worker = psutil.Process(await ctx.run_sync(workers.pid))
            before = worker.cpu_times()
            await trio.sleep(0.3)  # a window to measure, not a synchronisation
            after = worker.cpu_times()
            assert worker.status() == psutil.STATUS_SLEEPING
    busy = after.user + after.system - before.user - before.system
    assert busy < 0.1, f"an idle worker used {busy:.3f} s of CPU in 0.3 s"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"idle_timeout": -1}, ValueError, "idle_timeout must be non-negative, got -1"),
        ({"grace_period": -0.5}, ValueError, "grace_period must be non-negative"),
        ({"grace_period": math.nan}, ValueError, "grace_period must be non-negative"),
        ({"idle_timeout": "10"}, TypeError, "idle_timeout must be a number"),
        ({"init": 42}, TypeError, "init must be callable"),
        ({"retire": None}, TypeError, "retire must be callable"),
        ({"worker_type": "thread"}, ValueError, "worker_type must be one of"),
        ({"init": lambda: None, "retire": os.getpid}, None, None),
    ],
)
@pytest.mark.parametrize(
    "opener", [trio_wf.open_worker_context, trio_wf.cache_scope], ids=["open", "scope"]
)
async def test_validation(
    opener: Any, kwargs: dict[str, Any], error: Any, match: Any
) -> None:
    """Invalid options raise at once, naming the parameter and the value."""
    if error is None:
        async with opener(**kwargs):
            return
    with pytest.raises(error, match=match):
        async with opener(**kwargs):
            pass  # pragma: no cover


def test_validation_of_default_context() -> None:
    """configure_default_context validates like open_worker_context."""
    with pytest.raises(ValueError, match="idle_timeout"):
        trio_wf.configure_default_context(idle_timeout=-1)


def test_worker_context_has_no_public_constructor() -> None:
    """WorkerContext instances only come from the open_* functions."""
    with pytest.raises(TypeError, match="no public constructor"):
        trio_wf.WorkerContext()


async def test_string_worker_types_are_accepted() -> None:
    """worker_type accepts WorkerType members and their string values."""
    async with trio_wf.open_worker_context(worker_type="fork") as ctx:  # type: ignore[arg-type]
        assert ctx.worker_type is WorkerType.FORK


async def test_on_start_reports_the_worker_a_call_reaches(
    worker_type: WorkerType, tmp_path: Path
) -> None:
    """on_start gets the pid of the worker that runs the call, once it holds a
    limiter token and a worker; a second call waits its turn; what on_start
    raises is raised, the job is not sent, and the worker stays."""
    limiter = trio.CapacityLimiter(1)
    seen: list[tuple[str, int, float]] = []
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:

        async def call(name: str) -> tuple[str, int, float]:
            def on_start(pid: int) -> None:
                seen.append((name, pid, trio.current_time()))

            pid = await ctx.run_sync(
                workers.sleep_and_pid, 0.3, limiter=limiter, on_start=on_start
            )
            return name, pid, trio.current_time()

        done: list[tuple[str, int, float]] = []
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for name in "ab":
                    nursery.start_soon(lambda n=name: _append(done, call(n)))
        assert sorted(name for name, _, _ in seen) == ["a", "b"]
        first, second = sorted(seen, key=lambda s: s[2])
        first_done = next(d for d in done if d[0] == first[0])
        # The pid is the worker's that ran the call, and the second call
        # reached its worker only once the first had returned.
        assert {(s[0], s[1]) for s in seen} == {(d[0], d[1]) for d in done}
        assert second[2] >= first_done[2]
        assert first[1] != os.getpid()

        def refuse(pid: int) -> None:
            raise LookupError(pid)

        record = tmp_path / "ran"
        with pytest.raises(LookupError):
            await ctx.run_sync(workers.record_start, str(record), on_start=refuse)
        assert not record.exists()
        assert ctx.statistics().idle_workers >= 1


async def _append(into: list[Any], awaitable: Any) -> None:
    into.append(await awaitable)
