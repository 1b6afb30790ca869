"""The contenders, each behind one small interface: open, warm up, run a call.

Every contender is opened (its context, executor or child processes created) before
any timed region and closed after the last one.  A contender that cannot be imported
or opened is reported as unavailable, with the reason, instead of failing the run.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import _jobs
import outcome
import trio
from _floor import FloorChannel

T = TypeVar("T")

# The rows a contender may not support, and why, keyed by row name.
Unsupported = dict[str, str]
NOT_A_RUNNER = "the floor echoes bytes; it runs no function"


class Contender:
    """One way of running ``fn(*args)`` elsewhere, seen from a trio task."""

    name = "?"
    unsupported: Unsupported = {}  # noqa: RUF012, read-only class default

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        """Create the context/executor/processes; tear them down on exit."""
        await trio.lowlevel.checkpoint()
        yield

    def limiter(self, tokens: int) -> Any:
        """A capacity limiter of the kind this contender accepts."""
        return trio.CapacityLimiter(tokens)

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        """Run ``fn(*args)``; ``limiter=None`` means the contender's default."""
        raise NotImplementedError

    async def run_kill_on_cancel(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` so that cancelling the call kills its worker."""
        raise NotImplementedError

    async def warm_up(self) -> None:
        """Make sure two workers are started and warm (outside timed regions)."""
        for _ in range(20):
            await self.run(int)
        limiter = self.limiter(2)
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(self._warm_one, limiter)

    async def _warm_one(self, limiter: Any) -> None:
        # Long enough that both calls overlap, so each gets its own worker.
        await self.run(_jobs.sleep, 0.05, limiter=limiter)


class TrioWf(Contender):
    name = "trio_wf"
    # trio-parallel has the same API: its contender only names another library.
    library = "trio_wf"
    _ctx: Any  # a trio_wf (or trio_parallel) WorkerContext, once open

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        library = importlib.import_module(self.library)
        async with library.open_worker_context(
            worker_type=library.WorkerType.SPAWN
        ) as ctx:
            self._ctx = ctx
            yield

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        result: T
        if limiter is None:
            result = await self._ctx.run_sync(fn, *args)
        else:
            result = await self._ctx.run_sync(fn, *args, limiter=limiter)
        return result

    async def run_kill_on_cancel(self, fn: Callable[..., T], *args: Any) -> T:
        result: T = await self._ctx.run_sync(fn, *args, kill_on_cancel=True)
        return result


class TrioParallel(TrioWf):
    name = "trio-parallel"
    library = "trio_parallel"


class AnyioToProcess(Contender):
    name = "anyio"

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        # anyio's process pool belongs to the trio.run; it is torn down with it.
        import anyio.to_process

        self._to_process = anyio.to_process
        await trio.lowlevel.checkpoint()
        yield

    def limiter(self, tokens: int) -> Any:
        import anyio

        return anyio.CapacityLimiter(tokens)

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        return await self._to_process.run_sync(fn, *args, limiter=limiter)

    async def run_kill_on_cancel(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._to_process.run_sync(fn, *args, cancellable=True)


async def wait_future(future: concurrent.futures.Future[T]) -> T:
    """Wait for a concurrent.futures future from trio: no thread per call.

    The done callback (run by the executor's management thread) hands the outcome to
    trio's thread with ``run_sync_soon``, which reschedules the waiting task.  The
    wait itself cannot be cancelled: a running future cannot be taken back.
    """
    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()

    def done(finished: concurrent.futures.Future[T]) -> None:
        token.run_sync_soon(
            trio.lowlevel.reschedule, task, outcome.capture(finished.result)
        )

    future.add_done_callback(done)

    def abort(_: Any) -> trio.lowlevel.Abort:
        return trio.lowlevel.Abort.FAILED

    return await trio.lowlevel.wait_task_rescheduled(abort)  # type: ignore[no-any-return]


class _Executor(Contender):
    """A concurrent.futures executor, submitted to and awaited with `wait_future`."""

    unsupported: Unsupported = {  # noqa: RUF012
        "kill": "a running concurrent.futures call cannot be cancelled",
    }

    def _make(self) -> concurrent.futures.Executor:
        raise NotImplementedError

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        await trio.lowlevel.checkpoint()
        self._executor = self._make()
        try:
            yield
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._executor.shutdown)

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        if limiter is None:
            return await wait_future(self._executor.submit(fn, *args))
        async with limiter:
            return await wait_future(self._executor.submit(fn, *args))


class ProcessPool(_Executor):
    name = "cf-process-pool"

    def _make(self) -> concurrent.futures.Executor:
        # spawn, like the other contenders' defaults (3.11's Linux default is fork).
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=2, mp_context=multiprocessing.get_context("spawn")
        )


class Loky(_Executor):
    name = "loky"

    def _make(self) -> concurrent.futures.Executor:
        import loky

        executor: concurrent.futures.Executor = loky.get_reusable_executor(
            max_workers=2
        )
        return executor


class ToThread(Contender):
    name = "trio.to_thread"
    unsupported: Unsupported = {"kill": "threads cannot be killed"}  # noqa: RUF012

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=limiter)


class RawPipeFloor(Contender):
    """Two echo children; ``run`` echoes the bytes argument (or 8 bytes)."""

    name = "raw-pipe floor"
    unsupported: Unsupported = {  # noqa: RUF012
        "kill": NOT_A_RUNNER,
        "numpy": "the floor echoes bytes: see 3a",
        "cpu": NOT_A_RUNNER,
    }

    @asynccontextmanager
    async def open(self) -> AsyncIterator[None]:
        await trio.lowlevel.checkpoint()
        self._idle: list[FloorChannel] = []
        try:
            for _ in range(2):
                self._idle.append(FloorChannel())
            yield
        finally:
            for channel in self._idle:
                channel.close()

    async def run(self, fn: Callable[..., T], *args: Any, limiter: Any = None) -> T:
        if fn is int and not args:
            payload: bytes = b"\0" * 8
        elif fn is _jobs.echo and len(args) == 1 and isinstance(args[0], bytes):
            payload = args[0]
        else:
            raise TypeError(NOT_A_RUNNER)
        if limiter is None:
            return await self._echo(payload)  # type: ignore[return-value]
        async with limiter:
            return await self._echo(payload)  # type: ignore[return-value]

    async def _echo(self, payload: bytes) -> bytes | bytearray:
        channel = self._idle.pop()
        try:
            return await channel.roundtrip(payload)
        finally:
            self._idle.append(channel)

    async def warm_up(self) -> None:
        for _ in range(20):
            await self.run(int)


CONTENDERS: tuple[type[Contender], ...] = (
    TrioWf,
    TrioParallel,
    AnyioToProcess,
    ProcessPool,
    Loky,
    ToThread,
    RawPipeFloor,
)


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return first_line[:120]


@asynccontextmanager
async def open_contenders(
    names: list[str] | None = None,
) -> AsyncIterator[dict[str, Contender | str]]:
    """Open every contender; an unavailable one maps to the reason, as a string."""
    opened: dict[str, Contender | str] = {}
    async with AsyncExitStack() as stack:
        for cls in CONTENDERS:
            if names is not None and cls.name not in names:
                continue
            contender = cls()
            try:
                await stack.enter_async_context(contender.open())
                await contender.warm_up()
            except Exception as exc:
                opened[cls.name] = f"unavailable: {describe_error(exc)}"
            else:
                opened[cls.name] = contender
        yield opened


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
