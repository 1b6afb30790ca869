"""`DaskContext`: `run_sync` on a Dask cluster, its cancel and kill path, statistics.

How it drives Dask from Trio: a synchronous ``distributed.Client`` owns an event
loop in a thread of its own; Trio never runs asyncio.  A call is submitted with
``Client.submit``, which only queues a message for that loop (it does not block),
then a coroutine scheduled on the client's loop awaits the result and hands it
to Trio with `trio.lowlevel.TrioToken.run_sync_soon`: no thread per call, and
the Trio thread never waits on Dask.  The Client methods that block here
(cancel, restart) run in `trio.to_thread.run_sync`, bounded by a timeout.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError as FuturesCancelledError
from typing import Any, TypeVar, final

import attrs
import cloudpickle
import distributed
import outcome
import trio

from _trio_wf_worker._protocol import describe_callable

from .._errors import BrokenWorkerError
from ._worker_side import Call

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


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


class _Waiter:
    """The outcome of one submitted call, delivered to the waiting Trio task."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: outcome.Outcome[Any] | None = None

    def set(self, result: outcome.Outcome[Any]) -> None:
        self.result = result
        self.event.set()


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
        self, client: Any, token: trio.lowlevel.TrioToken, timeout: float
    ) -> None:
        self.client = client
        self.scheduler_address: str = client.scheduler.address
        self._token = token
        self._timeout = timeout
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
        waiter = _Waiter()
        self._running += 1
        try:
            future = self.client.submit(pickle.loads, payload, key=key, pure=False)
            self.client.loop.add_callback(self._fetch, future, waiter)
            if kill:
                try:
                    await waiter.event.wait()
                except trio.Cancelled:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self._kill, future)
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

    async def _fetch(self, future: Any, waiter: _Waiter) -> None:
        # Runs in the client's event loop thread.
        try:
            result: outcome.Outcome[Any] = outcome.Value(
                await self.client.gather(future, asynchronous=True)
            )
        except BaseException as exc:  # delivered to the Trio task, which decides
            result = outcome.Error(exc)
        del future  # releases the task's result on the cluster sooner
        try:
            self._token.run_sync_soon(waiter.set, result)
        except trio.RunFinishedError:  # pragma: no cover, the run was torn down
            pass

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

    def _kill(self, future: Any) -> None:
        """Cancel ``future``, and kill the worker process running it.

        Dask cannot interrupt a running task: cancelling the future only forgets
        its result.  So the worker's nanny restarts the worker process: it asks
        the worker to stop, kills it after a few seconds (a busy thread does not
        stop), and starts a new one.
        Runs in a thread: these Client calls block.
        """
        client = self.client
        processing = client.processing()
        running_on = [a for a, keys in processing.items() if future.key in keys]
        client.cancel([future], reason="kill_on_cancel")
        if not running_on:  # still queued, or already finished: nothing runs
            return
        try:
            # Waits for the replacement, so that the next call cannot be sent
            # to the dying worker.
            client.restart_workers(running_on, timeout=self._timeout)
        except Exception as exc:
            msg = (
                f"could not restart the dask worker {running_on[0]} that runs a "
                f"cancelled call (kill_on_cancel=True needs workers with nannies)"
            )
            raise BrokenWorkerError(msg, address=running_on[0]) from exc

    def _close(self) -> None:
        self._closed = True


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
