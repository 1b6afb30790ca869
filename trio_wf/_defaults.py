"""The default context behind the module-level `run_sync`, and how to change it."""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import tricycle
import trio

from ._context import (
    WorkerContext,
    WorkerContextStatistics,
    WorkerType,
    _create_context,
    warn_cancellable,
)

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_cache_scope_var: tricycle.TreeVar[WorkerContext] = tricycle.TreeVar(
    "trio_wf.cache_scope"
)
_default_context = _create_context(600.0, bool, bool, 30.0, WorkerType.SPAWN)


def get_default_context() -> WorkerContext:
    """The context `run_sync` uses here: the innermost `cache_scope`, or the default."""
    try:
        return _cache_scope_var.get()
    except (LookupError, RuntimeError):  # no scope, or not in a trio task
        return _default_context


async def run_sync(
    sync_fn: Callable[[Unpack[Ts]], R],
    *args: Unpack[Ts],
    kill_on_cancel: bool = False,
    cancellable: bool = False,
    limiter: trio.CapacityLimiter | None = None,
) -> R:
    """Run ``sync_fn(*args)`` in a worker process and return or raise its outcome.

    The worker comes from the current context: the innermost `cache_scope`, or
    the default context (see `configure_default_context`).  Workers are cached,
    most recently used first, and reused.  :doc:`/failures` says what the caller
    sees when something goes wrong.

    Args:
        sync_fn: a synchronous callable; it and ``args`` are pickled (with
            cloudpickle where plain pickle cannot, so lambdas and ``__main__``
            functions work under every worker type).  Large arguments and
            results (NumPy arrays, ``bytes``, big pickles) travel through the
            worker's shared memory, not the pipe.
        *args: positional arguments; use :func:`functools.partial` for keywords.
        kill_on_cancel: if false (the default), cancellation waits for the job and
            ``run_sync`` returns its result; the cancellation is delivered at the
            caller's next checkpoint.  If true, cancellation kills the worker with
            SIGKILL at once, reaps it and raises `trio.Cancelled`.
        cancellable: deprecated alias of ``kill_on_cancel`` (they are or-ed).
        limiter: the `trio.CapacityLimiter` (or any async context manager) held
            for the whole call, worker start-up included; by default
            :func:`current_default_worker_limiter`.

    Returns:
        Whatever ``sync_fn(*args)`` returned.

    Raises:
        BaseException: whatever ``sync_fn(*args)`` raised, with its remote
            traceback and ``__cause__``/``__context__`` chain (a `RemoteError` if it
            could not be pickled); ``SystemExit`` too, if the function exited.
        BrokenWorkerError: the worker died during the call (a crash, ``os._exit``,
            a signal), ``init`` failed in a new worker, or ``retire`` failed after
            the worker's previous job.  The context stays usable.
        TypeError: if ``sync_fn`` is an async function.
        pickle.PicklingError: if the call cannot be pickled (raised before any
            worker is used).
    """
    if cancellable:
        warn_cancellable()  # here, so that the warning points at our caller
    return await get_default_context().run_sync(
        sync_fn, *args, kill_on_cancel=kill_on_cancel or cancellable, limiter=limiter
    )


async def start_workers(count: int | None = None) -> None:
    """Start the current context's workers ahead of the first calls.

    The context is the one `run_sync` would use here; see
    `WorkerContext.start_workers` for ``count``.
    """
    await get_default_context().start_workers(count)


def configure_default_context(
    idle_timeout: float = 600.0,
    init: Callable[[], object] = bool,
    retire: Callable[[], object] = bool,
    grace_period: float = 30.0,
    worker_type: WorkerType = WorkerType.SPAWN,
) -> None:
    """Replace the default context used by `run_sync` outside any `cache_scope`.

    The arguments are those of :func:`open_worker_context`.  Idle workers of the
    previous default context are shut down before this returns (waiting at most
    its ``grace_period``); calls still running in it finish normally and their
    workers exit afterwards.  At interpreter exit the default context's workers
    are shut down within its ``grace_period``.

    Raises:
        RuntimeError: if called from a thread other than the main thread.
        BrokenWorkerError: if idle workers of the previous default context did
            not exit cleanly.
        TypeError, ValueError: for invalid arguments, as `open_worker_context`.
    """
    global _default_context
    if threading.current_thread() is not threading.main_thread():
        msg = "configure_default_context must be called from the main thread"
        raise RuntimeError(msg)
    new = _create_context(idle_timeout, init, retire, grace_period, worker_type)
    old, _default_context = _default_context, new
    old._pool.shutdown_blocking()


def default_context_statistics() -> WorkerContextStatistics:
    """Return the statistics of the context `run_sync` would use here."""
    return get_default_context().statistics()


@asynccontextmanager
async def cache_scope(
    idle_timeout: float = 600.0,
    init: Callable[[], object] = bool,
    retire: Callable[[], object] = bool,
    grace_period: float = 30.0,
    worker_type: WorkerType = WorkerType.SPAWN,
) -> AsyncIterator[None]:
    """Make `run_sync` use a new, private context in this task and its children.

    The context travels down the task tree (a :class:`tricycle.TreeVar`), so tasks
    started in nurseries opened inside the block use it too; nested scopes override
    outer ones; explicit `WorkerContext` objects are unaffected.  On exit the context
    is closed as by :func:`open_worker_context`, whose arguments these are.
    """
    await trio.lowlevel.checkpoint()
    ctx = _create_context(idle_timeout, init, retire, grace_period, worker_type)
    token = _cache_scope_var.set(ctx)
    try:
        yield
    finally:
        _cache_scope_var.reset(token)
        await ctx._aclose()
