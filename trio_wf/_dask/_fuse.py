"""Many calls at once share a few Dask tasks, each running its calls for a slice.

A Dask task costs a few milliseconds of the scheduler's and a worker's CPU
(measured here with no-op calls: about 3 ms on a 2-core machine, which the
cluster takes from the calls): a workflow fan of 200 short nodes, one task
each, spends more on Dask than on its nodes.  When more calls go out at once
than `SHARED_PER_THREAD` tasks per worker thread, `Batches` gives them to that
many tasks (`split`), each running its calls in turn with
`_trio_wf_worker._fused.run_fused` for at most `SLICE` seconds: the calls a
task did not reach go out again (`expand`), so each outcome still comes back
within about a slice of its call's end, and a worker that finishes early finds
more to do.  Each call keeps its own outcome, error and waiter.
"""

from __future__ import annotations

import math
import pickle
from typing import Any, Generic, TypeVar

import distributed
import outcome

#: A call, as `._gather.Batches` keeps it.
C = TypeVar("C")

#: Seconds of calls one shared task runs before it returns what it has; the
#: rest go out again.  Long enough that Dask's cost per task is a few percent
#: of it, short enough that an outcome is not held back for long.
SLICE = 0.1
#: The slice of a chain's task (`._chain_run`): longer, since a chain has no
#: calls to spread over workers, only round trips to save.
CHAIN_SLICE = 0.25
#: Calls share tasks only when there are more than this many per worker thread
#: of the cluster, and then share this many tasks per thread: enough that a
#: worker never waits for the client between two of them.
SHARED_PER_THREAD = 2


class Shared(Generic[C]):
    """One Dask task that runs several calls in turn."""

    def __init__(self, members: list[C]) -> None:
        self.members = members
        #: The members still waiting for their outcome: not delivered, not
        #: cancelled.  The task is released (or its worker killed) only when
        #: none is left.
        self.waiting = set(map(id, members))
        self.future: Any = None


def worker_threads(client: Any) -> int:
    """The cluster's worker threads, as the client last heard (at least 1).

    ``Client.scheduler_info()`` would ask the scheduler, blocking the caller:
    the identity the client refreshes every few seconds is enough here.
    """
    info = getattr(client, "_scheduler_identity", None) or {}
    threads = info.get("total_threads")
    if not threads:
        workers = info.get("workers") or {}
        threads = sum(w.get("nthreads", 1) for w in workers.values())
    return max(int(threads or 1), 1)


def split(pending: list[C], threads: int) -> list[list[C]]:
    """Calls going out at once, in groups: one per task (a group of one alone)."""
    tasks = SHARED_PER_THREAD * threads
    if len(pending) <= tasks:
        return [[submission] for submission in pending]
    size = math.ceil(len(pending) / tasks)
    return [pending[n : n + size] for n in range(0, len(pending), size)]


def regroup(rest: list[C], ran: int, threads: int) -> list[list[C]]:
    """The calls a slice did not reach, in groups: as many as it ran (one if
    none), or fewer when few are left, so that every worker gets some."""
    size = min(ran, math.ceil(len(rest) / (SHARED_PER_THREAD * threads)))
    size = max(size, 1)
    return [rest[n : n + size] for n in range(0, len(rest), size)]


def expand(
    shared: Shared[C], result: outcome.Outcome[Any]
) -> tuple[list[tuple[C, outcome.Outcome[Any]]], list[C]]:
    """Each member's outcome from the shared task's, and the members it did not reach.

    A task whose worker died is not one call's failure: its calls go out again,
    each in a task of its own (`regroup` of what none ran), where only the one
    that kills its worker fails.  The calls that had ended in it run again, as
    Dask runs again the tasks of a worker it lost.  A task that failed
    otherwise (cancelled, the scheduler lost) gives every call its error.
    """
    if isinstance(result, outcome.Error):
        if isinstance(result.error, distributed.KilledWorker):
            return [], shared.members
        return [(member, result) for member in shared.members], []
    outcomes = result.unwrap()
    delivered: list[tuple[C, outcome.Outcome[Any]]] = []
    for member, (ok, blob, _, _) in zip(shared.members, outcomes, strict=False):
        delivered.append((member, loads_outcome(ok, blob)))
    return delivered, shared.members[len(outcomes) :]


def loads_outcome(ok: bool, blob: bytes) -> outcome.Outcome[Any]:
    """The outcome a call's pickled value or exception stands for."""
    try:
        value = pickle.loads(blob)
    except Exception as exc:  # the call's error: its value did not unpickle
        return outcome.Error(exc)
    return outcome.Value(value) if ok else outcome.Error(value)
