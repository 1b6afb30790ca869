"""`ChainRun`: a chain of calls in one Dask task, each given the previous result.

A chain submitted as one task per call pays, per call, a round trip between
the worker that ends a call and the scheduler that starts the next, and a
gather: for calls of a few milliseconds, more than the calls.  Here the calls
run in one task (`_trio_wf_worker._fused.run_fused`) for a slice of time at
most (`._fuse.CHAIN_SLICE`); what the slice did not reach goes out again,
given the value of the last call that ran.  Each call keeps its own outcome,
which comes back with its slice, and the time it ran there.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import cloudpickle
import distributed
import outcome
import trio

from _trio_wf_worker._fused import run_fused

from ._fuse import CHAIN_SLICE, loads_outcome
from ._gather import Batches, Waiter
from ._worker_side import Call


class _Context(Protocol):
    """What a chain uses of its `._context.DaskContext`."""

    client: Any
    _batches: Batches
    _running: int

    async def _release_or_kill(self, future: Any, fn: Any) -> None: ...

    def _unwrap(self, result: outcome.Outcome[Any], fn: Any, key: str) -> Any: ...


class ChainRun:
    """The calls of one chain on the cluster; from `DaskContext.start_chain`."""

    def __init__(
        self,
        context: _Context,
        calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
    ) -> None:
        self._context = context
        self._functions = [fn for fn, _ in calls]
        name = getattr(calls[0][0], "__name__", None) or "chain"
        self._key = f"{name}-chain-{uuid.uuid4().hex}"
        # The first call runs as it unpickles; the others are functions of
        # the value before them.
        self._payloads = [
            cloudpickle.dumps(
                Call(fn, args) if n == 0 else functools.partial(fn, *args)
            )
            for n, (fn, args) in enumerate(calls)
        ]
        self._outcomes: list[outcome.Outcome[Any]] = []
        # Seconds each call ran on its worker (None: its task failed whole).
        self._durations: list[float | None] = []
        self._done = 0
        self._future: Any = None
        self._waiter = Waiter()
        self._slice = CHAIN_SLICE
        self._previous: tuple[Any, ...] = ()
        context._running += len(calls)
        self._submit(())

    def _submit(self, previous: tuple[Any, ...]) -> None:
        """Send the calls with no outcome yet, after ``previous``'s value."""
        start = len(self._outcomes)
        self._waiter = Waiter()
        self._previous = previous
        self._future = self._context.client.submit(
            run_fused,
            self._payloads[start:],
            self._slice,
            True,
            previous,
            key=f"{self._key}-{start}-{self._slice}",
            pure=False,
        )
        self._context._batches.add(self._future, self._waiter)

    async def result(self, n: int) -> Any:
        """The result of call ``n``, once the calls before it have returned.

        Raises what the call raised (as `DaskContext.run_sync` does), or
        `trio.Cancelled` after killing the worker that runs it.
        """
        assert n == self._done, "the calls of a chain are awaited in order"
        fn = self._functions[n]
        try:
            while n >= len(self._outcomes):
                # After a failure nothing more runs: the walker stops there.
                assert self._future is not None, "a call after a failed one"
                await self._next_slice()
        except trio.Cancelled:
            await self._context._release_or_kill(self._future, fn)
            raise
        finally:
            self._done += 1
            self._context._running -= 1
        return self._context._unwrap(self._outcomes[n], fn, self._key)

    async def _next_slice(self) -> None:
        """Wait for the slice that runs now, and send the rest on its way."""
        await self._waiter.event.wait()
        result = self._waiter.result
        assert result is not None
        self._future = None
        missing = len(self._payloads) - len(self._outcomes)
        if (
            isinstance(result, outcome.Error)
            and isinstance(result.error, distributed.KilledWorker)
            and self._slice
            and missing > 1
        ):
            # Its worker died, in one of the slice's calls: run them again one
            # to a task (a slice of 0 s ends after the first), so that the
            # error names the call that kills its worker (see `._fuse.expand`).
            self._slice = 0.0
            self._submit(self._previous)
            return
        if isinstance(result, outcome.Error):
            # The task failed as a whole: its worker died, it was cancelled.
            self._outcomes += [result] * missing
            self._durations += [None] * missing
            return
        outcomes = result.unwrap()
        self._outcomes += [loads_outcome(ok, blob) for ok, blob, _, _ in outcomes]
        self._durations += [ended - began for _, _, began, ended in outcomes]
        last = self._outcomes[-1]
        if len(self._outcomes) < len(self._payloads) and isinstance(
            last, outcome.Value
        ):
            self._submit((last.value,))

    def duration(self, n: int) -> float | None:
        """Seconds call ``n`` ran on its worker, once it returned (or None)."""
        return self._durations[n] if n < len(self._durations) else None

    def close(self) -> None:
        """Release the calls not awaited (after an error, or a cancellation)."""
        rest = len(self._payloads) - self._done
        self._context._running -= rest
        self._done = len(self._payloads)
        if rest and self._future is not None:
            client = self._context.client
            client.loop.add_callback(
                functools.partial(client.cancel, [self._future], asynchronous=True)
            )
        self._future = None
