"""Helpers shared by the test modules (not tests themselves)."""

from __future__ import annotations

import time
from typing import Any

import psutil
import trio


async def wait_event(event: Any) -> None:
    """Wait for a multiprocessing (manager) event without blocking trio."""
    with trio.fail_after(20):
        await trio.to_thread.run_sync(event.wait, abandon_on_cancel=True)


async def wait_until_exited(pid: int) -> None:
    """Poll (bounded) until ``pid`` is a zombie or gone: it died from outside."""
    with trio.fail_after(10):
        while True:
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            await trio.sleep(0.01)


#: Pids of long-lived processes a module fixture started (a Dask cluster): the
#: leak check of each test ignores them and their descendants (replacement
#: workers), and the fixture itself makes sure they are all gone at its end.
SHARED_PROCESS_ROOTS: set[int] = set()


def is_shared(process: psutil.Process) -> bool:
    """Whether ``process`` is one of `SHARED_PROCESS_ROOTS` or descends from one."""
    try:
        lineage = [process, *process.parents()]
    except psutil.NoSuchProcess:
        return False
    return any(p.pid in SHARED_PROCESS_ROOTS for p in lineage)


def assert_all_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Every pid exits within ``timeout`` (they are not our children: poll)."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if psutil.pid_exists(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if psutil.pid_exists(p)]
    assert not alive, f"worker processes still alive: {alive}"


def read_terminal(master: int, timeout: float = 60) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it
    (``master`` is closed then), as text."""
    import os
    import select

    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        os.close(master)
    return output.decode("utf-8", "replace")
