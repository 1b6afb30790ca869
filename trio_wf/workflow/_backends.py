"""Where node tasks run: worker processes, threads, the Trio thread, or Dask.

One argument of `aexecute_graph` chooses: ``worker_type`` (our spelling), or
ewoksppf's ``pool_type`` or ewoksdask's ``scheduler`` (`._schedulers`) where
they mean the same.  The two in-process backends implement
`trio_wf.SupportsRunSync` like a `trio_wf.WorkerContext`, ``on_start``
included, so the walker cannot tell them apart.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar, final

import attrs
import trio

import trio_wf

from .._util import quote
from ._schedulers import DASK, Backend, from_ewoksdask

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

THREAD: Final = "thread"
SEQUENTIAL: Final = "sequential"
#: Every ``worker_type`` the engine accepts.
WORKER_TYPES = (*(t.value for t in trio_wf.WorkerType), THREAD, SEQUENTIAL)

# ewoksppf's pool_type, where it means one of ours.
_POOL_TYPES = {"process": "spawn", "thread": THREAD}


@final
@attrs.frozen
class InProcessStatistics:
    """A snapshot of an in-process backend: how many tasks run now."""

    running: int


class _InProcess:
    def __init__(self) -> None:
        self._running = 0

    def statistics(self) -> InProcessStatistics:
        return InProcessStatistics(running=self._running)


@final
class ThreadBackend(_InProcess):
    """Runs each task in a thread of Trio's thread cache.

    A thread cannot be killed: when the run is cancelled or times out, the
    tasks already running are waited for (``kill_on_cancel`` is ignored), then
    the cancellation goes on.
    """

    def __init__(self) -> None:
        super().__init__()
        # Threads start under the caller's limiter, taken here when on_start
        # must be told; this one then lets every thread through.
        self._unlimited = trio.CapacityLimiter(math.inf)

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
        on_start: Callable[[int], object] | None = None,
    ) -> R:
        if on_start is None:
            return await self._run(sync_fn, *args, limiter=limiter)
        gate = (
            limiter
            if limiter is not None
            else trio.to_thread.current_default_thread_limiter()
        )
        async with gate:
            on_start(os.getpid())
            return await self._run(sync_fn, *args, limiter=self._unlimited)

    async def _run(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        limiter: trio.CapacityLimiter | None,
    ) -> R:
        self._running += 1
        try:
            # abandon_on_cancel=False: an abandoned thread would go on running
            # user code after the run "ended", writing its files, holding its
            # locks; waiting for it is the honest choice.
            return await trio.to_thread.run_sync(sync_fn, *args, limiter=limiter)
        finally:
            self._running -= 1


@final
class SequentialBackend(_InProcess):
    """Runs each task in the Trio thread, one at a time: for debugging.

    A task blocks the event loop while it runs, so nothing else happens at the
    same time: a timeout or a cancellation takes effect between tasks, and
    Ctrl+C raises `KeyboardInterrupt` inside the task, where a debugger or a
    traceback shows it.
    """

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
        on_start: Callable[[int], object] | None = None,
    ) -> R:
        # One at a time needs no lock: the call below never yields.
        await trio.lowlevel.checkpoint()
        # Every node that was ready resumed from that checkpoint in the same
        # batch, so the ones after the first run once it returns, without the
        # scheduler in between: a deadline that expired while it blocked the
        # loop would not reach them.  Go through the scheduler once more, where
        # the deadline becomes a cancellation, and check for one.
        if trio.current_effective_deadline() <= trio.current_time():
            await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint_if_cancelled()
        if on_start is not None:
            on_start(os.getpid())
        self._running += 1
        try:
            return sync_fn(*args)
        finally:
            self._running -= 1


def reports_start(backend: Any) -> bool:
    """Whether ``backend.run_sync`` takes ``on_start``, as `trio_wf.WorkerContext`
    and the in-process backends do: then it says when, and in which process, a
    task reaches its worker."""
    if isinstance(backend, (trio_wf.WorkerContext, ThreadBackend, SequentialBackend)):
        return True
    try:
        parameters = inspect.signature(backend.run_sync).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return "on_start" in parameters


def choose_backend(
    worker_type: Any,
    pool_type: Any,
    scheduler: Any,
    scheduler_options: Any,
    has_context: bool,
) -> Backend | None:
    """The one backend the options name (``None``: the default), or a ValueError."""
    given = [
        f"{name}={quote(value)}"
        for name, value in (
            ("worker_type", worker_type),
            ("pool_type", pool_type),
            ("scheduler", scheduler),
            ("scheduler_options", scheduler_options),
        )
        if value is not None
    ]
    if has_context and given:
        msg = f"pass either context or {given[0]}, not both"
        raise ValueError(msg)
    if scheduler is not None and scheduler_options is not None:
        given.pop()  # they go together
    if len(given) > 1:
        msg = f"pass only one of {' and '.join(given)}: they choose the same thing"
        raise ValueError(msg)
    if pool_type is not None:
        return Backend(_translate("pool_type", pool_type, _POOL_TYPES, "ewoksppf"))
    if scheduler is not None or scheduler_options is not None:
        return from_ewoksdask(scheduler, scheduler_options)
    if worker_type is None:
        return None
    value = worker_type.value if isinstance(worker_type, trio_wf.WorkerType) else None
    if value is None and worker_type in WORKER_TYPES:
        value = worker_type
    if value is None:
        choices = ", ".join(map(repr, WORKER_TYPES))
        msg = f"worker_type must be one of {choices}, got {quote(worker_type)}"
        raise ValueError(msg)
    return Backend(str(value))


def _translate(name: str, value: Any, table: dict[str, str], engine: str) -> str:
    try:
        return table[value]
    except (KeyError, TypeError):
        known = ", ".join(f"{k!r} (= worker_type {v!r})" for k, v in table.items())
        msg = (
            f"{name}={quote(value)} has no trio_wf equivalent; the {engine} values "
            f"trio_wf accepts are {known}, or use worker_type"
        )
        raise ValueError(msg) from None


@asynccontextmanager
async def open_backend(
    backend: Backend | None,
) -> AsyncIterator[trio_wf.SupportsRunSync]:
    """A private backend of the chosen kind (default: spawn), closed on exit."""
    kind = None if backend is None else backend.kind
    if kind == THREAD:
        await trio.lowlevel.checkpoint()
        yield ThreadBackend()
    elif kind == SEQUENTIAL:
        await trio.lowlevel.checkpoint()
        yield SequentialBackend()
    elif backend is not None and kind == DASK:
        # A run is cancelled as a whole, so its nodes may share Dask tasks.
        options = {"share_tasks": True, **backend.dask}
        async with trio_wf.open_dask_context(**options) as context:
            yield context
    else:
        worker_type = trio_wf.WorkerType(kind or "spawn")
        async with trio_wf.open_worker_context(worker_type=worker_type) as context:
            yield context
