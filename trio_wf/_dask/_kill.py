"""Kill-on-cancel on a Dask cluster: release the call, kill its worker if it runs.

Dask cannot interrupt a running task, and a nanny's restart first asks the
worker to close, which waits seconds for a thread that never stops.  So
`release_or_kill` does it with the scheduler's, the worker's and the nanny's
own RPC handlers, on the client's event loop, in an order that leaves no window:

1. Ask the scheduler which worker, if any, the task was handed to, then cancel
   the future (the scheduler releases it).  A task still queued on the
   scheduler stops there: nothing is killed.
2. Tell that worker to free the key, then ask it whether a thread executes it.
   Both run on the worker's event loop, in that order: once the answer is "no",
   the task can no longer start there, and nothing is killed.
3. It runs.  Once the scheduler has released it (else removing the worker
   would reschedule it elsewhere), the nanny freezes the worker process
   (SIGSTOP), the scheduler removes the worker as an *expected* departure (the
   other tasks handed to it are rescheduled, not failed, and nothing new is
   sent to it), and the nanny kills the process (SIGKILL), then starts a
   replacement in the background, off the caller's path.  Frozen, the worker
   cannot act on the scheduler's "close": it would ask its nanny to close for
   good.  A worker without a nanny is removed, then killed through its own
   event loop; nothing replaces it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from typing import Any

#: Seconds between two checks that the scheduler has released a cancelled task
#: (the client sends the cancellation in its next batch, within milliseconds).
_POLL = 0.002
#: Seconds the scheduler may take to remove the worker; it is killed after that
#: in any case.
_UNREGISTER_TIMEOUT = 2.0


async def release_or_kill(client: Any, future: Any) -> str | None:
    """Cancel ``future``; if a worker executes its task, kill that worker.

    Runs on the client's event loop.  Returns the address of the killed worker,
    or None when nothing had to be killed.
    """
    key = future.key
    processing: dict[str, list[Any]] = await client.scheduler.processing()
    await client.cancel([future], asynchronous=True, reason="kill_on_cancel")
    address = next((w for w, keys in processing.items() if key in keys), None)
    if address is None:  # queued on the scheduler, or finished
        return None
    worker = client.rpc(address)
    stimulus_id = f"trio-wf-kill-on-cancel-{time.time()}"
    try:
        await worker.free_keys(keys=[key], stimulus_id=stimulus_id)
        if key not in await worker.call_stack(keys=[key]):
            return None  # it was waiting for a thread of that worker
        pid, stop, kill, identity = await asyncio.gather(
            _run(worker, os.getpid),
            # Signal numbers of the worker's system, which may not be ours.
            _run(worker, signal.Signals.__getitem__, "SIGSTOP"),
            _run(worker, signal.Signals.__getitem__, "SIGKILL"),
            client.scheduler.identity(),
        )
    except OSError:  # the worker is already gone
        return None
    # Polled: the scheduler announces no such change to a client.
    while await _state(client, key) == "processing":  # noqa: ASYNC110, remote state
        await asyncio.sleep(_POLL)
    nanny = identity["workers"].get(address, {}).get("nanny")
    server = worker if nanny is None else client.rpc(nanny)
    # Shielded: a timeout of the caller must never leave the worker frozen.
    signals = (int(stop), int(kill)) if nanny is not None else (None, int(kill))
    await asyncio.shield(_remove_and_kill(client, address, server, pid, *signals))
    return address


async def _remove_and_kill(
    client: Any, address: str, server: Any, pid: int, stop: int | None, kill: int
) -> None:
    """Freeze the worker process (if ``stop``), remove it, then kill it."""
    if stop is not None:
        await _run(server, os.kill, pid, stop)
    try:
        await asyncio.wait_for(
            client.scheduler.unregister(
                address=address,
                stimulus_id=f"trio-wf-kill-on-cancel-{time.time()}",
                expected=True,
            ),
            _UNREGISTER_TIMEOUT,
        )
    finally:
        try:
            await _run(server, os.kill, pid, kill)
        except OSError:  # without a nanny: the connection dies with the worker
            pass


async def _state(client: Any, key: str) -> str | None:
    states = await client.scheduler.get_task_status(keys=[key])
    return states.get(key)  # type: ignore[no-any-return]


async def _run(server: Any, function: Any, *args: Any) -> Any:
    """``function(*args)`` on a worker's or a nanny's event loop (``Client.run``)."""
    # Plain pickle: these are all importable by name where they run.
    response = await server.run(
        function=pickle.dumps(function), args=pickle.dumps(args)
    )
    if response["status"] != "OK":
        raise RuntimeError(response.get("exception", response))
    return response["result"]
