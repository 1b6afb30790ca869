"""Functions that tests send to worker processes.

They live in an importable module (``tests.workers``), so plain pickle sends them by
reference; tests that need pickling by value define their functions elsewhere.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import subprocess
import sys
import time
from typing import Any

_init_calls = 0
_jobs = 0


def pid() -> int:
    return os.getpid()


def add(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


def raise_chain() -> None:
    try:
        raise KeyError("inner cause")
    except KeyError as exc:
        raise ValueError("outer", 42) from exc


def block(started: Any, release: Any, done: Any | None = None) -> int:
    """Set ``started``, wait for ``release``, set ``done``; return the pid."""
    started.set()
    release.wait()
    if done is not None:
        done.set()
    return os.getpid()


def started_then_sleep(started: Any, seconds: float = 3600) -> None:
    started.set()
    time.sleep(seconds)


def exit_now(code: int) -> None:
    sys.stdout.flush()
    os._exit(code)


def segfault() -> None:
    faulthandler.disable()  # keep the test output quiet
    os.kill(os.getpid(), signal.SIGSEGV)


def raise_sigint() -> str:
    signal.raise_signal(signal.SIGINT)
    return "survived"


def sigint_disposition() -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def count_init() -> None:
    global _init_calls
    _init_calls += 1


def init_calls() -> tuple[int, int]:
    return os.getpid(), _init_calls


def failing_init() -> None:
    raise RuntimeError("init exploded")


def bad_retire() -> bool:
    raise AssertionError("retire exploded")


def loopy_retire() -> bool:
    # Stands for a retire that never returns; the grace period must end it.
    time.sleep(3600)
    return True


def modules_loaded() -> list[str]:
    return sorted(sys.modules)


def square(x: int) -> int:
    return x * x


def use_process_pools() -> list[int]:
    """Start a subprocess and two kinds of process pools from inside a worker."""
    import concurrent.futures
    import multiprocessing

    out = subprocess.run(
        [sys.executable, "-c", "print(6 * 7)"], capture_output=True, check=True
    )
    results = [int(out.stdout)]
    for method in ("spawn", "forkserver", "fork"):
        ctx = multiprocessing.get_context(method)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            results.append(sum(pool.map(square, range(4))))
        with ctx.Pool(2) as mp_pool:
            results.append(sum(mp_pool.map(square, range(4))))
    return results


def open_fds() -> list[int]:
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


def fail_on(bad: int, x: int) -> int:
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def sleep_and_return(x: float) -> float:
    time.sleep(x)
    return x


def record_start(path: str) -> None:
    """An init that logs each worker start to ``path``."""
    with open(path, "a") as log:
        log.write(f"{os.getpid()}\n")


def echo(value: Any) -> Any:
    return value


def with_copies(data: bytes) -> tuple[bytes, int, list[bytes]]:
    """A tuple result holding large bytes at its top level and one level down."""
    return data, len(data), [data, data[:100]]


class Keeper:
    """Keeps the very buffer it is unpickled with (pickle protocol 5)."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return Keeper, (pickle.PickleBuffer(bytes(self.buffer)),)


_kept: list[Keeper] = []


def keep(keeper: Keeper) -> Keeper:
    _kept.append(keeper)
    return keeper


def kept() -> list[bytes]:
    return [bytes(k.buffer) for k in _kept]


def arena_rss() -> int:
    """Bytes of this process's mappings of worker arenas that are in memory."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                inside = "trio_wf-arena" in line
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def minor_faults() -> int:
    """This process's minor page faults so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def mappings_of_size(size: int, pid: int | str = "self") -> int:
    """How many anonymous mappings of exactly ``size`` bytes a process has."""
    count = 0
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(n, 16) for n in fields[0].split("-"))
            count += end - start == size and len(fields) == 5
    return count


#: Environment variables that fix glibc's mmap threshold.
MALLOC_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "GLIBC_TUNABLES",
)


def malloc_settings() -> list[str]:
    """The `MALLOC_SETTINGS` in this process's environment at start-up (which is
    when glibc reads them)."""
    with open("/proc/self/environ", "rb") as environ:
        entries = environ.read().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in entries}
    return [name for name in MALLOC_SETTINGS if name in names]


def limit_file_size() -> None:
    """An init: files (the shared memory arena too) may not grow past 1 MiB."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))


def zeros(size: int) -> bytes:
    return bytes(size)


def pid_and_arena_mappings() -> tuple[int, int]:
    """This worker's pid, and how many worker arenas it has mapped."""
    with open("/proc/self/maps") as maps:
        return os.getpid(), sum("trio_wf-arena" in line for line in maps)


def sleep_and_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class Box:
    def same(self, other: object) -> bool:
        return self is other
