"""Idle-priority busy loops that keep every vCPU awake while latency is measured.

An idle vCPU halts, and waking it costs tens of microseconds on every cross-process
round trip, whatever library makes it.  One ``SCHED_IDLE`` spinner per CPU keeps the
CPUs running without taking time from anything else: any normal task preempts it.

Spinners never outlive the benchmark: they are killed in a ``finally``, and each asks
Linux to SIGKILL it if its parent dies (``PR_SET_PDEATHSIG``), so not even a
SIGKILLed benchmark leaks one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SPINNER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent died before prctl took effect
os.sched_setaffinity(0, {int(sys.argv[2])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
sys.stdout.write("spinning\\n")
sys.stdout.flush()
while True:
    pass
"""


@contextmanager
def spinners(enabled: bool = True) -> Iterator[list[int]]:
    """Run one SCHED_IDLE spinner per CPU for the block; yield their pids."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if enabled:
            for cpu in sorted(os.sched_getaffinity(0)):
                process = subprocess.Popen(
                    [sys.executable, "-c", _SPINNER, str(os.getpid()), str(cpu)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                )
                processes.append(process)
            for process in processes:
                assert process.stdout is not None
                # Wait until it runs at idle priority, before anything is timed.
                if process.stdout.readline() != b"spinning\n":
                    msg = f"spinner {process.pid} failed to start"
                    raise RuntimeError(msg)
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def spinners_alive(pids: list[int]) -> list[int]:
    """Return the pids that still exist (for the no-leak check)."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive
