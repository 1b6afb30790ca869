"""Fixtures shared by the whole suite, including the leak checks every test passes."""

from __future__ import annotations

import multiprocessing
import multiprocessing.resource_tracker
import os
import sys
from collections.abc import Iterator
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import psutil
import pytest

# Appended, not prepended: the checkout's trio_wf/ sits at its top level, and the
# tests must exercise the installed package (a file missing from the wheel fails
# them), while workers still import `tests.workers` and friends by name.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

import trio_wf  # noqa: E402
from tests.helpers import is_shared  # noqa: E402
from trio_wf import _defaults, _proc  # noqa: E402


def pytest_report_header() -> list[str]:
    """Say which trio_wf is under test, and refuse the checkout where nox asked."""
    where = Path(trio_wf.__file__).resolve().parent
    if os.environ.get("TRIO_WF_TEST_INSTALLED") and where.parent == ROOT:
        msg = (
            f"trio_wf was imported from the checkout ({where}), not the installed "
            "package: run pytest through its console script, not `python -m pytest`"
        )
        raise pytest.UsageError(msg)
    return [f"trio_wf {trio_wf.__version__} from {where}"]


def open_fds() -> set[str]:
    """Descriptors other than sockets, /proc files and sources: pipes, pidfds, files.

    Sockets are left out because multiprocessing manager proxies (our test events)
    open one connection per thread, and trio's thread cache keeps threads alive.
    Every descriptor trio_wf opens for a worker is a pipe, a pidfd or a memfd
    (its shared memory arena).
    """
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the directory's own descriptor, now closed
            continue
        # /proc files are read, briefly, by monitoring threads (Dask's nannies
        # poll their workers' /proc/<pid>/stat through psutil), and so are Python
        # sources (linecache, when Dask's event loop thread formats a traceback
        # or a warning while a test ends); trio_wf keeps neither open.
        if not target.startswith(("socket:", "/proc/")) and not target.endswith(".py"):
            fds.add(f"{fd} -> {target}")
    return fds


def arena_mappings() -> list[str]:
    """This process's mappings of worker arenas (which outlive their descriptor)."""
    with open("/proc/self/maps") as maps:
        return [line for line in maps if "trio_wf-arena" in line]


def reset_default_context() -> None:
    """Shut the default context's workers down and install a fresh one."""
    old = _defaults._default_context
    _defaults._default_context = _defaults._create_context(
        600.0, bool, bool, 30.0, trio_wf.WorkerType.SPAWN
    )
    old._pool.shutdown_blocking()


@pytest.fixture(scope="session", autouse=True)
def _forkserver() -> Iterator[None]:
    # Started once, up front, so that it (and its socket) predates every
    # per-test snapshot; like multiprocessing's, it lives as long as the process.
    _proc._get_forkserver()
    yield
    _proc.close_forkserver()


@pytest.fixture(scope="session")
def manager() -> Iterator[SyncManager]:
    """A multiprocessing manager: its Events work across our worker processes."""
    with multiprocessing.get_context("spawn").Manager() as m:
        yield m


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process or a file descriptor behind."""
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    fds_before = open_fds()
    yield
    reset_default_context()
    new = [
        p
        for p in me.children(recursive=True)
        if p.pid not in children_before and not is_shared(p)
    ]
    # A zombie child of ours means we forgot to reap it.
    zombies = [p for p in me.children() if _status(p) == psutil.STATUS_ZOMBIE]
    _, alive = psutil.wait_procs(new, timeout=10)
    assert not zombies, f"child processes never reaped: {zombies}"
    assert not alive, f"child processes left behind: {alive}"
    extra = open_fds() - fds_before
    assert not extra, f"file descriptors left open: {sorted(extra)}"
    assert not arena_mappings(), "a worker's shared memory arena is still mapped"


def _status(p: psutil.Process) -> str | None:
    try:
        return p.status()  # type: ignore[no-any-return]
    except psutil.NoSuchProcess:
        return None


@pytest.fixture(params=list(trio_wf.WorkerType), ids=lambda t: t.value)
def worker_type(request: pytest.FixtureRequest) -> trio_wf.WorkerType:
    """Parametrizes a test over every worker type."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def quiet_dask() -> Iterator[None]:
    """Dask set up for the leak checks; the Dask test modules use it for all."""
    import dask

    # The nannies' multiprocessing queues start the resource tracker, a child
    # that lives as long as we do: start it before the first leak snapshot.
    multiprocessing.resource_tracker.ensure_running()
    # In-process schedulers read /proc/<pid>/stat every 0.5 s, from their loop
    # thread: that descriptor, open at the wrong instant, fails the fd check.
    with dask.config.set({"distributed.admin.system-monitor.interval": "1h"}):
        yield


@pytest.fixture(scope="module")
def cluster(quiet_dask: None) -> Iterator[Any]:
    """A LocalCluster of 2 workers shared by a module; it predates every leak
    snapshot."""
    distributed = pytest.importorskip("distributed")
    from tests.dask_scenarios import SMALL

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        **SMALL,
    ) as local:
        yield local
