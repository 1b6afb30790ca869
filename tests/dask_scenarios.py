"""Fault scenarios run against each kind of Dask cluster the tests start.

Helpers, not tests: tests/test_dask.py runs them on LocalClusters, and
tests/test_dask_cli.py on a cluster of ``dask scheduler`` and ``dask worker``
processes over TLS, with the same assertions.  The time bounds are generous
for a loaded 2-core machine; benchmarks/dask_faults.py measures the figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_wf
from tests import workers
from tests.helpers import wait_event, wait_until_exited

#: Options of the LocalClusters the tests start.
SMALL = {"memory_limit": "512MiB", "silence_logs": 50}
#: Seconds a cancelled kill_on_cancel call, an interrupted or timed-out
#: ``trio-wf run`` may take to return or exit (measured: well under one).
PROMPT = 2.0
#: Seconds a replacement worker may take to join (its nanny spawns a process).
REPLACEMENT = 60.0


async def kill_on_cancel_returns_at_once(ctx: Any, manager: Any) -> None:
    """The worker running a cancelled kill_on_cancel call dies, the caller
    returns at once, and the next call runs on another worker process."""
    started, release, done = manager.Event(), manager.Event(), manager.Event()
    pid = -1
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def call() -> None:
                await ctx.run_sync(
                    workers.block, started, release, done, kill_on_cancel=True
                )

            nursery.start_soon(call)
            await wait_event(started)
            pid = await pid_of_running(ctx)
            cancelled_at = trio.current_time()
            scope.cancel()
    assert scope.cancelled_caught
    assert trio.current_time() - cancelled_at < PROMPT
    await wait_until_exited(pid)
    assert not done.is_set()
    with trio.fail_after(REPLACEMENT):
        assert await ctx.run_sync(os.getpid) != pid
    assert ctx.statistics().running_calls == 0


async def pid_of_running(ctx: Any) -> int:
    """The pid of the one worker that executes a task (it has a call stack)."""

    def find() -> int:
        stacks = ctx.client.call_stack()
        (address,) = (a for a, keys in stacks.items() if keys)
        return ctx.client.run(os.getpid, workers=[address])[address]  # type: ignore[no-any-return]

    with trio.fail_after(20):
        return await trio.to_thread.run_sync(find)


async def dead_worker_fails_its_call(ctx: Any) -> None:
    """A worker that dies fails its call at once with BrokenWorkerError naming
    it, and leaves the cluster; the next call runs."""
    with trio.fail_after(10), pytest.raises(trio_wf.BrokenWorkerError) as info:
        await ctx.run_sync(workers.exit_now, 42)
    address = info.value.address
    assert address is not None
    assert address in str(info.value)
    info_now = await trio.to_thread.run_sync(ctx.client.scheduler_info)
    assert address not in info_now["workers"]
    with trio.fail_after(REPLACEMENT):
        assert await ctx.run_sync(workers.add, 1, 2) == 3


def sleeping_graph(tmp_path: Path) -> tuple[Path, Path]:
    """A one-node graph whose task writes its pid to a FIFO, then sleeps."""
    fifo = tmp_path / "started"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    node = {
        "id": "a",
        "task_type": "method",
        "task_identifier": "tests.workflow.tasks.announce_and_sleep",
        "default_inputs": [{"name": "fifo", "value": str(fifo)}],
    }
    path = tmp_path / "sleepy.json"
    path.write_text(json.dumps({"graph": {"id": "sleepy"}, "nodes": [node]}))
    return path, fifo


def run_cli_and_stop(
    tmp_path: Path,
    address: str,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> int:
    """``trio-wf run --scheduler address`` on a node that sleeps, stopped by
    Ctrl+C (or ``--timeout``) once the node runs; returns the node's pid.

    It must exit 130 (124) within `PROMPT` seconds of the Ctrl+C (of the
    deadline), printing one line.
    """
    graph, fifo = sleeping_graph(tmp_path)
    command = [_trio_wf(), "run", str(graph), "--scheduler", address]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
        env=None if env is None else {**os.environ, **env},
    )
    try:
        with open(fifo) as ready:  # the readiness line: the worker's pid
            pid = int(ready.readline())
        stopped_at = time.monotonic()
        if timeout is None:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            stopped_at += timeout  # the deadline, counted from the node's start
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:  # pragma: no cover, only on failure
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == (130 if timeout is None else 124), err
    assert elapsed < PROMPT, (elapsed, err)
    assert out == ""
    assert len(err.splitlines()) == 1, err
    return pid


def _trio_wf() -> str:
    # The installed command, next to the interpreter running the tests.
    return str(Path(sys.executable).parent / "trio-wf")


async def nothing_runs_for(client: Any, pid: int) -> None:
    """The run's worker process is gone, and the cluster runs no task."""
    await wait_until_exited(pid)
    with trio.fail_after(20):
        while True:
            processing = await trio.to_thread.run_sync(client.processing)
            if not any(processing.values()):
                return
            await trio.sleep(0.05)


async def lost_scheduler_fails_the_call(
    ctx: Any, manager: Any, stop_scheduler: Callable[[], object]
) -> None:
    """Losing the scheduler fails the running call, naming the scheduler."""
    started, release = manager.Event(), manager.Event()
    address = ctx.scheduler_address

    async def call() -> None:
        with pytest.raises(trio_wf.BrokenWorkerError, match="scheduler") as info:
            await ctx.run_sync(workers.block, started, release)
        assert info.value.address == address

    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await wait_event(started)
                await trio.to_thread.run_sync(stop_scheduler)
    finally:
        release.set()
