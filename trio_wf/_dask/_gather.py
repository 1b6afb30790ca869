"""Calls go out and come back in batches: one message, one gather, for many.

Each ``Client.submit`` is a graph update of its own for the scheduler, and each
gather a round trip: measured on a 2-core machine with a few hundred no-op
calls, 3 ms of the client's and an in-process scheduler's CPU per call, which
a small machine takes from its workers, so a graph of many short nodes keeps
them less busy.  `Batches` submits the calls made in one pass of the Trio
scheduler together (``Client.map``, one graph update), waits on the client's
loop for each future to finish (no round trip: the scheduler reports it), and
gathers what finished since the last gather in one call.
"""

from __future__ import annotations

import pickle
from typing import Any

import outcome
import trio


class Waiter:
    """The outcome of one submitted call, delivered to the waiting Trio task."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: outcome.Outcome[Any] | None = None

    def set(self, result: outcome.Outcome[Any]) -> None:
        self.result = result
        self.event.set()


class Submission:
    """One call: its key, its future once submitted, its outcome's `Waiter`."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.future: Any = None
        self.waiter = Waiter()


class Batches:
    """Submits a client's calls and gathers their results in batches, for Trio."""

    def __init__(self, client: Any, token: trio.lowlevel.TrioToken) -> None:
        self._client = client
        self._token = token
        self._pending: list[tuple[bytes, Submission]] = []
        self._finished: list[tuple[Any, Waiter]] = []
        self._gathering = False

    def submit(self, payload: bytes, key: str) -> Submission:
        """Submit ``pickle.loads(payload)`` as task ``key`` (from the Trio thread).

        It goes out with the other calls made before the Trio scheduler's
        next pass, when ``run_sync_soon`` callbacks run.
        """
        submission = Submission(key)
        self._pending.append((payload, submission))
        if len(self._pending) == 1:
            self._token.run_sync_soon(self._flush)
        return submission

    def withdraw(self, submission: Submission) -> bool:
        """Drop ``submission`` if it has not gone out yet; whether it was."""
        for n, (_, pending) in enumerate(self._pending):
            if pending is submission:
                del self._pending[n]
                return True
        return False

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            futures = self._client.map(
                pickle.loads,
                [payload for payload, _ in pending],
                key=[submission.key for _, submission in pending],
                pure=False,
            )
        except Exception as exc:  # a closed client: each call gets the error
            for _, submission in pending:
                submission.waiter.set(outcome.Error(exc))
            return
        for (_, submission), future in zip(pending, futures, strict=True):
            submission.future = future
            self.add(future, submission.waiter)

    def add(self, future: Any, waiter: Waiter) -> None:
        """Give ``future``'s outcome to ``waiter`` (call from the Trio thread)."""
        self._client.loop.add_callback(self._wait, future, waiter)

    async def _wait(self, future: Any, waiter: Waiter) -> None:
        # On the client's loop.  Dask's own wait() waits on this event: it is
        # set when the scheduler reports the task done, with no round trip.
        await future._state.wait()
        self._finished.append((future, waiter))
        if not self._gathering:
            self._gathering = True
            # After the callbacks already queued: the futures the scheduler
            # reported in the same message join this batch.
            self._client.loop.add_callback(self._gather)

    async def _gather(self) -> None:
        try:
            while self._finished:
                batch, self._finished = self._finished, []
                done = [(f, w) for f, w in batch if f.status == "finished"]
                # An error, a cancellation, a lost key: gathered on its own,
                # which raises what the caller must see.
                results = [(w, await _one(self._client, f)) for f, w in batch]
                if done:
                    results += await self._many(done)
                self._deliver([r for r in results if r[1] is not None])
        finally:
            self._gathering = False

    async def _many(
        self, done: list[tuple[Any, Waiter]]
    ) -> list[tuple[Waiter, outcome.Outcome[Any] | None]]:
        try:
            values = await self._client.gather([f for f, _ in done], asynchronous=True)
        except BaseException:  # one was lost meanwhile: each on its own, so
            # that every waiter gets an outcome (none may wait forever)
            return [(w, await _one(self._client, f, force=True)) for f, w in done]
        return [(w, outcome.Value(v)) for (_, w), v in zip(done, values, strict=True)]

    def _deliver(self, results: list[tuple[Waiter, Any]]) -> None:
        def set_all() -> None:
            for waiter, result in results:
                waiter.set(result)

        try:
            self._token.run_sync_soon(set_all)
        except trio.RunFinishedError:  # pragma: no cover, the run was torn down
            pass


async def _one(
    client: Any, future: Any, *, force: bool = False
) -> outcome.Outcome[Any] | None:
    """Gather ``future`` alone if it did not finish well (or ``force``)."""
    if future.status == "finished" and not force:
        return None
    try:
        return outcome.Value(await client.gather(future, asynchronous=True))
    except BaseException as exc:  # delivered to the Trio task, which decides
        return outcome.Error(exc)
