"""The worker cache behind a `WorkerContext`: take a worker, run, put it back.

A call encodes its job once, takes the most recently used idle worker (or starts
one) and runs the job on it.  The pool sees workers only through
`AbstractWorker`: a job comes back as an outcome (the worker goes back to the
cache), as `RESUBMIT` (the worker left before taking it: another worker gets
it), or as an exception (the worker is dead and reaped already).  Workers that
leave by themselves are reaped lazily, off the path of the call that noticed.

The bookkeeping runs with :exc:`KeyboardInterrupt` protection on: a Ctrl+C lands
at an ``await``, never between a worker leaving one list and entering another,
so no worker escapes the shutdown.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NoReturn

import trio

from . import _proc
from ._abc import RESUBMIT, AbstractWorker, JobT
from ._errors import BrokenWorkerError
from ._shutdown import stop_workers, stop_workers_blocking

# Pools that may hold workers, for the interpreter-exit shutdown.  Strong
# references: a replaced default context must still have its workers reaped.
_live_pools: set[WorkerPool[Any]] = set()


class WorkerPool(Generic[JobT]):
    """Idle workers of one configuration, and the calls that use them.

    Args:
        start_worker: starts a worker and returns it ready for a job (see
            `AbstractWorker`).
        encode: makes the job of a call, ``encode(fn, args)``, once per call;
            whatever it raises goes to the caller before any worker is involved.
        grace_period: seconds the workers get to exit when the pool closes.
    """

    def __init__(
        self,
        start_worker: Callable[[], Awaitable[AbstractWorker[JobT]]],
        encode: Callable[[Callable[..., Any], Sequence[Any]], JobT],
        *,
        grace_period: float,
    ) -> None:
        self._start_worker = start_worker
        self._encode = encode
        self._grace_period = grace_period
        self._idle: list[AbstractWorker[JobT]] = []
        # Workers that said goodbye, died while idle, or were shut down, and
        # are exiting by themselves: reaped once they have.  Each with whether
        # it died while idle (its exit status is then no failure of ours).
        self._leaving: list[tuple[AbstractWorker[JobT], bool]] = []
        self._lock = threading.Lock()
        self._calls = 0
        self._closed = False
        self._drained: trio.Event | None = None
        _live_pools.add(self)

    @property
    def closed(self) -> bool:
        return self._closed

    @trio.lowlevel.enable_ki_protection
    def statistics(self) -> tuple[int, int]:
        """Return ``(idle workers alive, calls in progress)``."""
        self._prune()
        return len(self._idle), self._calls

    @trio.lowlevel.enable_ki_protection
    async def run_sync(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        *,
        kill_on_cancel: bool,
        limiter: Any,
        on_start: Callable[[int], object] | None = None,
    ) -> Any:
        if type(limiter) is not trio.CapacityLimiter:
            async with limiter:
                return await self._run_limited(fn, args, kill_on_cancel, on_start)
        # The same, one trip through the scheduler cheaper: entry is a cancel
        # point here, and waiting for the worker's reply is the schedule point.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await limiter.acquire()
        try:
            return await self._run_limited(fn, args, kill_on_cancel, on_start)
        finally:
            limiter.release()

    @trio.lowlevel.enable_ki_protection
    async def start_workers(self, count: int) -> None:
        """Start workers, in parallel, until ``count`` are idle; raise the first
        start-up failure, once the other starts are done."""
        if self._closed:
            await _refuse_closed()
        self._prune()
        failures: list[BrokenWorkerError] = []

        @trio.lowlevel.enable_ki_protection  # a task of its own: not inherited
        async def start_one() -> None:
            try:
                self._put_back(await self._start_worker())
            except BrokenWorkerError as exc:
                failures.append(exc)

        with self._lock:
            self._calls += 1  # so that aclose() waits for these workers
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(count - len(self._idle)):
                    nursery.start_soon(start_one)
        finally:
            self._call_done()
        if failures:
            raise failures[0]

    async def _run_limited(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kill_on_cancel: bool,
        on_start: Callable[[int], object] | None = None,
    ) -> Any:
        if self._closed:
            await _refuse_closed()
        try:
            job = self._encode(fn, args)
        except Exception:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise
        with self._lock:
            self._calls += 1
        try:
            while True:
                try:
                    worker = self._idle.pop()
                except IndexError:
                    self._reap_leaving()
                    # With kill_on_cancel=False nothing here is cancellable: the
                    # job runs, and the cancellation is delivered afterwards.
                    with trio.CancelScope(shield=not kill_on_cancel):
                        worker = await self._start_worker()
                if on_start is not None:
                    try:
                        on_start(worker.pid)
                    except BaseException:
                        self._put_back(worker)
                        raise
                result = await worker.run(fn, job, kill_on_cancel=kill_on_cancel)
                if result is not RESUBMIT:
                    self._put_back(worker)
                    return result.unwrap()
                self._leaving.append((worker, worker.died_while_idle()))
                # Resubmitting: stay cancellable even while KI-protected.
                await trio.lowlevel.checkpoint_if_cancelled()
        finally:
            self._call_done()

    def _call_done(self) -> None:
        with self._lock:
            self._calls -= 1
            drained = self._closed and not self._calls
        if drained and self._drained is not None:
            self._drained.set()

    def _put_back(self, worker: AbstractWorker[JobT]) -> None:
        if self._closed:
            worker.shutdown()
            self._leaving.append((worker, False))
        else:
            self._idle.append(worker)

    def _prune(self) -> None:
        """Move idle workers that left (timed out, retired, died) out of the cache."""
        for worker in [w for w in self._idle if w.has_left()]:
            self._idle.remove(worker)
            self._leaving.append((worker, worker.died_while_idle()))
        self._reap_leaving()

    def _reap_leaving(self) -> None:
        self._leaving = [left for left in self._leaving if not left[0].reap_if_exited()]

    @trio.lowlevel.enable_ki_protection
    async def aclose(self) -> None:
        """Wait for running calls, then shut the workers down (shielded)."""
        self._closed = True
        _live_pools.discard(self)
        with trio.CancelScope(shield=True):
            with self._lock:
                if self._calls:
                    self._drained = trio.Event()
            if self._drained is not None:
                await self._drained.wait()
            await stop_workers(*self._take_all(), self._grace_period)

    def shutdown_blocking(self) -> None:
        """Close without trio and without waiting for running calls.

        Used at interpreter exit and when the default context is replaced: idle
        workers are shut down within the grace period; workers still running a
        call exit after it, and stay registered for the exit hook.
        """
        self._closed = True
        if not self._calls:
            _live_pools.discard(self)
        stop_workers_blocking(*self._take_all(), self._grace_period)

    def _take_all(self) -> tuple[list[AbstractWorker[JobT]], list[bool]]:
        """Shut every worker down; also say which ones died while idle."""
        excused = [worker.died_while_idle() for worker in self._idle]
        excused += [died for _, died in self._leaving]
        workers = self._idle + [worker for worker, _ in self._leaving]
        self._idle, self._leaving = [], []
        for worker in workers:
            worker.shutdown()
        return workers, excused


async def _refuse_closed() -> NoReturn:
    await trio.lowlevel.cancel_shielded_checkpoint()
    msg = "this worker context is closed"
    raise trio.ClosedResourceError(msg)


@atexit.register
def _shutdown_at_exit() -> None:
    # Our own hook, not multiprocessing's: workers get EOF, exit 0 and run their
    # own atexit handlers; stragglers are killed after their grace period.
    for pool in list(_live_pools):
        try:
            pool.shutdown_blocking()
        except BrokenWorkerError as exc:  # pragma: no cover, reported, not raised
            import sys

            sys.stderr.write(f"trio_wf: at exit: {exc}\n")
    _proc.close_forkserver()
