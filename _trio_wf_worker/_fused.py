"""Several calls in one Dask task, for a time slice: fewer round trips, same outcomes.

A Dask task costs milliseconds of the scheduler's and the worker's time, and a
call that depends on another a round trip between them: for calls of a few
milliseconds, more than the calls themselves.  `run_fused` runs a list of calls
in one task, one after the other, until the list ends or ``budget`` seconds
have passed (a call is never interrupted): the client sends the calls it did
not reach again, so a slice stays short and each call's outcome comes back
soon after it ends.  Each call's outcome is pickled on its own, here: a value
or an exception that cannot be pickled fails that call only, not its slice.
Standard library only, as the rest of this package.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from typing import Any

from ._protocol import dumps, dumps_exception

#: What `run_fused` returns per call it ran: whether it succeeded, the pickled
#: value or exception, and when it started and ended (the worker's
#: ``time.perf_counter``).
Outcome = tuple[bool, bytes, float, float]


def run_fused(
    payloads: Sequence[bytes],
    budget: float,
    chained: bool = False,
    previous: tuple[Any, ...] = (),
) -> list[Outcome]:
    """Run the calls ``payloads`` pickle, in order, for ``budget`` seconds.

    Unpickling a payload makes its call: ``pickle.loads`` of a
    ``trio_wf._dask._worker_side.Call`` runs it.  With ``chained``, each payload
    after the first unpickles to a function instead, called with the value of
    the call before it, and the first failure ends the run; so does the first
    one if ``previous`` holds the value it follows.

    Returns:
        an `Outcome` for each call that ran, the first ones of ``payloads``.
    """
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    carried = previous
    for n, payload in enumerate(payloads):
        if n and time.perf_counter() - start >= budget:
            break
        began = time.perf_counter()
        try:
            value = pickle.loads(payload)
            if chained and carried:
                value = value(*carried)
            blob, ok = dumps(value), True
        except BaseException as exc:  # the caller's to see, as Dask would
            blob, ok = dumps_exception(exc), False
        outcomes.append((ok, blob, began, time.perf_counter()))
        if chained:
            if not ok:
                break
            carried = (value,)
    return outcomes
