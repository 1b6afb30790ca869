"""Fixtures shared by the whole suite, including the leak checks every test passes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.managers import SyncManager

import psutil
import pytest

import trio_wf
from trio_wf import _defaults, _proc


def _fds() -> set[str]:
    """Open descriptors other than sockets and /proc files: pipes, pidfds, files.

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
        # poll their workers' /proc/<pid>/stat through psutil).
        if not target.startswith(("socket:", "/proc/")):
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
    fds_before = _fds()
    yield
    reset_default_context()
    new = [p for p in me.children(recursive=True) if p.pid not in children_before]
    # A zombie child of ours means we forgot to reap it.
    zombies = [p for p in me.children() if _status(p) == psutil.STATUS_ZOMBIE]
    _, alive = psutil.wait_procs(new, timeout=10)
    assert not zombies, f"child processes never reaped: {zombies}"
    assert not alive, f"child processes left behind: {alive}"
    extra = _fds() - fds_before
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
