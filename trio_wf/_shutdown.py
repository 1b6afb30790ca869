"""Stopping a pool's workers: the grace period, the kills, and the report of
the workers that did not exit cleanly.

Two twins, one for trio (closing a context) and one without it (interpreter
exit, replacing the default context): both give every worker until one shared
deadline to exit after its shutdown, kill the rest, reap them all and raise one
`BrokenWorkerError` naming each failure.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from typing import Any

import trio

from ._abc import AbstractWorker
from ._errors import BrokenWorkerError, WorkerExit

Workers = Sequence[AbstractWorker[Any]]


async def stop_workers(workers: Workers, excused: Sequence[bool], grace: float) -> None:
    """Stop ``workers`` (already shut down) within ``grace`` seconds.

    ``excused[i]`` says that ``workers[i]`` died before the shutdown began, so
    its exit status is not reported.  Shield the call: the kills and reaps must
    finish.

    Raises:
        BrokenWorkerError: naming the workers killed or not exiting cleanly.
    """
    with trio.move_on_after(grace):
        for worker in workers:
            await worker.wait()
    killed = [worker.kill() for worker in workers]
    exits = [await worker.reap() for worker in workers]
    _raise_if_unclean(exits, excused, killed, grace)


def stop_workers_blocking(
    workers: Workers, excused: Sequence[bool], grace: float
) -> None:
    """`stop_workers` without trio."""
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.wait_blocking(max(deadline - time.monotonic(), 0))
    killed = [worker.kill() for worker in workers]
    exits = [worker.reap_blocking() for worker in workers]
    _raise_if_unclean(exits, excused, killed, grace)


def _raise_if_unclean(
    exits: Sequence[WorkerExit],
    excused: Sequence[bool],
    killed: Sequence[bool],
    grace: float,
) -> None:
    # Workers we had to kill are reported, and so are bad exit statuses, except
    # those of workers that died before the shutdown began (a call would have
    # pruned them) or were terminated by SIGTERM: asked to stop, typically with the
    # whole process group by a service manager, which is no failure of ours
    # (trio-parallel#348).
    details = []
    bad = []
    for exit_, was_excused, was_killed in zip(exits, excused, killed, strict=True):
        if was_killed:
            details.append(
                f"worker process {exit_.pid} was killed after the {grace}s grace period"
            )
        elif exit_.exitcode in (0, -signal.SIGTERM) or was_excused:
            continue
        else:
            details.append(exit_.describe())
        bad.append(exit_)
    if not bad:
        return
    msg = (
        f"graceful shutdown failed: {len(bad) - sum(killed)} worker(s) exited "
        f"uncleanly and {sum(killed)} were killed: {'; '.join(details)}"
    )
    raise BrokenWorkerError(msg, *bad)
