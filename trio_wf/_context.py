"""`WorkerContext`: a configured cache of worker processes, and how to open one."""

from __future__ import annotations

import enum
import functools
import inspect
import os
import sys
import types
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, final

import attrs
import trio

from _trio_wf_worker._protocol import describe_callable
from _trio_wf_worker._shm import Outgoing

from . import _proc
from ._jobs import encode_job
from ._pool import WorkerPool
from ._util import NoPublicConstructor, is_int_at_least
from ._worker import Launcher, ProcessWorker, WorkerConfig

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


_limiter_runvar: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar(
    "trio_wf.default_limiter"
)


def current_default_worker_limiter() -> trio.CapacityLimiter:
    """Return the `trio.CapacityLimiter` that `run_sync` uses by default.

    There is one per `trio.run`, with one token per CPU (:func:`os.cpu_count`).
    Change its :attr:`~trio.CapacityLimiter.total_tokens` to run more or fewer
    calls at once.
    """
    try:
        return _limiter_runvar.get()
    except LookupError:
        limiter = trio.CapacityLimiter(os.cpu_count() or 1)
        _limiter_runvar.set(limiter)
        return limiter


class WorkerType(str, enum.Enum):
    """How worker processes are started.

    ``SPAWN`` (the default) starts a fresh interpreter: the slowest start, the
    cleanest worker (no inherited threads, locks or file descriptors, no trio).
    ``FORKSERVER`` forks workers from a small trio-free server process started on
    first use: fast restarts with spawn's cleanliness.  ``FORK`` forks the calling
    process itself: the fastest start, but it inherits the parent's memory, threads'
    locks and file descriptors, so it is experimental (see :doc:`/design`).
    """

    SPAWN = "spawn"
    FORKSERVER = "forkserver"
    FORK = "fork"


_LAUNCHERS: dict[WorkerType, Launcher] = {
    WorkerType.SPAWN: _proc.launch_spawn,
    WorkerType.FORKSERVER: _proc.launch_forkserver,
    WorkerType.FORK: _proc.launch_fork,
}


@final
@attrs.frozen
class WorkerContextStatistics:
    """A snapshot of a context's workers, from `WorkerContext.statistics`.

    Attributes:
        idle_workers: live workers waiting in the cache for a job.
        running_workers: calls currently holding a worker (or starting one).
    """

    idle_workers: int
    running_workers: int


def _non_negative(
    instance: object, attribute: attrs.Attribute[float], value: Any
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{attribute.name} must be a number of seconds, got {value!r}"
        raise TypeError(msg)
    if not value >= 0:  # also rejects NaN
        msg = f"{attribute.name} must be non-negative, got {value!r}"
        raise ValueError(msg)


def _is_callable(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        msg = f"{attribute.name} must be callable without arguments, got {value!r}"
        raise TypeError(msg)


def _to_worker_type(value: Any) -> WorkerType:
    try:
        return WorkerType(value)
    except ValueError:
        choices = ", ".join(repr(t.value) for t in WorkerType)
        msg = f"worker_type must be one of {choices} (a WorkerType), got {value!r}"
        raise ValueError(msg) from None


@final
@attrs.frozen(eq=False)
class WorkerContext(metaclass=NoPublicConstructor):
    """A cache of worker processes sharing one configuration.

    Instances come from :func:`open_worker_context` (or, implicitly, from
    :func:`cache_scope` and the default context); the constructor is private.  The
    arguments that configured a context are readable as attributes; see
    :ref:`context-options` for their meaning.
    """

    idle_timeout: float = attrs.field(default=600.0, validator=_non_negative)
    init: Callable[[], object] = attrs.field(default=bool, validator=_is_callable)
    retire: Callable[[], object] = attrs.field(default=bool, validator=_is_callable)
    grace_period: float = attrs.field(default=30.0, validator=_non_negative)
    worker_type: WorkerType = attrs.field(
        default=WorkerType.SPAWN, converter=_to_worker_type
    )
    _pool: WorkerPool[Outgoing] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        config = WorkerConfig(
            _LAUNCHERS[self.worker_type],
            idle_timeout=self.idle_timeout,
            init=self.init,
            retire=self.retire,
        )
        pool = WorkerPool(
            functools.partial(ProcessWorker.start, config),
            encode_job,
            grace_period=self.grace_period,
        )
        object.__setattr__(self, "_pool", pool)

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        cancellable: bool = False,
        limiter: trio.CapacityLimiter | None = None,
        on_start: Callable[[int], object] | None = None,
    ) -> R:
        """Run ``sync_fn(*args)`` in one of this context's workers.

        See :func:`trio_wf.run_sync` for the semantics.

        Args:
            on_start: called, in the Trio thread, with the worker's pid when
                the call reaches its worker: once it holds a ``limiter`` token
                and a worker (idle, or started for it), just before the job is
                sent.  The time from the call to ``on_start`` is the wait for a
                worker; from ``on_start`` to the return, the run.  If that
                worker turns out to have left before reading the job, the job
                goes to another and ``on_start`` is called again.  What it
                raises is raised here, and the job is not sent.  When it is
                ``None`` (the default), the call costs nothing more.

        Raises:
            trio.ClosedResourceError: if the context has been closed.
        """
        if cancellable:
            warn_cancellable()
        if _is_async_function(sync_fn):
            await trio.lowlevel.checkpoint()
            msg = (
                f"run_sync expected a sync function, but {describe_callable(sync_fn)} "
                "is async; await it directly instead of sending it to a worker"
            )
            raise TypeError(msg)
        if limiter is None:
            limiter = current_default_worker_limiter()
        result: R = await self._pool.run_sync(
            sync_fn,
            args,
            kill_on_cancel=kill_on_cancel or cancellable,
            limiter=limiter,
            on_start=on_start,
        )
        return result

    async def start_workers(self, count: int | None = None) -> None:
        """Start worker processes now, in parallel, until ``count`` are idle.

        The calls that follow then find their workers ready, and pay no start-up
        (tens of milliseconds under spawn).  Workers already idle count; idle
        workers still leave after ``idle_timeout``.

        Args:
            count: how many idle workers to have; by default, the total tokens of
                :func:`current_default_worker_limiter` (one per CPU).

        Raises:
            BrokenWorkerError: if a worker could not start (``init`` raised, say);
                the others started.
            ValueError: if ``count`` is not a non-negative int.
            trio.ClosedResourceError: if the context has been closed.
        """
        if count is None:
            count = int(current_default_worker_limiter().total_tokens)
        if not is_int_at_least(count, 0):
            msg = f"count must be a non-negative int, not {count!r}"
            raise ValueError(msg)
        await self._pool.start_workers(count)

    def statistics(self) -> WorkerContextStatistics:
        """Return a `WorkerContextStatistics` snapshot of this context's workers."""
        idle, running = self._pool.statistics()
        return WorkerContextStatistics(idle_workers=idle, running_workers=running)

    async def _aclose(self) -> None:
        await self._pool.aclose()


_ASYNC_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _is_async_function(fn: object) -> bool:
    # On every call's path: the common cases without inspect's unwrapping of
    # partials and methods (a builtin cannot be async, nor carry the marker
    # inspect.markcoroutinefunction sets on a plain function).
    if type(fn) is types.BuiltinFunctionType:
        return False
    if type(fn) is types.FunctionType:
        return bool(fn.__code__.co_flags & _ASYNC_FLAGS) or (
            "_is_coroutine_marker" in fn.__dict__ and inspect.iscoroutinefunction(fn)
        )
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def warn_cancellable() -> None:
    """Warn about ``cancellable``, blaming the caller of the public run_sync."""
    warnings.warn(
        "the cancellable argument of run_sync is deprecated, use kill_on_cancel",
        DeprecationWarning,
        stacklevel=3,
    )


def _create_context(
    idle_timeout: float,
    init: Callable[[], object],
    retire: Callable[[], object],
    grace_period: float,
    worker_type: WorkerType,
) -> WorkerContext:
    return WorkerContext._create(
        idle_timeout=idle_timeout,
        init=init,
        retire=retire,
        grace_period=grace_period,
        worker_type=worker_type,
    )


@asynccontextmanager
async def open_worker_context(
    idle_timeout: float = 600.0,
    init: Callable[[], object] = bool,
    retire: Callable[[], object] = bool,
    grace_period: float = 30.0,
    worker_type: WorkerType = WorkerType.SPAWN,
) -> AsyncIterator[WorkerContext]:
    """Open a `WorkerContext` with its own, isolated worker processes.

    On exit the context waits for its running calls to finish (this wait cannot
    be cancelled, so pass the context only to tasks that cannot outlive the
    block, e.g. tasks of a nursery inside it), then shuts its workers down.

    Args:
        idle_timeout: seconds an idle worker waits for a job before it exits by
            itself (``math.inf``: never).
        init: called without arguments once in each new worker, before its first
            job.  If it raises, the call that started the worker fails with
            `BrokenWorkerError`, whose ``__cause__`` is the ``init`` exception.
        retire: called without arguments in the worker after each job; a true
            result retires the worker (it exits; the next call gets a new one).
            See `retire_policy` for ready-made policies.
        grace_period: seconds to wait on exit for workers to stop before killing
            them and raising `BrokenWorkerError` (``math.inf``: wait forever).
        worker_type: how to start workers, see `WorkerType`.

    Raises:
        TypeError: if an argument has the wrong type (or init/retire cannot be
            pickled).
        ValueError: if a timeout is negative or the worker type is unknown.
        BrokenWorkerError: on exit, if workers did not shut down cleanly.
    """
    await trio.lowlevel.checkpoint()
    ctx = _create_context(idle_timeout, init, retire, grace_period, worker_type)
    try:
        yield ctx
    finally:
        await ctx._aclose()
