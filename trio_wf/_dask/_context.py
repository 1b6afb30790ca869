"""`DaskContext`: `run_sync` on a Dask cluster, its cancel and kill path, statistics.

How it drives Dask from Trio: a synchronous ``distributed.Client`` owns an event
loop in a thread of its own; Trio never runs asyncio.  Calls are submitted in
batches (`._gather.Batches`: ``Client.map`` only queues a message for that
loop, it does not block), and their results come back in batches, handed to
Trio with `trio.lowlevel.TrioToken.run_sync_soon`: no thread per call, and the
Trio thread never waits on Dask.  Cancelling a call with
``kill_on_cancel=True`` runs `._kill.release_or_kill` on the client's loop the
same way.  `ChainRun` runs a chain of calls in one task, each taking the
previous one's result.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError as FuturesCancelledError
from typing import Any, TypeVar, final

import attrs
import cloudpickle
import distributed
import outcome
import trio

from _trio_wf_worker._protocol import describe_callable

from .._errors import BrokenWorkerError
from ._chain_run import ChainRun
from ._gather import Batches, Waiter
from ._kill import release_or_kill
from ._worker_side import Call

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

#: Seconds a cancelled ``kill_on_cancel=True`` call may spend releasing its task
#: and killing its worker (a few round trips, when the cluster answers).
KILL_TIMEOUT = 5.0

_logger = logging.getLogger(__name__)


@final
@attrs.frozen
class DaskContextStatistics:
    """A snapshot of a `DaskContext`, from `DaskContext.statistics`.

    Attributes:
        running_calls: calls submitted by this context and not finished yet
            (running on a worker or queued by the scheduler).
        scheduler_address: the address of the scheduler the client talks to.
    """

    running_calls: int
    scheduler_address: str


@final
class DaskContext:
    """Runs calls on a Dask cluster; from :func:`trio_wf.open_dask_context`.

    It offers the `trio_wf.SupportsRunSync` methods of a `trio_wf.WorkerContext`,
    so it can be passed wherever a context is (``execute_graph(...,
    context=ctx)``).

    Attributes:
        client: the synchronous ``distributed.Client``, for what this class does
            not wrap (``client.dashboard_link``...).  Its methods block: from Trio,
            call them through `trio.to_thread.run_sync`.
        scheduler_address: the scheduler's address.
    """

    def __init__(
        self, client: Any, token: trio.lowlevel.TrioToken, *, share_tasks: bool = False
    ) -> None:
        self.client = client
        self.scheduler_address: str = client.scheduler.address
        self._token = token
        self._batches = Batches(client, token, share=share_tasks)
        self._running = 0
        self._closed = False

    def statistics(self) -> DaskContextStatistics:
        """Return a `DaskContextStatistics` snapshot."""
        return DaskContextStatistics(
            running_calls=self._running, scheduler_address=self.scheduler_address
        )

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
    ) -> R:
        """Run ``sync_fn(*args)`` on a worker of the cluster.

        The semantics are those of :func:`trio_wf.run_sync`, with the
        differences that :ref:`dask-semantics` lists.  ``limiter`` defaults to
        none: the scheduler queues what its workers cannot run yet.

        Raises:
            BrokenWorkerError: the worker running the call died (``address``
                names it), or the connection to the scheduler was lost.
            trio.ClosedResourceError: if the context has been closed.
        """
        if _is_async(sync_fn):
            await trio.lowlevel.checkpoint()
            msg = (
                f"run_sync expected a sync function, but {describe_callable(sync_fn)} "
                "is async; await it directly instead of sending it to a worker"
            )
            raise TypeError(msg)
        result: R
        if limiter is None:
            result = await self._run(sync_fn, args, kill_on_cancel)
        else:
            async with limiter:
                result = await self._run(sync_fn, args, kill_on_cancel)
        return result

    async def _run(self, fn: Callable[..., Any], args: Any, kill: bool) -> Any:
        if self._closed:
            await trio.lowlevel.checkpoint()
            msg = "this dask context is closed"
            raise trio.ClosedResourceError(msg)
        payload = cloudpickle.dumps(Call(fn, args))
        name = getattr(fn, "__name__", None) or type(fn).__name__
        # pure=False and a random key: identical calls never share a task.
        key = f"{name}-{uuid.uuid4().hex}"
        submission = self._batches.submit(payload, key)
        waiter = submission.waiter
        self._running += 1
        try:
            if kill:
                try:
                    await waiter.event.wait()
                except trio.Cancelled:
                    future = self._batches.withdraw(submission)
                    if future is not None:
                        await self._release_or_kill(future, fn)
                    raise
            else:
                # Like the local context: the call runs to its end and its
                # outcome is returned; a cancellation is delivered at the
                # caller's next checkpoint.
                with trio.CancelScope(shield=True):
                    await waiter.event.wait()
        finally:
            self._running -= 1
        assert waiter.result is not None
        return self._unwrap(waiter.result, fn, key)

    def start_chain(
        self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
    ) -> ChainRun:
        """Submit ``fn(*args)`` for each call, each after the previous one.

        Each call but the first also gets the previous call's result as its
        last argument, on the worker that ran it: they run in one task, for a
        slice of time at most (`._fuse`), with no round trip between them.
        For the workflow engine, which runs a chain of nodes this way; see
        `ChainRun`.
        """
        if self._closed:
            msg = "this dask context is closed"
            raise trio.ClosedResourceError(msg)
        return ChainRun(self, calls)

    def _on_loop(self, async_fn: Callable[..., Any], *args: Any) -> Waiter:
        """Run ``async_fn(*args)`` on the client's loop; its outcome comes to Trio."""
        waiter = Waiter()

        async def run() -> None:
            try:
                result: outcome.Outcome[Any] = outcome.Value(await async_fn(*args))
            except BaseException as exc:  # delivered to the Trio task, which decides
                result = outcome.Error(exc)
            try:
                self._token.run_sync_soon(waiter.set, result)
            except trio.RunFinishedError:  # pragma: no cover, the run was torn down
                pass

        self.client.loop.add_callback(run)
        return waiter

    async def _release_or_kill(self, future: Any, fn: Any) -> None:
        """Release a cancelled call, killing its worker if it runs (`._kill`).

        The caller waits for the kill, a few round trips, but not for the
        replacement, which the worker's nanny starts in the background.
        """
        waiter = self._on_loop(
            asyncio.wait_for, release_or_kill(self.client, future), KILL_TIMEOUT
        )
        # Shielded, and bounded in case the client's loop is gone too.
        with trio.CancelScope(shield=True), trio.move_on_after(KILL_TIMEOUT + 1):
            await waiter.event.wait()
        if not isinstance(waiter.result, outcome.Value):
            # The call is cancelled all the same: the caller is told so, and
            # the log says what may still run on the cluster.
            error = getattr(waiter.result, "error", "no answer")
            _logger.warning(
                "kill_on_cancel: could not release or kill the dask task of %s "
                "(scheduler %s): %r",
                describe_callable(fn),
                self.scheduler_address,
                error,
            )

    def _unwrap(self, result: outcome.Outcome[Any], fn: Any, key: str) -> Any:
        if not isinstance(result, outcome.Error):
            return result.unwrap()
        error = result.error
        what = describe_callable(fn)
        if isinstance(error, distributed.KilledWorker):
            address = error.last_worker.address
            msg = (
                f"dask worker {address} died while running {what} (task {key}); "
                "its nanny log says why"
            )
            raise BrokenWorkerError(msg, address=address) from error
        if isinstance(error, FuturesCancelledError):
            reason = getattr(error, "reason", "unknown")
            if reason == "scheduler-connection-lost":
                msg = (
                    f"lost the connection to the dask scheduler at "
                    f"{self.scheduler_address} while running {what} (task {key})"
                )
            else:
                msg = f"task {key} of {what} was cancelled on the cluster ({reason})"
            raise BrokenWorkerError(msg, address=self.scheduler_address) from error
        return result.unwrap()

    def _close(self) -> None:
        self._closed = True


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
