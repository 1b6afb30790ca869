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
import uuid
from typing import Any

import outcome
import trio

from _trio_wf_worker._fused import run_fused

from ._fuse import SLICE, Shared, expand, regroup, split, worker_threads


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

    def __init__(self, payload: bytes, key: str) -> None:
        self.payload = payload
        self.key = key
        self.future: Any = None
        #: The task it shares with other calls, if it does.
        self.shared: Shared[Submission] | None = None
        self.waiter = Waiter()


#: What waits for a future: one call's waiter, or the calls sharing its task.
_Target = Waiter | Shared[Submission]


class Batches:
    """Submits a client's calls and gathers their results in batches, for Trio."""

    def __init__(
        self, client: Any, token: trio.lowlevel.TrioToken, *, share: bool = False
    ) -> None:
        self._client = client
        self._token = token
        #: Whether calls made at once may share tasks (`._fuse`).
        self._sharing = share
        self._pending: list[Submission] = []
        self._finished: list[tuple[Any, _Target]] = []
        self._gathering = False

    def submit(self, payload: bytes, key: str) -> Submission:
        """Submit ``pickle.loads(payload)`` as task ``key`` (from the Trio thread).

        It goes out with the other calls made before the Trio scheduler's
        next pass, when ``run_sync_soon`` callbacks run.
        """
        submission = Submission(payload, key)
        self._queue(submission)
        return submission

    def _queue(self, submission: Submission) -> None:
        self._pending.append(submission)
        if len(self._pending) == 1:
            self._token.run_sync_soon(self._flush)

    def withdraw(self, submission: Submission) -> Any:
        """Cancel ``submission``: the future to release, or None if none is.

        None if it had not gone out yet, or if it shares its task with calls
        still waiting (which the task runs on; its own outcome is dropped).
        """
        for n, pending in enumerate(self._pending):
            if pending is submission:
                del self._pending[n]
                return None
        shared = submission.shared
        if shared is not None:
            shared.waiting.discard(id(submission))
            if shared.waiting:
                return None
        return submission.future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and self._sharing:
            self._send(split(pending, worker_threads(self._client)))
        elif pending:
            self._send([[submission] for submission in pending])

    def _send(self, groups: list[list[Submission]]) -> None:
        """Submit each group as one task: a call alone, or calls that share it."""
        alone = [group[0] for group in groups if len(group) == 1]
        try:
            futures = self._client.map(
                pickle.loads,
                [submission.payload for submission in alone],
                key=[submission.key for submission in alone],
                pure=False,
            )
            for group in groups:
                if len(group) > 1:
                    self._share(group)
        except Exception as exc:  # a closed client: each call gets the error
            for group in groups:
                for submission in group:
                    submission.waiter.set(outcome.Error(exc))
            return
        for submission, future in zip(alone, futures, strict=True):
            submission.future = future
            submission.shared = None
            self.add(future, submission.waiter)

    def _share(self, group: list[Submission]) -> None:
        shared = Shared(group)
        shared.future = self._client.submit(
            run_fused,
            [submission.payload for submission in group],
            SLICE,
            key=f"shared-{len(group)}-{uuid.uuid4().hex}",
            pure=False,
        )
        for submission in group:
            submission.future = shared.future
            submission.shared = shared
        self.add(shared.future, shared)

    def add(self, future: Any, target: _Target) -> None:
        """Give ``future``'s outcome to ``target`` (call from the Trio thread)."""
        self._client.loop.add_callback(self._wait, future, target)

    async def _wait(self, future: Any, target: _Target) -> None:
        # On the client's loop.  Dask's own wait() waits on this event: it is
        # set when the scheduler reports the task done, with no round trip.
        await future._state.wait()
        self._finished.append((future, target))
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
        self, done: list[tuple[Any, _Target]]
    ) -> list[tuple[_Target, outcome.Outcome[Any] | None]]:
        try:
            values = await self._client.gather([f for f, _ in done], asynchronous=True)
        except BaseException:  # one was lost meanwhile: each on its own, so
            # that every waiter gets an outcome (none may wait forever)
            return [(w, await _one(self._client, f, force=True)) for f, w in done]
        return [(w, outcome.Value(v)) for (_, w), v in zip(done, values, strict=True)]

    def _deliver(self, results: list[tuple[_Target, Any]]) -> None:
        def set_all() -> None:
            for target, result in results:
                if isinstance(target, Waiter):
                    target.set(result)
                    continue
                delivered, rest = expand(target, result)
                for submission, each in delivered:
                    target.waiting.discard(id(submission))
                    submission.waiter.set(each)
                # Not reached in their slice: out again, unless cancelled.
                rest = [s for s in rest if id(s) in target.waiting]
                if rest:
                    threads = worker_threads(self._client)
                    self._send(regroup(rest, len(delivered), threads))

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
