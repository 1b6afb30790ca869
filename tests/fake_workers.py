"""Fake workers behind the `AbstractWorker` seam, for the pool's collaboration tests.

A `FakeWorker` runs its jobs in this process: a job is ``(fn, args)``, and ``fn``
may be async (to block on an event, or take virtual time), or raise `Died` to
make its worker die with it.  Every fake checks that the pool calls it with
:exc:`KeyboardInterrupt` protection on, and that it is never used after it left
or reaped twice; the factory records every worker it started.
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import Callable, Sequence
from typing import Any

import outcome
import trio

from trio_wf import BrokenWorkerError, WorkerExit
from trio_wf._abc import RESUBMIT, AbstractWorker, Resubmit

Job = tuple[Callable[..., Any], tuple[Any, ...]]


def encode(fn: Callable[..., Any], args: Sequence[Any]) -> Job:
    """The fakes' job encoding: the call itself."""
    return fn, tuple(args)


class Died(Exception):
    """Raised by a job to kill the fake worker running it."""


def assert_protected() -> None:
    assert trio.lowlevel.currently_ki_protected(), (
        "pool bookkeeping without KI protection"
    )


class FakeWorker(AbstractWorker[Job]):
    """A worker that runs its jobs in this process, as the pool would see it."""

    def __init__(self, pid: int, *, goodbye: bool = False) -> None:
        self.pid = pid
        self.jobs = 0  # jobs run to an outcome
        self.goodbye = goodbye  # leaves instead of taking its next job
        self.stubborn = False  # ignores shutdown (exits only when killed)
        self.exit_on_shutdown = 0  # its exit status when shut down
        self.shut_down = False
        self.exitcode: int | None = None
        self.idle_death = False
        # Its exit status comes in only when waited for (a fork server's
        # child, whose status the server reports later): not in reap_if_exited.
        self.late_status = False
        self.reaped = 0
        # Set outside KI protection only by WorkerPool.shutdown_blocking, which
        # runs without trio (at interpreter exit) and must stay interruptible.
        self.blocking_shutdown = False
        self._exited = trio.Event()

    def _exit(self, code: int) -> None:
        if self.exitcode is None:
            self.exitcode = code
            self._exited.set()

    def die_while_idle(self, code: int = -signal.SIGTERM) -> None:
        """What a signal from outside does to an idle worker."""
        self.idle_death = True
        self._exit(code)

    async def run(
        self, fn: Callable[..., object], job: Job, *, kill_on_cancel: bool
    ) -> outcome.Outcome[Any] | Resubmit:
        assert_protected()
        if self.idle_death:
            return RESUBMIT  # the job found it dead: never read, so never run
        assert self.exitcode is None, f"a job for worker {self.pid}, which left"
        assert not self.shut_down, f"a job for worker {self.pid}, which was shut down"
        job_fn, args = job
        try:
            # A real worker's exchange shields itself when it must not be cut.
            with trio.CancelScope(shield=not kill_on_cancel):
                await trio.lowlevel.checkpoint()
                if self.goodbye:
                    self._exit(0)
                    return RESUBMIT
                result = job_fn(*args)
                if inspect.isawaitable(result):
                    result = await result
        except Died:
            self._exit(-signal.SIGKILL)
            died = await self.reap()
            msg = f"{died.describe()} while running {fn.__name__}"
            raise BrokenWorkerError(msg, died) from None
        except trio.Cancelled:
            self.kill()
            await self.reap()
            raise
        except Exception as exc:
            result_outcome: outcome.Outcome[Any] = outcome.Error(exc)
        else:
            result_outcome = outcome.Value(result)
        self.jobs += 1
        return result_outcome

    def has_left(self) -> bool:
        assert_protected()
        return self.exitcode is not None

    def died_while_idle(self) -> bool:
        self._check_shutdown_protection()
        return self.idle_death

    def shutdown(self) -> None:
        self._check_shutdown_protection()
        self.shut_down = True
        if not self.stubborn:
            self._exit(self.exit_on_shutdown)

    def reap_if_exited(self) -> bool:
        assert_protected()
        if self.exitcode is None or self.late_status:
            return False
        self._release()
        return True

    async def wait(self) -> None:
        assert_protected()
        await self._exited.wait()

    def wait_blocking(self, timeout: float) -> None:
        # Nothing to wait for: a fake exits at once, or only when killed.
        assert self.blocking_shutdown

    def kill(self) -> bool:
        self._check_shutdown_protection()
        if self.exitcode is not None:
            return False
        self._exit(-signal.SIGKILL)
        return True

    async def reap(self) -> WorkerExit:
        assert_protected()
        with trio.CancelScope(shield=True):
            await self._exited.wait()
        self._release()
        return WorkerExit(self.pid, self.exitcode)

    def reap_blocking(self) -> WorkerExit:
        assert self.blocking_shutdown
        assert self.exitcode is not None, "reap_blocking would wait forever"
        self._release()
        return WorkerExit(self.pid, self.exitcode)

    def _release(self) -> None:
        self.reaped += 1
        assert self.reaped == 1, f"worker {self.pid} reaped {self.reaped} times"

    def _check_shutdown_protection(self) -> None:
        if not self.blocking_shutdown:
            assert_protected()


class FakeFactory:
    """Starts fake workers for a pool, recording each one.

    Attributes:
        workers: every worker started, in order; pids count up from 1000.
        start_time: seconds (of trio time) a start takes.
        failing: indices of the starts that fail with `BrokenWorkerError`.
        goodbye: whether new workers leave instead of taking their first job.
    """

    def __init__(self) -> None:
        self.workers: list[FakeWorker] = []
        self.start_time = 0.0
        self.failing: set[int] = set()
        self.goodbye = False
        self._starts = 0

    async def __call__(self) -> FakeWorker:
        assert_protected()
        index = self._starts
        self._starts += 1
        assert index < 100, "a hundred workers started: resubmitting forever?"
        await trio.sleep(self.start_time)  # cancelled: nothing started yet
        if index in self.failing:
            msg = f"init callable raised in new worker process {1000 + index}"
            raise BrokenWorkerError(msg, WorkerExit(1000 + index, 1))
        worker = FakeWorker(1000 + index, goodbye=self.goodbye)
        self.workers.append(worker)
        return worker

    def assert_all_reaped(self) -> None:
        """Every worker started has exited and was released."""
        for worker in self.workers:
            assert worker.exitcode is not None, f"worker {worker.pid} still runs"
            assert worker.reaped, f"worker {worker.pid} never reaped"
