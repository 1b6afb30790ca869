"""Worker-side helpers for the fault matrix (``tests/test_faults.py``).

Objects that fail, exit or crash at one precise point of a call's journey, in the
style of CPython's ``test_concurrent_futures/test_deadlock.py``:

* `FailAtPickle` fails in ``__reduce__``, i.e. where it is *pickled*: in the parent
  when passed as an argument, in the worker when returned as a result;
* `FailAtUnpickle` pickles fine and fails in ``__setstate__``, i.e. where it is
  *unpickled*: in the worker for an argument, in the parent for a result.

``how`` says what failing means: ``"error"`` raises `FaultError`, ``"exit"``
calls ``os._exit(FAULT_EXIT_CODE)``, ``"sys.exit"`` raises `SystemExit` and
``"crash"`` segfaults.  Only ``"error"`` (and ``"sys.exit"``) may ever run in
the test process itself.

The module is importable as ``tests.fault_workers``, so plain pickle sends its
functions and classes by reference; every worker type can import it.
"""

from __future__ import annotations

import faulthandler
import fcntl
import os
import signal
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

FAULT_EXIT_CODE = 77
HOWS = ("error", "exit", "sys.exit", "crash")


class FaultError(Exception):
    """Raised on purpose by ``fail("error", ...)``."""


def fail(how: str, where: str) -> None:
    """Fail at ``where`` in the way ``how`` names (see the module docstring)."""
    if how == "error":
        msg = f"{where} failed on purpose in process {os.getpid()}"
        raise FaultError(msg)
    if how == "sys.exit":
        sys.exit(FAULT_EXIT_CODE)
    sys.stdout.flush()
    sys.stderr.flush()
    if how == "exit":
        os._exit(FAULT_EXIT_CODE)
    if how == "crash":
        faulthandler.disable()  # keep the test output quiet
        os.kill(os.getpid(), signal.SIGSEGV)
    msg = f"unknown way to fail: {how!r}"
    raise ValueError(msg)


class FailAtPickle:
    """Fails (in the process that pickles it) as soon as it is pickled."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __reduce__(self) -> Any:
        fail(self.how, "pickling FailAtPickle")


class FailAtUnpickle:
    """Pickles fine, then fails in ``__setstate__`` where it is unpickled."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        fail(self.how, "unpickling FailAtUnpickle")


def return_instance(cls: type, how: str) -> object:
    """Build ``cls(how)`` in the worker and return it: the result is the fault."""
    return cls(how)


def take(arg: object) -> int:
    """A job that takes one argument (the fault is in unpickling it)."""
    return os.getpid()


# Exceptions that cannot make the trip back -------------------------------------


class LockedError(Exception):
    """An exception holding a lock: it cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_locked(message: str) -> None:
    raise LockedError(message)


class CrashAtPickleError(Exception):
    """An exception whose pickling kills the worker (exit or segfault)."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how

    def __reduce__(self) -> Any:
        fail(self.how, "pickling CrashAtPickleError")


def raise_crash_at_pickle(how: str) -> None:
    raise CrashAtPickleError(how)


class FailAtUnpickleError(Exception):
    """An exception that pickles fine and fails to unpickle in the parent."""

    def __reduce__(self) -> Any:
        return fail, ("error", "unpickling FailAtUnpickleError")


def raise_fail_at_unpickle() -> None:
    raise FailAtUnpickleError("raised in the worker")


# Results that cannot make the trip back -----------------------------------------


def make_generator() -> Iterator[int]:
    return (i for i in range(3))


# Large data ---------------------------------------------------------------------


def echo(data: bytes) -> bytes:
    return data


def length(data: bytes) -> int:
    return len(data)


def crash_with(data: bytes) -> None:
    """Segfault holding a large argument."""
    fail("crash", f"a job holding {len(data)} bytes")


def big_result(size: int) -> bytes:
    return bytes(size)


def started_then_wait(started: Any, release: Any) -> int:
    started.set()
    release.wait()
    return os.getpid()


def record_start(path: str) -> int:
    """Append this worker's pid to ``path``: proof that the job started."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    return os.getpid()


def terminate_self_when(retiring: Any, terminate: Any) -> bool:
    """A ``retire`` that waits for ``terminate``, then ends its worker by SIGTERM."""
    retiring.set()
    terminate.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    return False  # pragma: no cover, not reached


# Retirement with a fake memory probe --------------------------------------------

# The resident set size the patched probe reports, in this worker only.
_fake_rss = 100 * 2**20


def fake_rss_init() -> None:
    """``init`` that replaces `RetirePolicy`'s psutil probe with `_fake_rss`.

    `RetirePolicy` is final, so no subclass can override ``current_rss``; this
    patches the class in the worker process alone (the parent never runs it).
    """
    from _trio_wf_worker._policies import RetirePolicy

    RetirePolicy.current_rss = staticmethod(_fake_current_rss)  # type: ignore[method-assign]


def _fake_current_rss() -> int:
    return _fake_rss


def grow_fake_rss(nbytes: int) -> int:
    """Pretend this job leaked ``nbytes`` of memory; return the pid."""
    global _fake_rss
    _fake_rss += nbytes
    return os.getpid()


# Saturation: counting jobs that run at once, across processes --------------------

_COUNTERS = struct.Struct("<qq")  # jobs running now, most jobs ever running at once
_counter_fds: dict[str, int] = {}


def _bump(path: str, delta: int) -> None:
    fd = _counter_fds.get(path)
    if fd is None:
        fd = _counter_fds[path] = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        active, peak = _COUNTERS.unpack(os.pread(fd, _COUNTERS.size, 0))
        active += delta
        os.pwrite(fd, _COUNTERS.pack(active, max(peak, active)), 0)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def counted_square(path: str, x: int, barrier: Any = None) -> tuple[int, int]:
    """Return ``(pid, x * x)``, counting in ``path`` how many jobs run at once.

    A ``barrier`` (a manager Barrier) holds the job until another job has reached
    it, so that two jobs provably overlap.
    """
    _bump(path, +1)
    try:
        if barrier is not None:
            barrier.wait(timeout=20)
        return os.getpid(), x * x
    finally:
        _bump(path, -1)


def read_counters(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        active, peak = _COUNTERS.unpack(f.read(_COUNTERS.size))
    return active, peak


# Descriptors a worker holds -----------------------------------------------------


def fd_report() -> dict[str, Any]:
    """What this worker has open, and which of it it is meant to keep."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # listdir's own descriptor, closed by now
            continue
    std = []
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            std.append(stream.fileno())
        except (AttributeError, OSError, ValueError):
            pass
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    tracker_fd = None
    if tracker is not None:
        tracker_fd = getattr(tracker._resource_tracker, "_fd", None)
    return {"fds": fds, "std": std, "tracker": tracker_fd}


def pipe_only() -> None:
    """Send every large message through the pipe, as with no shared memory.

    An ``init`` for workers; tests patch the same names in the parent.
    """
    from _trio_wf_worker import _protocol, _shm

    _protocol.BUFFER_THRESHOLD = _shm.STREAM_THRESHOLD = sys.maxsize
