"""Collaboration tests of the worker pool, against fake workers (no process).

`WorkerPool` sees its workers only through `trio_wf._abc.AbstractWorker`, so its
logic (the cache, resubmission after a goodbye, draining on close, refusing calls
once closed, the limiter, pruning, the shutdown report) is tested here with the
fakes of ``tests/fake_workers.py``, which also check that the pool calls them with
KeyboardInterrupt protection on.  Time is virtual (``autojump_clock``) where it
matters.  The real workers' side of each story is in the contract tests
(``test_context.py``, ``test_faults.py``).
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import outcome
import pytest
import trio
import trio.testing

from trio_wf import BrokenWorkerError, WorkerExit
from trio_wf._jobs import encode_job
from trio_wf._pool import WorkerPool, _live_pools

from .fake_workers import Died, FakeFactory, FakeWorker, Job, encode

Pool = WorkerPool[Job]


@asynccontextmanager
async def open_pool(
    factory: FakeFactory, encoding: Callable[..., Job] = encode
) -> AsyncIterator[Pool]:
    """A pool of fake workers, closed on exit; then none may be left running."""
    pool = WorkerPool(factory, encoding, grace_period=10.0)
    try:
        yield pool
    finally:
        await pool.aclose()
    factory.assert_all_reaped()


async def call(
    pool: Pool,
    fn: Callable[..., Any],
    *args: Any,
    kill_on_cancel: bool = False,
    limiter: Any = None,
) -> Any:
    """``pool.run_sync``, with a limiter of its own unless given one."""
    if limiter is None:
        limiter = trio.CapacityLimiter(10)
    return await pool.run_sync(fn, args, kill_on_cancel=kill_on_cancel, limiter=limiter)


# Jobs that block run with kill_on_cancel=True, so that a failing test cancels
# them instead of hanging.


async def wait_then(event: trio.Event, value: object) -> object:
    await event.wait()
    return value


async def wait_then_die(event: trio.Event) -> None:
    await event.wait()
    raise Died


# The cache and resubmission ----------------------------------------------------


async def test_calls_reuse_the_idle_worker() -> None:
    """Sequential calls run on one worker, which waits in the cache in between."""
    factory = FakeFactory()
    async with open_pool(factory) as pool:
        assert pool.statistics() == (0, 0)
        assert [await call(pool, int, str(i)) for i in range(3)] == [0, 1, 2]
        [worker] = factory.workers
        assert worker.jobs == 3
        assert pool.statistics() == (1, 0)


async def test_a_job_refused_by_a_leaving_worker_runs_once_on_another() -> None:
    """A worker that says goodbye instead of taking the job (its idle timeout or
    retire, just before) costs nothing: the job runs once, on a new worker, and
    the leaving worker is reaped."""
    factory = FakeFactory()
    runs: list[str] = []
    async with open_pool(factory) as pool:
        await call(pool, runs.append, "first")
        [leaving] = factory.workers
        leaving.goodbye = True
        await call(pool, runs.append, "second")
        assert runs == ["first", "second"]
        fresh = factory.workers[1]
        assert (leaving.jobs, fresh.jobs) == (1, 1)
        assert pool.statistics() == (1, 0)
        assert leaving.reaped == 1


async def test_resubmission_stays_cancellable(autojump_clock: Any) -> None:
    """If every worker leaves, the call keeps resubmitting, but a cancel ends it
    at the next resubmission even though the starts themselves are shielded."""
    factory = FakeFactory()
    factory.goodbye = True
    factory.start_time = 1.0
    limiter = trio.CapacityLimiter(1)
    async with open_pool(factory) as pool:
        with trio.move_on_after(3.5) as scope:
            await call(pool, pytest.fail, "never runs", limiter=limiter)
        assert scope.cancelled_caught
        # The fourth start was under way at the deadline: it ends, the worker says
        # goodbye, and the call checks for the cancel before a fifth.
        assert trio.current_time() == 4.0
        assert len(factory.workers) == 4
        assert limiter.borrowed_tokens == 0
        assert pool.statistics() == (0, 0)


async def test_an_idle_worker_that_died_is_pruned_and_replaced() -> None:
    """A worker that died while idle leaves the cache silently, is reaped, and
    the next call starts a new one; closing does not report its death."""
    factory = FakeFactory()
    async with open_pool(factory) as pool:
        await call(pool, int)
        [victim] = factory.workers
        victim.die_while_idle()
        assert pool.statistics() == (0, 0)
        assert victim.reaped == 1
        await call(pool, int)
        assert len(factory.workers) == 2


async def test_a_worker_dying_mid_job_fails_only_its_call() -> None:
    """The call whose worker died gets BrokenWorkerError; a call running beside
    it returns; the dead worker never goes back to the cache."""
    factory = FakeFactory()
    release = trio.Event()
    outcomes: dict[str, outcome.Outcome[Any]] = {}

    async def run(name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        killable = functools.partial(call, pool, kill_on_cancel=True)
        outcomes[name] = await outcome.acapture(killable, fn, release, *args)

    async with open_pool(factory) as pool:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run, "dies", wait_then_die)
                nursery.start_soon(run, "survives", wait_then, "fine")
                await trio.testing.wait_all_tasks_blocked()
                assert pool.statistics() == (0, 2)
                release.set()
        assert outcomes["survives"].unwrap() == "fine"
        with pytest.raises(BrokenWorkerError) as info:
            outcomes["dies"].unwrap()
        [dead] = [w for w in factory.workers if w.exitcode is not None]
        assert info.value.workers == (WorkerExit(dead.pid, dead.exitcode),)
        assert dead.reaped == 1
        assert pool.statistics() == (1, 0)
        await call(pool, int)
        assert len(factory.workers) == 2


# Starting workers ----------------------------------------------------------------


@pytest.mark.parametrize("kill_on_cancel", [False, True])
async def test_a_start_is_abandoned_on_cancel_only_with_kill_on_cancel(
    autojump_clock: Any, kill_on_cancel: bool
) -> None:
    """Without kill_on_cancel, a cancel during a worker's start neither abandons
    it nor the job: the call returns its result (the cancel comes at the caller's
    next checkpoint).  With it, the call is cancelled and no worker is kept."""
    factory = FakeFactory()
    factory.start_time = 2.0
    result = None
    async with open_pool(factory) as pool:
        with trio.move_on_after(1) as scope:
            result = await call(pool, int, "5", kill_on_cancel=kill_on_cancel)
        if kill_on_cancel:
            assert scope.cancelled_caught
            assert result is None
            assert trio.current_time() == 1.0
            assert pool.statistics() == (0, 0)
            assert factory.workers == []
        else:
            assert not scope.cancelled_caught
            assert result == 5
            assert trio.current_time() == 2.0
            assert pool.statistics() == (1, 0)


async def test_start_workers_keeps_the_started_and_raises_the_first_failure() -> None:
    """start_workers starts the missing workers at once; a failed start is raised
    after the others are done, and they stay in the cache."""
    factory = FakeFactory()
    factory.failing = {1}
    async with open_pool(factory) as pool:
        with pytest.raises(BrokenWorkerError, match="process 1001"):
            await pool.start_workers(3)
        assert pool.statistics() == (2, 0)
        await pool.start_workers(2)  # enough are idle
        assert len(factory.workers) == 2


# Closing -------------------------------------------------------------------------


async def test_close_waits_for_running_calls_and_refuses_new_ones() -> None:
    """Closing waits for the calls in progress (and refuses new ones meanwhile),
    then shuts every worker down: the idle ones and those the calls give back."""
    factory = FakeFactory()
    release = trio.Event()
    record: list[str] = []
    pool = WorkerPool(factory, encode, grace_period=10.0)

    async def blocked_call(name: str) -> None:
        result = await call(pool, wait_then, release, name, kill_on_cancel=True)
        record.append(f"{result} returned")

    async def close() -> None:
        await pool.aclose()
        record.append("closed")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_call, "a")
            nursery.start_soon(blocked_call, "b")
            await trio.testing.wait_all_tasks_blocked()
            await call(pool, int)  # a third worker, idle
            assert pool.statistics() == (1, 2)
            nursery.start_soon(close)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.closed
            assert record == []
            with pytest.raises(trio.ClosedResourceError):
                await call(pool, int)
            release.set()
    assert sorted(record[:2]) == ["a returned", "b returned"]
    assert record[2:] == ["closed"]
    assert all(w.shut_down and w.exitcode == 0 for w in factory.workers)
    assert len(factory.workers) == 3
    factory.assert_all_reaped()


async def test_close_waits_for_workers_being_started(autojump_clock: Any) -> None:
    """Workers that start_workers is still starting when the pool closes are shut
    down once started, not left behind."""
    factory = FakeFactory()
    factory.start_time = 1.0
    async with trio.open_nursery() as nursery:
        pool = WorkerPool(factory, encode, grace_period=10.0)
        nursery.start_soon(pool.start_workers, 2)
        await trio.testing.wait_all_tasks_blocked()
        await pool.aclose()
    assert trio.current_time() == 1.0
    assert len(factory.workers) == 2
    factory.assert_all_reaped()


async def test_a_closed_pool_refuses_calls_without_taking_a_worker_or_a_token() -> None:
    """Calls and start_workers on a closed pool raise ClosedResourceError, and
    neither start a worker nor keep a limiter token."""
    factory = FakeFactory()
    limiter = trio.CapacityLimiter(1)
    async with open_pool(factory) as pool:
        pass
    with pytest.raises(trio.ClosedResourceError, match="worker context is closed"):
        await call(pool, int, limiter=limiter)
    with pytest.raises(trio.ClosedResourceError):
        await pool.start_workers(1)
    assert factory.workers == []
    assert limiter.borrowed_tokens == 0


async def test_a_worker_that_will_not_exit_is_killed_after_the_grace_period(
    autojump_clock: Any,
) -> None:
    """Closing gives the workers grace_period seconds, even in a cancelled scope,
    then kills the rest and names them in a BrokenWorkerError."""
    factory = FakeFactory()
    pool = WorkerPool(factory, encode, grace_period=5)
    await call(pool, int)
    [stubborn] = factory.workers
    stubborn.stubborn = True
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(
            BrokenWorkerError, match="killed after the 5s grace"
        ) as info:
            await pool.aclose()
    assert trio.current_time() == 5.0
    assert info.value.workers == (WorkerExit(stubborn.pid, -9),)
    factory.assert_all_reaped()


async def test_close_reports_unclean_exits_but_not_deaths_before_it() -> None:
    """A worker exiting with an error status at close is reported; one that died
    while idle before the close (a signal from outside) is not."""
    factory = FakeFactory()
    pool = WorkerPool(factory, encode, grace_period=10.0)
    await pool.start_workers(2)
    dead, unclean = factory.workers
    dead.die_while_idle(-9)
    unclean.exit_on_shutdown = 1
    with pytest.raises(
        BrokenWorkerError, match=r"1 worker\(s\) exited uncleanly"
    ) as info:
        await pool.aclose()
    assert info.value.workers == (WorkerExit(unclean.pid, 1),)
    factory.assert_all_reaped()


async def test_close_does_not_report_a_worker_a_call_found_dead() -> None:
    """A worker that died while idle and was found dead by a call (which then
    ran on another) is not reported at close, even when its exit status only
    arrives then, as a fork server's child's may."""
    factory = FakeFactory()
    pool = WorkerPool(factory, encode, grace_period=10.0)
    await call(pool, int)
    [victim] = factory.workers
    victim.die_while_idle(-9)
    victim.late_status = True
    assert await call(pool, int, "7") == 7
    assert len(factory.workers) == 2
    await pool.aclose()
    factory.assert_all_reaped()


async def test_shutdown_without_trio_leaves_busy_workers_to_the_exit_hook() -> None:
    """shutdown_blocking (interpreter exit, a replaced default context) stops the
    idle workers at once; a call still running keeps the pool registered, so the
    exit hook stops its worker once the call has given it back."""
    factory = FakeFactory()
    release = trio.Event()
    pool = WorkerPool(factory, encode, grace_period=10.0)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(
                    call, pool, wait_then, release, None, kill_on_cancel=True
                )
            )
            await trio.testing.wait_all_tasks_blocked()
            await call(pool, int)
            busy, idle = factory.workers
            for worker in factory.workers:
                worker.blocking_shutdown = True
            pool.shutdown_blocking()
            assert idle.reaped == 1
            assert not busy.shut_down
            assert pool in _live_pools
            release.set()
    assert busy.shut_down
    assert busy.reaped == 0
    pool.shutdown_blocking()  # as the exit hook does
    assert pool not in _live_pools
    factory.assert_all_reaped()


# The limiter ---------------------------------------------------------------------


class CountingLimiter:
    """Any async context manager can be a limiter; this one counts its holders."""

    def __init__(self) -> None:
        self.holders = 0

    async def __aenter__(self) -> None:
        await trio.lowlevel.checkpoint()
        self.holders += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self.holders -= 1


def encode_picklable(fn: Callable[..., Any], args: Sequence[Any]) -> Job:
    """The fakes' encoding, failing where the real one would."""
    encode_job(fn, args)
    return encode(fn, args)


async def _value(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    assert await call(pool, int, "7", limiter=limiter) == 7


async def _error(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        await call(pool, int, "seven", limiter=limiter)


async def _died(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    event = trio.Event()
    event.set()
    with pytest.raises(BrokenWorkerError):
        await call(pool, wait_then_die, event, limiter=limiter)


async def _resubmitted(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    factory.workers[0].goodbye = True
    assert await call(pool, int, "7", limiter=limiter) == 7


async def _cancelled(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await call(pool, trio.sleep_forever, kill_on_cancel=True, limiter=limiter)
    assert scope.cancelled_caught


async def _killed_while_running(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(
                    call, pool, trio.sleep_forever, kill_on_cancel=True, limiter=limiter
                )
            )
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics() == (0, 1)
            nursery.cancel_scope.cancel()
    assert factory.workers[0].exitcode == -9


async def _unpicklable(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    with pytest.raises(pickle.PicklingError, match="could not pickle the call"):
        await call(pool, id, threading.Lock(), limiter=limiter)


async def _start_failed(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    factory.workers[0].goodbye = True
    factory.failing = {1}
    with pytest.raises(BrokenWorkerError, match="init"):
        await call(pool, int, limiter=limiter)


async def _closed(pool: Pool, factory: FakeFactory, limiter: Any) -> None:
    await pool.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await call(pool, int, limiter=limiter)


PATHS = [
    _value,
    _error,
    _died,
    _resubmitted,
    _cancelled,
    _killed_while_running,
    _unpicklable,
    _start_failed,
    _closed,
]


@pytest.mark.parametrize("limiter_type", [trio.CapacityLimiter, CountingLimiter])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__.strip("_"))
async def test_the_limiter_is_released_on_every_path(
    path: Callable[[Pool, FakeFactory, Any], Awaitable[None]], limiter_type: type
) -> None:
    """Whatever becomes of a call, its limiter token goes back and the pool no
    longer counts it; the idle worker it found stays usable unless it died."""
    factory = FakeFactory()
    limiter = (
        trio.CapacityLimiter(1)
        if limiter_type is trio.CapacityLimiter
        else (CountingLimiter())
    )
    async with open_pool(factory, encode_picklable) as pool:
        await call(pool, int)  # one idle worker
        await path(pool, factory, limiter)
        if isinstance(limiter, trio.CapacityLimiter):
            assert limiter.borrowed_tokens == 0
        else:
            assert limiter.holders == 0
        assert pool.statistics()[1] == 0


async def test_the_fakes_catch_bookkeeping_without_ki_protection() -> None:
    """The fakes' KI protection checks can fail: unprotected calls trip them."""
    worker = FakeWorker(1)
    with pytest.raises(AssertionError, match="without KI protection"):
        await worker.run(int, encode(int, ()), kill_on_cancel=False)
    with pytest.raises(AssertionError, match="without KI protection"):
        worker.has_left()
    with pytest.raises(AssertionError, match="without KI protection"):
        await FakeFactory()()


# on_start ----------------------------------------------------------------------


async def test_on_start_names_each_worker_the_job_is_offered() -> None:
    """on_start is told the worker before the job goes to it: again, with the
    new worker, when the first left instead of taking the job."""
    factory = FakeFactory()
    runs: list[str] = []
    told: list[int] = []
    limiter = trio.CapacityLimiter(1)
    async with open_pool(factory) as pool:
        await pool.run_sync(
            runs.append,
            ("first",),
            kill_on_cancel=False,
            limiter=limiter,
            on_start=told.append,
        )
        [leaving] = factory.workers
        leaving.goodbye = True
        await pool.run_sync(
            runs.append,
            ("second",),
            kill_on_cancel=False,
            limiter=limiter,
            on_start=told.append,
        )
        fresh = factory.workers[1]
        assert told == [leaving.pid, leaving.pid, fresh.pid]
        assert runs == ["first", "second"]


async def test_what_on_start_raises_keeps_the_job_and_the_worker() -> None:
    """An error in on_start is the call's: the job is not sent, the worker goes
    back to the cache, the limiter token is released."""
    factory = FakeFactory()
    limiter = trio.CapacityLimiter(1)

    def refuse(pid: int) -> None:
        raise LookupError(pid)

    async with open_pool(factory) as pool:
        with pytest.raises(LookupError):
            await pool.run_sync(
                pytest.fail,
                ("never runs",),
                kill_on_cancel=False,
                limiter=limiter,
                on_start=refuse,
            )
        [worker] = factory.workers
        assert worker.jobs == 0
        assert pool.statistics() == (1, 0)
        assert limiter.borrowed_tokens == 0
