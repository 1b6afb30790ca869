"""The worker cache behind a `WorkerContext`: take a worker, run, put it back.

A call takes the most recently used idle worker (or starts one), sends the job,
waits for the reply and puts the worker back.  Every way a worker can leave is
detected on the pipe, without polling:

* a reply: the job ran (its result or exception goes to the caller);
* ``BYE``: the worker left *without taking the job* (idle timeout, ``retire``), so
  the job is resubmitted to another worker and the race is invisible;
* ``RETIRE_FAILED``: ``retire`` raised after the previous job; this call fails with
  `BrokenWorkerError` (the job never ran);
* EOF: the worker died; this call alone fails with `BrokenWorkerError`.
"""

from __future__ import annotations

import atexit
import math
import pickle
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import outcome
import trio

from _trio_wf_worker._protocol import (
    BYE,
    ERROR,
    INIT_FAILED,
    OK,
    READY,
    RETIRE_FAILED,
    describe_callable,
    dumps,
)
from _trio_wf_worker._shm import SHM, Outgoing, encode_call

from . import _proc
from ._errors import BrokenWorkerError, WorkerExit
from ._worker import ProcessWorker, WorkerDied, WorkerGone

Launcher = Callable[[], Awaitable[_proc.Launched]]

# Pools that may hold workers, for the interpreter-exit shutdown.  Strong
# references: a replaced default context must still have its workers reaped.
_live_pools: set[WorkerPool] = set()


class WorkerPool:
    """Idle worker processes of one configuration, and the calls that use them."""

    def __init__(
        self,
        launch: Launcher,
        *,
        idle_timeout: float,
        init: Callable[[], object],
        retire: Callable[[], object],
        grace_period: float,
    ) -> None:
        self._launch = launch
        self._idle_timeout = idle_timeout
        self._grace_period = grace_period
        self._init_name = describe_callable(init)
        self._retire_name = describe_callable(retire)
        try:
            self._callables = dumps((init, retire))
        except Exception as exc:
            msg = (
                f"init ({self._init_name}) and retire ({self._retire_name}) must be "
                f"picklable to reach the workers: {exc}"
            )
            raise TypeError(msg) from exc
        self._idle: list[ProcessWorker] = []
        # Workers that said goodbye and are exiting by themselves; reaped lazily,
        # off the path of the call that noticed.
        self._leaving: list[ProcessWorker] = []
        self._lock = threading.Lock()
        self._calls = 0
        self._closed = False
        self._drained: trio.Event | None = None
        _live_pools.add(self)

    @property
    def closed(self) -> bool:
        return self._closed

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
    ) -> Any:
        if type(limiter) is not trio.CapacityLimiter:
            async with limiter:
                return await self._run_limited(fn, args, kill_on_cancel)
        # The same, one trip through the scheduler cheaper: entry is a cancel
        # point here, and waiting for the worker's reply is the schedule point.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await limiter.acquire()
        try:
            return await self._run_limited(fn, args, kill_on_cancel)
        finally:
            limiter.release()

    async def start_workers(self, count: int) -> None:
        """Start workers, in parallel, until ``count`` are idle; raise the first
        start-up failure, once the other starts are done."""
        if self._closed:
            await _refuse_closed()
        self._prune()
        failures: list[BrokenWorkerError] = []

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
        self, fn: Callable[..., Any], args: Sequence[Any], kill_on_cancel: bool
    ) -> Any:
        if self._closed:
            await _refuse_closed()
        try:
            job = _pickle_job(fn, args)
        except pickle.PicklingError:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise
        with self._lock:
            self._calls += 1
        try:
            while True:
                result = await self._attempt(fn, job, kill_on_cancel)
                if result is not None:
                    return result.unwrap()
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

    async def _attempt(
        self, fn: Any, job: Outgoing, kill_on_cancel: bool
    ) -> outcome.Outcome[Any] | None:
        """Run ``job`` once; return None if it must go to another worker.

        With ``kill_on_cancel=False`` nothing here is cancellable: the job's
        result is returned, and the cancellation is delivered at the caller's next
        checkpoint.  The rare paths run in a shielded scope; the common one (a
        cached worker, a reply) lets the worker's waits shield themselves only when
        a cancellation arrives, because a shielded scope on every call costs more
        than the rest of the parent's work.
        """
        shield = not kill_on_cancel
        try:
            worker = self._idle.pop()
        except IndexError:
            self._reap_leaving()
            with trio.CancelScope(shield=shield):
                worker = await self._start_worker()
        try:
            message = worker.arena.write(job)
        except OSError as exc:  # the arena could not grow: the worker is fine
            self._put_back(worker)
            msg = (
                f"could not copy the arguments of {describe_callable(fn)} to the "
                f"shared memory of worker process {worker.pid}: {exc}"
            )
            raise OSError(exc.errno, msg) from exc
        # No liveness probe: a worker that left or died while idle is found out
        # by the job itself (EPIPE, a goodbye or EOF instead of a reply), and a
        # job it never read is resubmitted.
        try:
            kind, payload = await worker.run(message, cancellable=kill_on_cancel)
        except WorkerGone:
            # Gone before reading the job (killed while idle, say): the job never
            # ran, so it goes to another worker.
            await worker.kill_and_reap()
            return None
        except WorkerDied:
            died = await worker.kill_and_reap()
            msg = f"{died.describe()} while running {describe_callable(fn)}"
            raise BrokenWorkerError(msg, died) from None
        except BaseException:
            # Cancelled (kill_on_cancel=True) or interrupted mid-message: the
            # worker's state is unknown, so it goes.
            await worker.kill_and_reap()
            raise
        base = kind & ~SHM
        if base == OK:
            # Unpickled before the worker goes back: the arena is reused.  (A
            # SystemExit from unpickling code is the parent's own, and goes up.)
            try:
                return outcome.Value(worker.arena.loads(kind, payload))
            except Exception as exc:
                return outcome.Error(_unpickling_error("result", fn, worker, exc))
            finally:
                self._put_back(worker)
        if base == ERROR:
            self._put_back(worker)
            try:
                error: BaseException = pickle.loads(payload)
            except Exception as exc:
                error = _unpickling_error("exception", fn, worker, exc)
            else:
                # What add_note (3.11+) appends to; exceptiongroup's traceback
                # patch prints it on 3.10 too.
                error.__notes__ = [  # type: ignore[attr-defined]
                    *getattr(error, "__notes__", ()),
                    f"(raised in trio_wf worker process {worker.pid})",
                ]
            return outcome.Error(error)
        with trio.CancelScope(shield=shield):
            await self._goodbye(worker, kind, payload)
        return None

    async def _goodbye(self, worker: ProcessWorker, kind: int, payload: Any) -> None:
        """Deal with a worker that answered a job by leaving, without running it."""
        if kind == BYE:
            self._leaving.append(worker)
            return
        died = await worker.reap_leaving()
        if kind == RETIRE_FAILED:
            msg = (
                f"retire callable {self._retire_name} raised in worker process "
                f"{worker.pid} after its previous job; this call was not run. "
                f"Remote traceback:\n{bytes(payload).decode(errors='replace')}"
            )
        else:  # pragma: no cover, protocol invariant
            msg = f"worker process {worker.pid} sent unexpected message kind {kind}"
        raise BrokenWorkerError(msg, died)

    async def _start_worker(self) -> ProcessWorker:
        try:
            worker, kind, payload = await ProcessWorker.start(
                self._launch, self._idle_timeout, self._callables
            )
        except WorkerDied as exc:
            died = exc.args[0]
            msg = f"{died.describe()} while starting up; see its stderr"
            raise BrokenWorkerError(msg, died) from None
        if kind == READY:
            return worker
        died = await worker.reap_leaving()
        if kind == INIT_FAILED:
            msg = (
                f"init callable {self._init_name} raised in new worker process "
                f"{worker.pid}; the call was not run"
            )
            try:
                cause: BaseException | None = pickle.loads(payload)
            except Exception as exc:
                cause = exc
            raise BrokenWorkerError(msg, died) from cause
        msg = f"new worker process {worker.pid} sent unexpected message kind {kind}"
        raise BrokenWorkerError(msg, died)  # pragma: no cover, protocol invariant

    def _put_back(self, worker: ProcessWorker) -> None:
        if self._closed:
            worker.shutdown()
            self._leaving.append(worker)
        else:
            self._idle.append(worker)

    def _prune(self) -> None:
        """Move idle workers that left (timed out, retired, died) out of the cache."""
        for worker in [w for w in self._idle if w.has_news()]:
            self._idle.remove(worker)
            self._leaving.append(worker)
        self._reap_leaving()

    def _reap_leaving(self) -> None:
        for worker in [w for w in self._leaving if w.process.poll() is not None]:
            self._leaving.remove(worker)
            worker.release()

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
            workers, died = self._take_all()
            with trio.move_on_after(self._grace_period):
                for worker in workers:
                    await worker.process.wait()
            killed = _kill_remaining(workers)
            exits = [await worker.reap() for worker in workers]
        _raise_if_unclean(exits, died, killed, self._grace_period)

    def shutdown_blocking(self) -> None:
        """Close without trio and without waiting for running calls.

        Used at interpreter exit and when the default context is replaced: idle
        workers are shut down within the grace period; workers still running a
        call exit after it, and stay registered for the exit hook.
        """
        self._closed = True
        if not self._calls:
            _live_pools.discard(self)
        workers, died = self._take_all()
        deadline = time.monotonic() + self._grace_period
        for worker in workers:
            worker.process.wait_blocking(max(deadline - time.monotonic(), 0))
        killed = _kill_remaining(workers)
        exits = []
        for worker in workers:
            code = worker.process.wait_blocking(math.inf)
            worker.release()
            exits.append(WorkerExit(worker.pid, code))
        _raise_if_unclean(exits, died, killed, self._grace_period)

    def _take_all(self) -> tuple[list[ProcessWorker], set[int]]:
        """Close every worker's job pipe; also return the pids of the dead ones.

        An idle worker whose pipe already reads EOF died on its own (killed from
        outside, say by a SIGTERM to the whole process group): a call would have
        pruned it silently, so its exit status is no shutdown failure
        (trio-parallel#348).
        """
        died = {worker.pid for worker in self._idle if worker.died_while_idle()}
        workers, self._idle, self._leaving = self._idle + self._leaving, [], []
        for worker in workers:
            worker.shutdown()
        return workers, died


async def _refuse_closed() -> NoReturn:
    await trio.lowlevel.cancel_shielded_checkpoint()
    msg = "this worker context is closed"
    raise trio.ClosedResourceError(msg)


def _kill_remaining(workers: list[ProcessWorker]) -> set[int]:
    killed = set()
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
            killed.add(worker.pid)
    return killed


def _raise_if_unclean(
    exits: list[WorkerExit], excused: set[int], killed: set[int], grace: float
) -> None:
    # Workers we had to kill are reported, and so are bad exit statuses, except
    # those of workers that died before the shutdown began (a call would have
    # pruned them) or were terminated by SIGTERM: asked to stop, typically with the
    # whole process group by a service manager, which is no failure of ours
    # (trio-parallel#348).
    bad = [
        e
        for e in exits
        if e.pid in killed
        or (e.exitcode not in (0, -signal.SIGTERM) and e.pid not in excused)
    ]
    if not bad:
        return
    details = "; ".join(
        f"worker process {e.pid} was killed after the {grace}s grace period"
        if e.pid in killed
        else e.describe()
        for e in bad
    )
    msg = (
        f"graceful shutdown failed: {len(bad) - len(killed)} worker(s) exited "
        f"uncleanly and {len(killed)} were killed: {details}"
    )
    raise BrokenWorkerError(msg, *bad)


def _pickle_job(fn: Any, args: Sequence[Any]) -> Outgoing:
    try:
        return encode_call(fn, tuple(args))
    except Exception as exc:
        msg = (
            f"could not pickle the call to {describe_callable(fn)} (the function or "
            f"its arguments) to send it to a worker: {type(exc).__name__}: {exc}"
        )
        raise pickle.PicklingError(msg) from exc


def _unpickling_error(
    what: str, fn: Any, worker: ProcessWorker, exc: Exception
) -> pickle.UnpicklingError:
    msg = (
        f"could not unpickle the {what} of {describe_callable(fn)} sent by worker "
        f"process {worker.pid}: {type(exc).__name__}: {exc}"
    )
    error = pickle.UnpicklingError(msg)
    error.__cause__ = exc
    return error


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
