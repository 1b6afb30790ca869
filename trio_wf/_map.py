"""`open_map`: a function over many items, in chunks, on a worker context."""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import (
    aclosing,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from typing import Generic, TypeVar, final

import trio

from _trio_wf_worker._map import run_chunk

from ._abc import SupportsRunSync
from ._context import current_default_worker_limiter
from ._defaults import get_default_context
from ._util import is_int_at_least

T = TypeVar("T")
R = TypeVar("R")

# A chunk should run about this long: its ~100 us of dispatch is then ~1%.
_TARGET_CHUNK_SECONDS = 0.01
_MAX_CHUNK = 10_000


@final
class MapResults(Generic[R]):
    """The async iterator of results that `open_map` yields.

    ``__anext__`` is a cancel point on every item but only waits (a schedule
    point) when no computed result is ready, so iterating costs well under a
    microsecond per item.
    """

    def __init__(self, ordered: bool, window: int) -> None:
        self._ordered = ordered
        self._ready: deque[R] = deque()
        self._done: dict[int, list[R] | BaseException] = {}
        self._next = 0  # ordered: index of the next chunk to hand out
        self._finished = False  # every chunk was started (or the input failed)
        self._started = 0
        self._error: BaseException | None = None
        self._changed = trio.Event()
        self._window = trio.Semaphore(window)

    def __aiter__(self) -> MapResults[R]:
        return self

    async def __anext__(self) -> R:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._ready:
            if self._take_next_chunk():
                continue
            if self._finished and self._next >= self._started:
                await trio.lowlevel.checkpoint()
                if self._error is not None:  # the input failed, after these items
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            self._changed = trio.Event()
            await self._changed.wait()
        return self._ready.popleft()

    def _take_next_chunk(self) -> bool:
        """Move the next finished chunk's results to ``_ready``; raise its error."""
        if self._ordered:
            if self._next not in self._done:
                return False
            key = self._next
        elif self._done:
            key = next(iter(self._done))
        else:
            return False
        outcome = self._done.pop(key)
        self._next += 1
        self._window.release()
        if isinstance(outcome, BaseException):
            raise outcome
        self._ready.extend(outcome)
        return True

    def _deliver(self, index: int, outcome: list[R] | BaseException) -> None:
        self._done[index] = outcome
        self._changed.set()


class _ChunkSizer:
    """Grows chunks until one takes about `_TARGET_CHUNK_SECONDS`."""

    def __init__(self, chunksize: int | None, total: int | None, workers: int) -> None:
        self.fixed = chunksize
        self.size = chunksize or 1
        # With a known length, keep at least four chunks per worker for balance.
        self.cap = _MAX_CHUNK
        if total is not None and chunksize is None:
            self.cap = max(1, min(_MAX_CHUNK, math.ceil(total / (4 * workers))))

    def observe(self, items: int, seconds: float) -> None:
        if self.fixed is not None or items < self.size:
            return
        per_item = max(seconds / items, 1e-9)
        wanted = int(_TARGET_CHUNK_SECONDS / per_item)
        self.size = max(1, min(wanted, 2 * self.size, self.cap))


async def _chunks(
    items: Iterable[T] | AsyncIterable[T], sizer: _ChunkSizer
) -> AsyncGenerator[list[T], None]:
    chunk: list[T] = []
    if isinstance(items, AsyncIterable):
        async for item in items:
            chunk.append(item)
            if len(chunk) >= sizer.size:
                yield chunk
                chunk = []
    else:
        for item in items:
            chunk.append(item)
            if len(chunk) >= sizer.size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


@asynccontextmanager
async def open_map(
    fn: Callable[[T], R],
    items: Iterable[T] | AsyncIterable[T],
    *,
    ordered: bool = True,
    chunksize: int | None = None,
    context: SupportsRunSync | None = None,
    limiter: trio.CapacityLimiter | None = None,
    kill_on_cancel: bool = False,
    progress: bool | Callable[[int, int | None], object] = False,
) -> AsyncIterator[MapResults[R]]:
    """Run ``fn(item)`` for every item on worker processes; iterate the results.

    ::

        async with trio_wf.open_map(fn, items) as results:
            async for result in results:
                ...

    Items are sent in chunks, one round trip per chunk, so short functions run at
    hundreds of thousands of items per second.  Without ``chunksize`` the chunk
    size adapts: it starts at one item and grows (doubling at most) until a chunk
    takes about 10 ms, capped so that an input of known length still makes four
    chunks per worker, which keeps long CPU-bound items balanced.

    Memory is bounded: at most two chunks per limiter token are taken from
    ``items`` ahead of the consumer.  Leaving the block early cancels the chunks
    still running (which, as with `run_sync`, wait for their job unless
    ``kill_on_cancel`` is true).

    Args:
        fn: a picklable function of one argument.
        items: an iterable or async iterable; it is read lazily, in this task tree.
        ordered: yield results in input order (the default), or as chunks finish.
        chunksize: a fixed number of items per round trip, instead of adapting.
        context: where to run (any `SupportsRunSync`); default: the context
            `run_sync` would use here.
        limiter: bounds the chunks running at once; default:
            `current_default_worker_limiter`.
        kill_on_cancel: passed to ``run_sync`` for every chunk.
        progress: ``True`` to draw a progress bar on standard error (items
            done, of how many if ``items`` has a length, elapsed and remaining
            time; drawn with rich, redrawn only on a terminal); or a function
            called, in this thread, with ``(items done, total or None)`` as
            each chunk completes, to feed a progress display of your own.
            Off by default.

    Raises:
        BaseException: the first exception ``fn`` raised (in input order when
            ``ordered``), when iteration reaches it; results of earlier chunks are
            yielded first, those computed in the same chunk before it are lost.
        BrokenWorkerError: a worker died while running a chunk.
    """
    if chunksize is not None and not is_int_at_least(chunksize, 1):
        msg = f"chunksize must be a positive integer or None, got {chunksize!r}"
        raise ValueError(msg)
    ctx = context if context is not None else get_default_context()
    limiter = limiter if limiter is not None else current_default_worker_limiter()
    workers = max(1, int(limiter.total_tokens))
    total = 0 if isinstance(items, AsyncIterable) else operator.length_hint(items, 0)
    sizer = _ChunkSizer(chunksize, total or None, workers)
    results: MapResults[R] = MapResults(ordered, window=2 * workers)
    display = _progress_bar(total or None) if progress is True else nullcontext()
    report = progress if callable(progress) else None
    finished = 0

    async def run_one(index: int, chunk: list[T]) -> None:
        nonlocal finished
        try:
            seconds, done = await ctx.run_sync(
                run_chunk, fn, chunk, kill_on_cancel=kill_on_cancel, limiter=limiter
            )
        except Exception as exc:
            results._deliver(index, exc)
            return
        sizer.observe(len(chunk), seconds)  # time in the worker, not in the queue
        results._deliver(index, done)
        if report is not None:
            finished += len(chunk)
            report(finished, total or None)

    async def produce(nursery: trio.Nursery) -> None:
        try:
            async with aclosing(_chunks(items, sizer)) as chunks:
                async for chunk in chunks:
                    await results._window.acquire()
                    nursery.start_soon(run_one, results._started, chunk)
                    results._started += 1
        except Exception as exc:  # the input itself failed: the consumer raises it
            results._error = exc
        finally:
            results._finished = True
            results._changed.set()

    # The body's own exception (fn's error reached by the loop, say) must leave
    # the block as it is, not wrapped in the nursery's exception group.
    body_error: BaseException | None = None
    with display as bar:
        report = bar or report
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce, nursery)
            try:
                yield results
            except BaseException as exc:
                body_error = exc
            finally:
                nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


@contextmanager
def _progress_bar(total: int | None) -> Iterator[Callable[[int, int | None], None]]:
    """A rich progress bar on standard error, and the function that moves it."""
    # Imported here: open_map without progress=True never pays for rich.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("open_map"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    # What the caller prints meanwhile stays where it was going.
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, redirect_stdout=False, redirect_stderr=False
    ) as bar:
        task = bar.add_task("open_map", total=total)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done)

        yield advance
