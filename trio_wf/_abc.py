"""The seams: between callers and execution backends, and between the worker
pool and its workers.

`SupportsRunSync` is what callers (the workflow engine, libraries) need of a
backend.  `AbstractWorker` is what `WorkerPool` needs of a worker: the pool's
logic (the cache, resubmission, draining, refusing calls once closed) is tested
against fakes of it, without starting a process.
"""

from __future__ import annotations

import enum
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Protocol,
    TypeVar,
    runtime_checkable,
)

import trio

if TYPE_CHECKING:
    import outcome

    from ._errors import WorkerExit

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")
JobT = TypeVar("JobT")


@runtime_checkable
class SupportsRunSync(Protocol):
    """What any execution backend offers: `WorkerContext` is one.

    A backend runs ``sync_fn(*args)`` somewhere (worker processes, threads, the
    current thread, a cluster) with the semantics of :func:`trio_wf.run_sync` and
    reports its state with ``statistics()``.  Backends are opened and closed by
    an ``open_*`` async context manager; code that receives one (the workflow
    engine, libraries) only calls these two methods, so it works with any of them.
    """

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
    ) -> R:
        """Run ``sync_fn(*args)`` and return or raise its outcome."""
        ...

    def statistics(self) -> object:
        """Return a snapshot of the backend's state."""
        ...


class Resubmit(enum.Enum):
    """The type of `RESUBMIT`."""

    RESUBMIT = "resubmit"


RESUBMIT: Final = Resubmit.RESUBMIT
"""What `AbstractWorker.run` returns when the job never ran and must go to
another worker: the worker left (idle timeout, ``retire``) or died just before."""


class AbstractWorker(ABC, Generic[JobT]):
    """One worker, as the pool sees it.

    A worker comes from the pool's ``start_worker`` factory, which returns it
    ready for a job, or raises `BrokenWorkerError` (it could not start) or
    `trio.Cancelled` having left nothing behind.  Then it runs jobs, waiting in
    the pool's cache in between, until it leaves by itself or is shut down, and
    is reaped once.  ``JobT`` is what the pool's ``encode`` makes of a
    call, once per call, however many workers it is offered to.

    The pool calls these with :exc:`KeyboardInterrupt` protection on, so that a
    Ctrl+C cannot land between a worker leaving one of its lists and entering
    another (fakes check it); except when it shuts down without trio
    (``WorkerPool.shutdown_blocking``), which must stay interruptible.
    """

    __slots__ = ()

    #: The worker's process id: in messages, and what the ``on_start`` of a
    #: call reaching this worker is told.
    pid: int

    @abstractmethod
    async def run(
        self, fn: Callable[..., object], job: JobT, *, kill_on_cancel: bool
    ) -> outcome.Outcome[Any] | Resubmit:
        """Run ``job``, an encoded call of ``fn``, once.

        With ``kill_on_cancel`` false a cancellation does not interrupt the job:
        its outcome is returned, and the caller's next checkpoint raises
        `trio.Cancelled`, since its scope stays cancelled.

        Returns:
            The call's outcome (its result, or the exception to raise in the
            caller); the worker is then idle and reusable.  Or `RESUBMIT`: the
            worker left before it took the job, which never ran; the worker is
            exiting and must be reaped (see `reap_if_exited`).

        Raises:
            BrokenWorkerError: the worker died with the job, or cannot take it
                (its ``retire`` failed after the previous job).
            trio.Cancelled: with ``kill_on_cancel``.  Whatever it raises, the
                worker is dead and reaped already.
        """

    @abstractmethod
    def has_left(self) -> bool:
        """Whether this idle worker has left by itself (said goodbye, or died).

        Never blocks.  A worker that left goes from the cache to the workers to
        reap.
        """

    @abstractmethod
    def died_while_idle(self) -> bool:
        """Whether this idle worker died without saying goodbye.

        Something outside killed it (a ``SIGTERM`` to the whole process group,
        say): a call would have dropped it silently, so its exit status is no
        failure of the shutdown (trio-parallel#348).
        """

    @abstractmethod
    def shutdown(self) -> None:
        """Ask the worker to exit once it is idle; do not wait."""

    @abstractmethod
    def reap_if_exited(self) -> bool:
        """If the worker has exited, release what it holds and return True."""

    @abstractmethod
    async def wait(self) -> None:
        """Wait until the worker has exited; cancellable, unlike `reap`."""

    @abstractmethod
    def wait_blocking(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for the worker to exit, without trio."""

    @abstractmethod
    def kill(self) -> bool:
        """Kill the worker if it still runs, and say whether it did."""

    @abstractmethod
    async def reap(self) -> WorkerExit:
        """Wait (shielded) for the worker to exit, release what it holds, and
        return how it ended."""

    @abstractmethod
    def reap_blocking(self) -> WorkerExit:
        """`reap`, without trio (at interpreter exit)."""
