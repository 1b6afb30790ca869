"""Contract tests of the fault matrix (``shared/faults.md``, rows 1-26 and 31).

Real workers under every worker type; whole-process rows (17-19) run a script in a
subprocess, with a timeout and in a session of its own.  Each test's docstring
starts with its row; the worker-side objects live in ``tests/fault_workers.py``.

Rows covered by other modules, and not repeated here (``tests/`` omitted):

* Row 1, segfault mid-task with a bystander call, and row 2, ``os._exit(42)``:
  ``test_run_sync.py::test_dead_worker_fails_only_its_call``
* Row 3, SIGKILL from outside: ``test_run_sync.py::test_externally_killed_worker``
* Row 4, idle worker dies: ``test_context.py::
  test_idle_worker_killed_externally_is_pruned`` (closing the context after such
  a death is tested here)
* Row 5, exception with traceback and cause: ``test_run_sync.py::
  test_exception_keeps_type_traceback_and_cause``, ``test_system_exit_is_reraised``
* Row 12, ``__main__`` functions and a script without a main guard:
  ``test_processes.py::test_main_functions_without_main_guard``
* Row 13, async function: ``test_run_sync.py::test_async_function_is_refused``
* Row 15, ``kill_on_cancel=False``: ``test_run_sync.py::
  test_kill_on_cancel_false_waits_for_the_result``
* Row 16, cancel while running: ``test_run_sync.py::
  test_kill_on_cancel_true_kills_the_worker`` (here too, with the other points)
* Row 17 with two calls and no queue: ``test_processes.py::
  test_ctrl_c_interrupts_once_and_leaves_no_worker``
* Row 20, interpreter exit: ``test_processes.py::
  test_interpreter_exit_shuts_workers_down``
* Row 21, retire loops: ``test_context.py::test_grace_period_then_kill``
* Row 22, retire raises: ``test_context.py::test_failing_retire_is_reported``
* Row 23, init raises: ``test_context.py::test_failing_init_fails_fast_with_its_cause``
* Row 26, invalid configuration: ``test_context.py::test_validation``,
  ``test_validation_of_default_context``
* Row 31, no trio in spawn and forkserver workers: ``test_run_sync.py::
  test_workers_import_no_trio``
"""

from __future__ import annotations

import collections
import functools
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
import trio.testing

import trio_wf
from _trio_wf_worker import _protocol, _shm
from _trio_wf_worker._protocol import HEADER
from trio_wf import BrokenWorkerError, WorkerContextStatistics, WorkerType
from trio_wf._channel import Channel
from trio_wf._worker import ProcessWorker

from . import fault_workers as fw, workers
from .conftest import open_fds
from .helpers import assert_all_gone as assert_gone, wait_event, wait_until_exited

BIG = 64 * 2**20  # bytes: 64 times the pipe buffer
# Scripts show ResourceWarnings (unclosed sockets, files...) on their stderr.
PYTHON = [sys.executable, "-W", "always::ResourceWarning"]


async def raised_by(ctx: trio_wf.WorkerContext, fn: Any, *args: Any) -> BaseException:
    """Run ``fn(*args)`` in ``ctx``, which must raise; return the exception."""
    with trio.fail_after(20), pytest.raises(BaseException) as info:
        await ctx.run_sync(fn, *args)
    return info.value


def assert_broken(error: BaseException, exitcode: int, fn_name: str) -> None:
    """``error`` reports the death of a worker, which is gone."""
    assert isinstance(error, BrokenWorkerError), repr(error)
    assert error.exitcode == exitcode
    assert error.pid is not None
    assert f"worker process {error.pid}" in str(error)
    assert fn_name in str(error)
    assert not psutil.pid_exists(error.pid)


async def assert_usable(ctx: trio_wf.WorkerContext, same_pid: int | None) -> None:
    """The context still works: on the same worker, or on a new one if None."""
    with trio.fail_after(20):
        pid = await ctx.run_sync(workers.pid)
    if same_pid is not None:
        assert pid == same_pid, "the worker was not reused"
    assert ctx.statistics() == WorkerContextStatistics(1, 0)


# Rows 6-11: each crash point of a call ---------------------------------------


@pytest.mark.parametrize("how", ["lock", *fw.HOWS])
async def test_row6_exception_pickling_error_or_crash(
    worker_type: WorkerType, how: str
) -> None:
    """Row 6: an exception that cannot be pickled comes back as a RemoteError with
    its type name, message and remote traceback, and the worker is reused; one
    whose pickling kills the worker is a BrokenWorkerError."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
        if how == "lock":
            error = await raised_by(ctx, fw.raise_locked, "holding a lock")
            type_name, message, frame = "LockedError", "holding a lock", "raise_locked"
        else:
            error = await raised_by(ctx, fw.raise_crash_at_pickle, how)
            type_name, message = "CrashAtPickleError", how
            frame = "raise_crash_at_pickle"
        if how == "exit":
            assert_broken(error, fw.FAULT_EXIT_CODE, frame)
            await assert_usable(ctx, None)
            return
        if how == "crash":
            assert_broken(error, -signal.SIGSEGV, frame)
            await assert_usable(ctx, None)
            return
        assert isinstance(error, trio_wf.RemoteError)
        assert error.type_name == f"tests.fault_workers.{type_name}"
        assert error.message == message
        assert "Traceback (most recent call last)" in error.remote_traceback
        assert f"in {frame}" in error.remote_traceback
        assert f"tests.fault_workers.{type_name}: {message}" in str(error)
        await assert_usable(ctx, pid)


@pytest.mark.parametrize("what", ["result", "exception", "result-sys.exit"])
async def test_row7_unpickling_error_in_the_parent(
    worker_type: WorkerType, what: str
) -> None:
    """Row 7: a result or exception that fails to unpickle in the parent fails
    that call alone, with a clear UnpicklingError; the worker stays usable.  A
    SystemExit raised by unpickling code in the parent is the parent's own exit,
    so it propagates."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
        if what == "result-sys.exit":
            error = await raised_by(
                ctx, fw.return_instance, fw.FailAtUnpickle, "sys.exit"
            )
            assert isinstance(error, SystemExit)
            assert error.code == fw.FAULT_EXIT_CODE
            await assert_usable(ctx, pid)
            return
        if what == "result":
            error = await raised_by(ctx, fw.return_instance, fw.FailAtUnpickle, "error")
            text = "the result of tests.fault_workers.return_instance"
        else:
            error = await raised_by(ctx, fw.raise_fail_at_unpickle)
            text = "the exception of tests.fault_workers.raise_fail_at_unpickle"
        assert isinstance(error, pickle.UnpicklingError)
        assert f"could not unpickle {text} sent by worker process {pid}" in str(error)
        assert isinstance(error.__cause__, fw.FaultError)
        assert "failed on purpose" in str(error)
        await assert_usable(ctx, pid)


@pytest.mark.parametrize("what", ["generator", "error", "sys.exit"])
async def test_row8_result_not_picklable(worker_type: WorkerType, what: str) -> None:
    """Row 8: a result that cannot be pickled raises TypeError naming the function,
    with the pickling error as cause (a SystemExit from ``__reduce__`` too, which
    must not end the worker); the worker is reused."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
        if what == "generator":
            error = await raised_by(ctx, fw.make_generator)
            name, cause = "make_generator", TypeError
        else:
            error = await raised_by(ctx, fw.return_instance, fw.FailAtPickle, what)
            name = "return_instance"
            cause = fw.FaultError if what == "error" else SystemExit
        assert isinstance(error, TypeError)
        assert f"the result of tests.fault_workers.{name} could not be pickled" in (
            str(error)
        )
        assert isinstance(error.__cause__, cause)
        await assert_usable(ctx, pid)


@pytest.mark.parametrize("how", ["exit", "crash"])
async def test_row9_result_pickling_kills_the_worker_crash(
    worker_type: WorkerType, how: str
) -> None:
    """Row 9: a result whose pickling exits or segfaults the worker gives
    BrokenWorkerError for that call, and the context starts a new worker."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        error = await raised_by(ctx, fw.return_instance, fw.FailAtPickle, how)
        exitcode = fw.FAULT_EXIT_CODE if how == "exit" else -signal.SIGSEGV
        assert_broken(error, exitcode, "tests.fault_workers.return_instance")
        await assert_usable(ctx, None)


async def test_row10_argument_not_picklable(worker_type: WorkerType) -> None:
    """Row 10: 100 calls with unpicklable arguments raise PicklingError in the
    caller before dispatch, release their limiter tokens and lose no worker; 100
    good calls then run on the same worker."""
    limiter = trio.CapacityLimiter(2)
    bad_args = [threading.Lock(), fw.FailAtPickle("error")]
    errors: list[BaseException] = []

    async def bad_call(i: int) -> None:
        try:
            await ctx.run_sync(fw.take, bad_args[i % 2], limiter=limiter)
        except pickle.PicklingError as exc:
            errors.append(exc)

    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid, limiter=limiter)
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(bad_call, i)
            assert len(errors) == 100
            assert limiter.borrowed_tokens == 0
            assert ctx.statistics() == WorkerContextStatistics(1, 0)
            for error in errors[:2]:
                assert "could not pickle the call to tests.fault_workers.take" in (
                    str(error)
                )
            causes = {type(error.__cause__) for error in errors}
            assert causes == {TypeError, fw.FaultError}
            pids = {
                await ctx.run_sync(workers.pid, limiter=limiter) for _ in range(100)
            }
            assert pids == {pid}
            assert limiter.borrowed_tokens == 0


@pytest.mark.parametrize("how", fw.HOWS)
async def test_row11_argument_unpickling_error_or_crash_in_the_worker(
    worker_type: WorkerType, how: str
) -> None:
    """Row 11: an argument that fails to unpickle in the worker gives an error
    carrying the child's message (the worker is reused); one that exits or crashes
    the worker while unpickling gives BrokenWorkerError."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            pid = await ctx.run_sync(workers.pid)
        error = await raised_by(ctx, fw.take, fw.FailAtUnpickle(how))
        if how == "exit":
            assert_broken(error, fw.FAULT_EXIT_CODE, "tests.fault_workers.take")
            await assert_usable(ctx, None)
            return
        if how == "crash":
            assert_broken(error, -signal.SIGSEGV, "tests.fault_workers.take")
            await assert_usable(ctx, None)
            return
        assert isinstance(error, pickle.UnpicklingError)
        assert f"could not unpickle the job in worker process {pid}" in str(error)
        if how == "error":
            # The child's own message, with the child's pid in it.
            assert f"unpickling FailAtUnpickle failed on purpose in process {pid}" in (
                str(error)
            )
            assert isinstance(error.__cause__, fw.FaultError)
        else:
            assert isinstance(error.__cause__, SystemExit)
        await assert_usable(ctx, pid)


# Row 14: large data --------------------------------------------------------------


def transport(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Context options for large data through the shared memory arena, or, with
    the arena turned off on both sides, through the pipe."""
    if name == "arena":
        return {}
    monkeypatch.setattr(_protocol, "BUFFER_THRESHOLD", sys.maxsize)
    monkeypatch.setattr(_shm, "STREAM_THRESHOLD", sys.maxsize)
    return {"init": fw.pipe_only}


@pytest.mark.slow
@pytest.mark.parametrize("via", ["arena", "pipe"])
async def test_row14_large_argument_and_result(
    worker_type: WorkerType, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 14: a 64 MiB argument and a 64 MiB result make the round trip intact."""
    data = os.urandom(1024) * (BIG // 1024)
    options = transport(via, monkeypatch)
    async with trio_wf.open_worker_context(worker_type=worker_type, **options) as ctx:
        with trio.fail_after(30):
            assert await ctx.run_sync(fw.echo, data) == data
            assert await ctx.run_sync(fw.big_result, BIG) == bytes(BIG)


@pytest.mark.parametrize(
    ("when", "via"), [("holding", "arena"), ("holding", "pipe"), ("mid_send", "pipe")]
)
async def test_row14_crash_with_large_data_in_flight(
    worker_type: WorkerType, when: str, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 14: a worker that dies holding a 64 MiB argument, or while the parent is
    still writing it to the pipe (the worker is stopped, the pipe full, then it is
    killed), gives BrokenWorkerError, never a deadlock.  (Through the arena, there
    is no mid-send: the parent copies the data in before it sends the message.)
    The leak check sees the arena's descriptor and mapping go."""
    data = bytes(BIG)
    options = transport(via, monkeypatch)
    async with trio_wf.open_worker_context(worker_type=worker_type, **options) as ctx:
        if when == "holding":
            error = await raised_by(ctx, fw.crash_with, data)
            assert_broken(error, -signal.SIGSEGV, "tests.fault_workers.crash_with")
            await assert_usable(ctx, None)
            return
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            os.kill(victim, signal.SIGSTOP)
            async with trio.open_nursery() as nursery:

                async def killer() -> None:
                    try:
                        # All blocked: the call waits for room in the full pipe.
                        await trio.testing.wait_all_tasks_blocked()
                        assert ctx.statistics().running_workers == 1
                    finally:
                        os.kill(victim, signal.SIGKILL)

                nursery.start_soon(killer)
                error = await raised_by(ctx, fw.length, data)
        assert_broken(error, -signal.SIGKILL, "tests.fault_workers.length")
        await assert_usable(ctx, None)


@pytest.mark.parametrize(
    ("when", "via"), [("sending", "arena"), ("sending", "pipe"), ("receiving", "pipe")]
)
async def test_row14_cancel_kills_with_large_data_in_flight(
    worker_type: WorkerType, when: str, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 14: with kill_on_cancel=True, a cancel while a 64 MiB argument is being
    sent (or sits in the arena of a stopped worker), or while a 64 MiB result is
    received through the pipe, raises Cancelled and reaps the worker."""
    scope = trio.CancelScope()
    lengths: list[int] = []
    read_some = Channel._read_some

    async def read_then_cancel(self: Channel, cancellable: bool) -> bytes:
        # The reply's header has arrived, its 64 MiB body is still on the way: the
        # next wait inside receive() is where Cancelled lands.
        data = await read_some(self, cancellable)
        lengths.append(HEADER.unpack_from(data)[0])
        scope.cancel()
        return data

    async def call() -> None:
        with scope:
            if when == "sending":
                await ctx.run_sync(fw.length, bytes(BIG), kill_on_cancel=True)
            else:
                await ctx.run_sync(fw.big_result, BIG, kill_on_cancel=True)

    options = transport(via, monkeypatch)
    async with trio_wf.open_worker_context(worker_type=worker_type, **options) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            if when == "receiving":
                monkeypatch.setattr(Channel, "_read_some", read_then_cancel)
                await call()
                monkeypatch.setattr(Channel, "_read_some", read_some)
                assert lengths == [lengths[0]]
                assert lengths[0] > BIG  # cancelled inside the big reply
            else:
                os.kill(victim, signal.SIGSTOP)  # the pipe fills and stays full
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call)
                    await trio.testing.wait_all_tasks_blocked()
                    assert ctx.statistics().running_workers == 1
                    scope.cancel()
        assert scope.cancelled_caught
        assert not psutil.pid_exists(victim)
        assert ctx.statistics() == WorkerContextStatistics(0, 0)
        await assert_usable(ctx, None)


# Row 16: the cancel points of kill_on_cancel=True ----------------------------------


@pytest.mark.parametrize("point", ["before_entry", "queued", "at_send", "running"])
async def test_row16_kill_on_cancel_points(
    worker_type: WorkerType,
    point: str,
    manager: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Row 16: with kill_on_cancel=True, a cancel raises Cancelled, never
    BrokenWorkerError.  Before entry (or while queued on the limiter) the job never
    starts and no worker is reserved; at send or while running the worker is
    killed with SIGKILL and reaped within a second."""
    started_log = tmp_path / "started"
    started_log.touch()
    started, release = manager.Event(), manager.Event()
    limiter = trio.CapacityLimiter(1)
    reaped: list[trio_wf.WorkerExit] = []
    kill_and_reap = ProcessWorker.kill_and_reap

    async def recording_kill_and_reap(self: ProcessWorker) -> trio_wf.WorkerExit:
        reaped.append(await kill_and_reap(self))
        return reaped[-1]

    monkeypatch.setattr(ProcessWorker, "kill_and_reap", recording_kill_and_reap)
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
            scope = trio.CancelScope()
            call = functools.partial(ctx.run_sync, kill_on_cancel=True, limiter=limiter)

            async def cancelled_call(*args: Any) -> None:
                with scope:
                    await call(*args)
                    pytest.fail("the call was not cancelled")  # pragma: no cover

            async with trio.open_nursery() as nursery:
                if point == "before_entry":
                    scope.cancel()
                    await cancelled_call(fw.record_start, str(started_log))
                elif point == "queued":
                    # The only token is held by a job that waits for release.
                    holder = functools.partial(
                        ctx.run_sync, fw.started_then_wait, limiter=limiter
                    )
                    nursery.start_soon(holder, started, release)
                    try:
                        await wait_event(started)
                        nursery.start_soon(cancelled_call, fw.record_start, started_log)
                        await trio.testing.wait_all_tasks_blocked()
                        assert limiter.statistics().tasks_waiting == 1
                        scope.cancel()
                        await trio.testing.wait_all_tasks_blocked()
                    finally:
                        release.set()
                elif point == "at_send":
                    os.kill(victim, signal.SIGSTOP)  # the 4 MiB job fills the pipe
                    nursery.start_soon(cancelled_call, fw.length, bytes(4 * 2**20))
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()
                else:
                    nursery.start_soon(
                        cancelled_call, workers.started_then_sleep, started
                    )
                    await wait_event(started)
                    scope.cancel()
                cancelled_at = trio.current_time()
            killed_within = trio.current_time() - cancelled_at
        assert scope.cancelled_caught
        assert limiter.borrowed_tokens == 0
        if point in ("before_entry", "queued"):
            assert started_log.read_text() == ""  # the job never started
            assert reaped == []
            await assert_usable(ctx, victim)  # no worker was reserved or lost
            return
        assert [(e.pid, e.exitcode) for e in reaped] == [(victim, -signal.SIGKILL)]
        assert not psutil.pid_exists(victim)
        assert killed_within <= 1.0
        await assert_usable(ctx, None)


class _CancelAfterSteps(trio.abc.Instrument):
    """Cancels ``scope`` once ``task`` has run ``steps`` steps (checkpoint to
    checkpoint) from now."""

    def __init__(self, task: trio.lowlevel.Task, steps: int, scope: trio.CancelScope):
        self.task, self.steps, self.scope = task, steps, scope

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps -= 1
            if self.steps == 0:
                self.scope.cancel()


async def test_row16_cancel_at_every_checkpoint(worker_type: WorkerType) -> None:
    """Row 16: a call with kill_on_cancel=True cancelled at each of its checkpoints
    in turn raises Cancelled (never BrokenWorkerError) and either left its worker
    untouched or killed and reaped it; with enough steps it completes."""
    outcomes = []
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        for steps in range(50):
            with trio.fail_after(20):
                warm = await ctx.run_sync(workers.pid)
            task = trio.lowlevel.current_task()
            with trio.CancelScope() as scope:
                if steps == 0:
                    scope.cancel()  # before entry
                instrument = _CancelAfterSteps(task, steps, scope)
                trio.lowlevel.add_instrument(instrument)
                try:
                    result = await ctx.run_sync(workers.add, 1, 2, kill_on_cancel=True)
                finally:
                    trio.lowlevel.remove_instrument(instrument)
            stats = ctx.statistics()
            assert stats.running_workers == 0
            if not scope.cancelled_caught:
                assert result == 3
                break
            if stats.idle_workers == 1:
                outcomes.append("untouched")
                assert psutil.pid_exists(warm)
            else:
                outcomes.append("killed")
                assert not psutil.pid_exists(warm)
        else:  # pragma: no cover
            pytest.fail("the call never completed")
    assert outcomes[0] == "untouched"  # cancelled before entry
    assert "killed" in outcomes  # cancelled once it held the worker


# Rows 17-19: the whole process is interrupted, terminated or killed ---------------


def write_script(tmp_path: Path, name: str, code: str) -> Path:
    script = tmp_path / name
    script.write_text(textwrap.dedent(code))
    return script


CTRL_C_SCRIPT = """
    import functools, os, sys, threading, trio, trio_wf

    worker_type, fifo, log = sys.argv[1:4]

    def job(fifo, log):
        with open(log, "a") as f:  # proof that this job started
            f.write(f"{os.getpid()}\\n")
        with open(fifo, "w") as f:
            f.write("x")
        threading.Event().wait()

    async def main():
        limiter = trio.CapacityLimiter(2)
        call = functools.partial(trio_wf.run_sync, kill_on_cancel=True, limiter=limiter)
        fd = os.open(fifo, os.O_RDWR)  # O_RDWR: the FIFO never reads EOF
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(call, job, fifo, log)
            got = b""
            while len(got) < 2:
                got += await trio.to_thread.run_sync(os.read, fd, 2 - len(got))
            stats = limiter.statistics()
            print(stats.borrowed_tokens, stats.tasks_waiting, flush=True)
            await trio.sleep_forever()

    trio_wf.configure_default_context(worker_type=worker_type)
    trio.run(main)
"""


@pytest.mark.slow
def test_row17_ctrl_c_with_queued_calls_cancel(
    tmp_path: Path, worker_type: WorkerType
) -> None:
    """Row 17: Ctrl+C (SIGINT to the process group) with 2 calls running and 6
    queued on the limiter raises KeyboardInterrupt once, in the parent; the queued
    jobs never start, no worker prints a traceback, and no process is left."""
    fifo, log = tmp_path / "started", tmp_path / "log"
    os.mkfifo(fifo)
    log.touch()
    script = write_script(tmp_path, "ctrl_c.py", CTRL_C_SCRIPT)
    proc = subprocess.Popen(
        [*PYTHON, str(script), worker_type.value, str(fifo), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover, only on failure
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert ready.split() == ["2", "6"], stderr  # 2 running, 6 queued
    pids = [int(line) for line in log.read_text().split()]
    assert len(pids) == 2  # the 6 queued jobs never started
    assert len(set(pids)) == 2
    # KeyboardInterrupt leaves trio.run inside the nursery's exception group.
    assert proc.returncode == 1, stderr
    interrupts = re.findall(r"^[\s|]*KeyboardInterrupt$", stderr, re.MULTILINE)
    assert len(interrupts) == 1, stderr
    assert "_trio_wf_worker" not in stderr  # no worker traceback
    assert "in job" not in stderr
    assert "Warning" not in stderr
    assert_gone(pids)


# The scenario of rows 18 and 19: a worker context with an idle worker and, unless
# the mode is "idle", a busy one.  It prints their pids (and the fork server's) as
# JSON, then waits: for SIGTERM if the mode is "handle-sigterm", else forever.
SCENARIO_SCRIPT = """
    import contextlib, json, os, signal, sys, threading, trio, trio_wf
    from trio_wf import _proc

    worker_type, fifo, mode = sys.argv[1:4]

    def block_forever(fifo):
        with open(fifo, "w") as f:
            f.write(f"{os.getpid()}\\n")
        threading.Event().wait()

    def sockets():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # listdir's own fd
                count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        return count

    async def main():
        report = []

        async def busy(ctx):
            try:
                await ctx.run_sync(block_forever, fifo)
            except trio_wf.BrokenWorkerError as exc:
                report.append(f"busy call: BrokenWorkerError {exc.signal_name}")

        handle = mode == "handle-sigterm"
        with trio.open_signal_receiver(signal.SIGTERM) if handle else (
            contextlib.nullcontext()
        ) as signals:
            async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
                async with trio.open_nursery() as nursery:
                    pids = {}
                    if mode != "idle":
                        nursery.start_soon(busy, ctx)
                        fd = os.open(fifo, os.O_RDWR)
                        line = b""
                        while not line.endswith(b"\\n"):
                            line += await trio.to_thread.run_sync(os.read, fd, 64)
                        os.close(fd)
                        pids["busy"] = int(line)
                    pids["idle"] = await ctx.run_sync(os.getpid)
                    if _proc.forkserver_pid() is not None:
                        pids["server"] = _proc.forkserver_pid()
                    before = sockets()
                    print(json.dumps(pids), flush=True)
                    if not handle:
                        await trio.sleep_forever()
                    async for signum in signals:
                        report.append(f"parent: {signal.Signals(signum).name}")
                        break
            report.append("context closed without error")
            async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
                report.append(f"new context works: {await ctx.run_sync(os.getpid) > 0}")
            report.append(f"sockets leaked: {sockets() - before}")
        print(*sorted(report), sep="\\n", flush=True)

    trio.run(main)
"""

# Runs the scenario as a child subreaper (PR_SET_CHILD_SUBREAPER), so that the
# workers orphaned when the scenario dies become *its* children: it can wait for
# them (pidfds, no polling), report how they ended, and reap them.  (Here, as in
# many containers, pid 1 never reaps orphans.)  It prints the scenario's pid once
# the workers run, and a JSON report once the scenario has exited.
REAPER_SCRIPT = """
    import ctypes, json, os, select, subprocess, sys, time
    import psutil

    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    scenario = subprocess.Popen(
        [sys.executable, "-W", "always::ResourceWarning", *sys.argv[1:]],
        stdout=subprocess.PIPE, text=True,
        # A group of its own (process_group= is 3.11+): killpg() hits the
        # scenario and its workers, not us.
        start_new_session=True,
    )
    pids = json.loads(scenario.stdout.readline())
    pidfds = {os.pidfd_open(pid): name for name, pid in pids.items()}
    print(scenario.pid, flush=True)
    returncode = scenario.wait(timeout=30)
    start = time.monotonic()
    exited_after = {}
    while pidfds and time.monotonic() < start + 10:
        ready, _, _ = select.select(list(pidfds), [], [], start + 10 - time.monotonic())
        for fd in ready:
            exited_after[pidfds.pop(fd)] = time.monotonic() - start
            os.close(fd)
    alive = sorted(pidfds.values())
    for process in psutil.Process().children(recursive=True):
        process.kill()  # only if something outlived its parent: a failure
    exits = {}
    for name, pid in pids.items():
        try:
            exits[name] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:  # its own parent reaped it
            exits[name] = None
    with __import__("contextlib").suppress(ChildProcessError):
        while True:
            os.waitpid(-1, 0)
    with scenario.stdout:
        report = scenario.stdout.read().splitlines()
    print(json.dumps({
        "scenario": returncode, "exits": exits, "exited_after": exited_after,
        "alive": alive, "report": report,
    }), flush=True)
"""


def run_scenario(
    tmp_path: Path, worker_type: WorkerType, mode: str, kill: Any
) -> tuple[dict[str, Any], str]:
    """Run the scenario under the reaper, ``kill(scenario_pid)``, return the report."""
    fifo = tmp_path / "busy"
    os.mkfifo(fifo)
    scenario = write_script(tmp_path, "scenario.py", SCENARIO_SCRIPT)
    reaper = write_script(tmp_path, "reaper.py", REAPER_SCRIPT)
    proc = subprocess.Popen(
        [*PYTHON, str(reaper), str(scenario), worker_type.value, str(fifo), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line:
            kill(int(line))
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover, only on failure
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr
    return json.loads(stdout), stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["default", "handle-sigterm"])
def test_row18_sigterm_to_the_process_group_kill(
    tmp_path: Path, worker_type: WorkerType, mode: str
) -> None:
    """Row 18: SIGTERM to the whole process group (a service manager's stop).
    Workers keep SIGTERM's default action, so they end with it: a parent that does
    not handle SIGTERM dies with them, leaving nothing; one that handles it sees
    its running call fail with BrokenWorkerError, closes its context without
    error, and can start new workers.  No process outlives the group."""
    report, stderr = run_scenario(
        tmp_path, worker_type, mode, lambda pid: os.killpg(pid, signal.SIGTERM)
    )
    assert report["alive"] == [], report
    assert stderr == ""
    if mode == "default":
        assert report["scenario"] == -signal.SIGTERM
        assert report["report"] == []
        exits = report["exits"]
        # The fork server outlives SIGTERM, reaps its workers, then leaves when
        # its parent is gone.
        assert exits.pop("server", 0) == 0, report
        # Each worker died of SIGTERM (None: its own parent reaped it first, which
        # takes a signal landing on the worker before its parent, then the parent
        # running until its own signal lands: possible, if unlikely).
        assert set(exits.values()) <= {-signal.SIGTERM, None}, report
        return
    assert report["scenario"] == 0, report
    assert report["report"] == [
        "busy call: BrokenWorkerError SIGTERM",
        "context closed without error",
        "new context works: True",
        "parent: SIGTERM",
        "sockets leaked: 0",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["idle", "busy"])
def test_row19_parent_sigkilled_workers_die(
    tmp_path: Path, worker_type: WorkerType, mode: str
) -> None:
    """Row 19: when the parent is SIGKILLed, its workers exit within 2 s, idle ones
    on EOF (or PR_SET_PDEATHSIG), a busy one through PR_SET_PDEATHSIG; the fork
    server exits on EOF.  Nothing is left alive, re-parented or not."""
    report, stderr = run_scenario(
        tmp_path, worker_type, mode, lambda pid: os.kill(pid, signal.SIGKILL)
    )
    assert report["scenario"] == -signal.SIGKILL
    assert report["alive"] == [], report
    assert max(report["exited_after"].values()) <= 2.0, report
    assert stderr == ""
    exits = report["exits"]
    # An idle worker reads EOF, or PR_SET_PDEATHSIG kills it first: a race.  A
    # fork server worker is reaped by the server (None) before the server exits.
    assert exits["idle"] in (0, -signal.SIGKILL, None), report
    if mode == "busy":
        assert exits["busy"] == -signal.SIGKILL, report
    if worker_type is WorkerType.FORKSERVER:
        assert exits["server"] == 0, report


# Row 4, at close: an idle worker that died is no shutdown failure ----------------


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSEGV])
async def test_row4_idle_worker_killed_then_context_closes(
    worker_type: WorkerType, signum: int
) -> None:
    """Row 4: an idle worker that dies (killed from outside) is pruned silently,
    also when the context closes before any call noticed it."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(20):
            victim = await ctx.run_sync(workers.pid)
        os.kill(victim, signum)
        await wait_until_exited(victim)
    assert not psutil.pid_exists(victim)


async def test_row18_sigterm_killing_a_closing_worker_is_no_failure(
    worker_type: WorkerType, manager: Any
) -> None:
    """Row 18: a worker that a SIGTERM ends while its context is closing (a service
    manager stopping the whole group, say) does not make the close raise."""
    retiring, terminate = manager.Event(), manager.Event()
    retire = functools.partial(fw.terminate_self_when, retiring, terminate)
    with trio.fail_after(20):
        async with (
            trio.open_nursery() as nursery,
            trio_wf.open_worker_context(retire=retire, worker_type=worker_type) as ctx,
        ):
            pid = await ctx.run_sync(workers.pid)
            await wait_event(retiring)  # busy in retire: alive at shutdown

            async def sigterm_once_closing() -> None:
                await trio.testing.wait_all_tasks_blocked()
                assert ctx._pool.closed  # waiting for the worker to exit
                terminate.set()

            nursery.start_soon(sigterm_once_closing)
    assert not psutil.pid_exists(pid)


# Rows 24-25: retirement with a backlog, saturation ---------------------------------


async def test_row24_retire_after_jobs_with_a_backlog(worker_type: WorkerType) -> None:
    """Row 24: one worker at a time (CapacityLimiter(1)), retired every 2 jobs, and
    8 calls queued at once: all finish, each worker runs exactly 2 jobs (4 pids);
    calls that race a retiring worker are resubmitted, never failed."""
    limiter = trio.CapacityLimiter(1)
    pids: list[int] = []

    async def call() -> None:
        pids.append(await ctx.run_sync(workers.pid, limiter=limiter))

    async with trio_wf.open_worker_context(
        retire=trio_wf.retire_policy(max_jobs=2), worker_type=worker_type
    ) as ctx:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(call)
    assert len(pids) == 8
    assert sorted(collections.Counter(pids).values()) == [2, 2, 2, 2]


async def test_row24_retire_on_memory_with_a_mocked_probe(
    worker_type: WorkerType,
) -> None:
    """Row 24: retire_policy(max_rss=...) retires a worker once its memory probe
    (faked in the worker by ``init``; nothing is allocated) reports more than
    max_rss, and only then."""
    async with trio_wf.open_worker_context(
        init=fw.fake_rss_init,
        retire=trio_wf.retire_policy(max_rss=2**30),
        worker_type=worker_type,
    ) as ctx:
        with trio.fail_after(20):
            first = await ctx.run_sync(workers.pid)
            assert await ctx.run_sync(workers.pid) == first  # 100 MiB < 1 GiB
            assert await ctx.run_sync(fw.grow_fake_rss, 2**30) == first  # then retired
            second = await ctx.run_sync(workers.pid)
            assert second != first
            assert await ctx.run_sync(workers.pid) == second  # a fresh probe


@pytest.mark.slow
async def test_row25_saturation_10000_calls(
    worker_type: WorkerType, manager: Any, tmp_path: Path
) -> None:
    """Row 25: 10,000 concurrent calls through CapacityLimiter(2) all return the
    right result; at most 2 jobs ever run at once (exactly 2, counted by the jobs
    themselves in a locked file), on at most 2 workers, and the parent's
    descriptor count is the same before and after."""
    counters = tmp_path / "counters"
    counters.write_bytes(bytes(16))
    limiter = trio.CapacityLimiter(2)
    results: dict[int, tuple[int, int]] = {}
    # Two calls wait for each other at a barrier: both tokens, both workers.
    barrier = manager.Barrier(2)

    async def call(x: int, barrier: Any = None) -> None:
        results[x] = await ctx.run_sync(
            fw.counted_square, str(counters), x, barrier, limiter=limiter
        )

    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, 0, barrier)
                nursery.start_soon(call, 1, barrier)
            # Sockets are left out: our Manager's proxies keep one connection per
            # thread, and trio's idle cache threads exit (closing theirs) on a
            # busy machine.  Every descriptor trio_wf opens is counted.
            fds_before = open_fds()
            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                for x in range(2, 10_000):
                    nursery.start_soon(call, x)
            elapsed = time.monotonic() - started
            fds_after = open_fds()
            assert ctx.statistics() == WorkerContextStatistics(2, 0)
    assert sorted(results) == list(range(10_000))
    assert all(square == x * x for x, (_, square) in results.items())
    assert len({pid for pid, _ in results.values()}) == 2
    assert fw.read_counters(str(counters)) == (0, 2)  # none running, peak 2
    assert fds_after == fds_before
    assert limiter.borrowed_tokens == 0
    # Calibrated on a 2-core runner: about 2 s; a regression to a worker start
    # per call, or to polling, would take far longer.
    assert elapsed < 30, f"{elapsed:.1f}s for 9,998 calls"


# Row 31: fork with threads, descriptors inherited ---------------------------------


async def test_row31_fork_with_threads_warns_nothing(worker_type: WorkerType) -> None:
    """Row 31: starting workers while the parent runs another thread gives no
    warning (Python 3.12+ warns about forking a multi-threaded process), under any
    worker type; spawn is the default worker type."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # Recorded, not turned into errors: os.fork() clears the exception that
        # an "error" filter makes of its warning, so that filter sees nothing.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
                with trio.fail_after(20):
                    assert threading.active_count() >= 2
                    assert await ctx.run_sync(threading.active_count) == 1
    finally:
        stop.set()
        thread.join()
    assert [str(w.message) for w in caught] == []
    async with trio_wf.open_worker_context() as ctx:
        assert ctx.worker_type is WorkerType.SPAWN


async def test_row31_worker_holds_only_its_descriptors(
    worker_type: WorkerType, tmp_path: Path
) -> None:
    """Row 31: a worker holds stdin/stdout/stderr, its two pipe ends and its
    shared memory arena, plus, under fork, the descriptors of its inherited
    standard streams and of multiprocessing's resource tracker; never a file the
    parent has open."""
    secret = tmp_path / "parent-only.txt"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT)  # open while the worker starts
    try:
        async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
            with trio.fail_after(20):
                report = await ctx.run_sync(fw.fd_report)
    finally:
        os.close(fd)
    fds = {int(fd): target for fd, target in report["fds"].items()}
    assert str(secret) not in fds.values()
    kept = {0, 1, 2, *report["std"]}
    if report["tracker"] is not None:
        kept.add(report["tracker"])
    own = {fd: target for fd, target in fds.items() if fd not in kept}
    assert sorted(target.split(":")[0] for target in own.values()) == [
        "/memfd",
        "pipe",
        "pipe",
    ]
    assert "/memfd:trio_wf-arena (deleted)" in own.values()
    if worker_type is not WorkerType.FORK:
        assert set(report["std"]) <= {0, 1, 2}
        assert report["tracker"] is None
        assert len(fds) == 6
