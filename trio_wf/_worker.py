"""`ProcessWorker`: one worker process behind the `AbstractWorker` seam.

Everything the pool must not know lives here: the process object, its pipes,
its shared memory arena and the protocol messages.  A job's exchange ends in one
of these ways, each detected on the pipe, without polling:

* a reply (``OK`` or ``ERROR``): the job ran; its outcome goes to the caller;
* ``BYE``: the worker left *without taking the job* (idle timeout, ``retire``),
  so the job is resubmitted to another worker and the race is invisible;
* ``RETIRE_FAILED``: ``retire`` raised after the previous job; this call fails
  with `BrokenWorkerError` (the job never ran);
* EOF: the worker died; this call alone fails with `BrokenWorkerError`, unless
  the worker was gone before it read any of the job (killed while idle, say),
  which is then resubmitted.
"""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Awaitable, Callable
from typing import Any, final

import outcome
import trio

from _trio_wf_worker._protocol import (
    BYE,
    CONFIG,
    ERROR,
    INIT_FAILED,
    OK,
    READY,
    RETIRE_FAILED,
    describe_callable,
    dumps,
    frame,
)
from _trio_wf_worker._shm import SHM, Arena, Outgoing

from ._abc import RESUBMIT, AbstractWorker, Resubmit
from ._channel import Channel, WorkerDied
from ._errors import BrokenWorkerError, WorkerExit
from ._jobs import arena_error, decode_exception, unpickling_error
from ._proc import ChildProcess, Launched

Launcher = Callable[[], Awaitable[Launched]]

# How long a worker that announced its exit gets to finish it (flushing output,
# running its atexit handlers) before it is killed.
_LEAVING_TIMEOUT = 1.0


@final
class WorkerConfig:
    """What every worker of one context is started with."""

    __slots__ = ("callables", "idle_timeout", "init_name", "launch", "retire_name")

    def __init__(
        self,
        launch: Launcher,
        *,
        idle_timeout: float,
        init: Callable[[], object],
        retire: Callable[[], object],
    ) -> None:
        """Check that ``init`` and ``retire`` can reach the workers.

        Raises:
            TypeError: if they cannot be pickled (before any worker starts).
        """
        self.launch = launch
        self.idle_timeout = idle_timeout
        self.init_name = describe_callable(init)
        self.retire_name = describe_callable(retire)
        try:
            self.callables = dumps((init, retire))
        except Exception as exc:
            msg = (
                f"init ({self.init_name}) and retire ({self.retire_name}) must be "
                f"picklable to reach the workers: {exc}"
            )
            raise TypeError(msg) from exc

    def message(self, launched: Launched) -> bytes:
        """The `CONFIG` message for a just-launched worker."""
        config = {
            "sys_path": sys.path,
            "parent_pid": launched.parent_pid,
            "die_with_parent": launched.die_with_parent,
            "idle_timeout": self.idle_timeout,
            "callables": self.callables,
            "authkey": _multiprocessing_authkey(),
        }
        return frame(CONFIG, pickle.dumps(config, pickle.HIGHEST_PROTOCOL))


@final
class ProcessWorker(AbstractWorker[Outgoing]):
    """One worker process, seen from the parent."""

    __slots__ = ("_arena", "_channel", "_config", "pid", "process")

    def __init__(self, launched: Launched, config: WorkerConfig) -> None:
        self.process: ChildProcess = launched.process
        self.pid = launched.process.pid
        self._channel = Channel(launched.send_fd, launched.recv_fd)
        self._arena = Arena(launched.arena_fd, lock=True)
        self._config = config

    @classmethod
    async def start(cls, config: WorkerConfig) -> ProcessWorker:
        """Start a worker and wait until it is ready for its first job.

        Raises:
            BrokenWorkerError: if it died while starting, or its ``init`` raised
                (which is then the ``__cause__``).
        """
        launched = await config.launch()
        worker = cls(launched, config)
        try:
            # A worker gone before it read its configuration is found at EOF.
            await worker._channel.send(config.message(launched), True)
            kind, payload = await worker._channel.receive(True)
        except WorkerDied:
            died = await worker.kill_and_reap()
            msg = f"{died.describe()} while starting up; see its stderr"
            raise BrokenWorkerError(msg, died) from None
        except BaseException:
            await worker.kill_and_reap()
            raise
        if kind == READY:
            return worker
        died = await worker.reap_leaving()
        if kind == INIT_FAILED:
            msg = (
                f"init callable {config.init_name} raised in new worker process "
                f"{worker.pid}; the call was not run"
            )
            try:
                cause: BaseException | None = pickle.loads(payload)
            except Exception as exc:
                cause = exc
            raise BrokenWorkerError(msg, died) from cause
        msg = f"new worker process {worker.pid} sent unexpected message kind {kind}"
        raise BrokenWorkerError(msg, died)  # pragma: no cover, protocol invariant

    async def run(
        self, fn: Callable[..., object], job: Outgoing, *, kill_on_cancel: bool
    ) -> outcome.Outcome[Any] | Resubmit:
        try:
            message = self._arena.write(job)
        except OSError as exc:  # the arena could not grow: the worker is fine
            return outcome.Error(arena_error(fn, self.pid, exc))
        # No liveness probe: a worker that left or died while idle is found out
        # by the job itself (EPIPE, a goodbye or EOF instead of a reply), and a
        # job it never read is resubmitted.
        channel = self._channel
        sent = channel.send_nowait(message)
        delivered = sent >= 0
        try:
            if delivered and sent < len(message):
                await channel.send_rest(message, sent, kill_on_cancel)
            kind, payload = await channel.receive(kill_on_cancel)
        except WorkerDied:
            if not delivered:
                # Gone before reading the job (killed while idle, say), which
                # never ran: the pool reaps the worker with those that left.
                self.process.kill()
                return RESUBMIT
            died = await self.kill_and_reap()
            msg = f"{died.describe()} while running {describe_callable(fn)}"
            raise BrokenWorkerError(msg, died) from None
        except BaseException:
            # Cancelled (kill_on_cancel=True) or interrupted mid-message: the
            # worker's state is unknown, so it goes.
            await self.kill_and_reap()
            raise
        base = kind & ~SHM
        if base == OK:
            # Unpickled before the worker goes back: the arena is reused.
            try:
                return outcome.Value(self._arena.loads(kind, payload))
            except BaseException as exc:
                return outcome.Error(unpickling_error("result", fn, self.pid, exc))
        if base == ERROR:
            return outcome.Error(decode_exception(fn, self.pid, payload))
        with trio.CancelScope(shield=not kill_on_cancel):
            await self._goodbye(kind, payload)
        return RESUBMIT

    async def _goodbye(self, kind: int, payload: bytes | bytearray) -> None:
        """Deal with a worker that answered a job by leaving, without running it."""
        if kind == BYE:
            return  # exiting by itself, reaped later off this call's path
        died = await self.reap_leaving()
        if kind == RETIRE_FAILED:
            msg = (
                f"retire callable {self._config.retire_name} raised in worker "
                f"process {self.pid} after its previous job; this call was not run. "
                f"Remote traceback:\n{bytes(payload).decode(errors='replace')}"
            )
        else:  # pragma: no cover, protocol invariant
            msg = f"worker process {self.pid} sent unexpected message kind {kind}"
        raise BrokenWorkerError(msg, died)

    def has_left(self) -> bool:
        return self._channel.has_news()

    def died_while_idle(self) -> bool:
        return self._channel.at_eof()

    def shutdown(self) -> None:
        self._channel.close_send()

    def reap_if_exited(self) -> bool:
        if self.process.poll() is None:
            return False
        self.release()
        return True

    async def wait(self) -> None:
        await self.process.wait()

    def wait_blocking(self, timeout: float) -> None:
        self.process.wait_blocking(timeout)

    def kill(self) -> bool:
        if self.process.poll() is not None:
            return False
        self.process.kill()
        return True

    async def reap(self) -> WorkerExit:
        with trio.CancelScope(shield=True):
            code = await self.process.wait()
        self.release()
        return WorkerExit(self.pid, code)

    def reap_blocking(self) -> WorkerExit:
        code = self.process.wait_blocking(math.inf)
        self.release()
        return WorkerExit(self.pid, code)

    async def reap_leaving(self) -> WorkerExit:
        """Reap a worker that is exiting by itself; kill it if it takes too long.

        Used after a worker said it is leaving (init or retire failed), so that
        its own exit status is reported, without trusting it to exit promptly.
        """
        try:
            with trio.move_on_after(_LEAVING_TIMEOUT):
                await self.process.wait()
        finally:
            died = await self.kill_and_reap()  # also when cancelled
        return died

    async def kill_and_reap(self) -> WorkerExit:
        """SIGKILL the worker and wait for it (shielded: it is already dying)."""
        self.process.kill()
        return await self.reap()

    def release(self) -> None:
        """Close the parent's ends of the pipes and the arena (the process is gone).

        The arena's memory goes back to the kernel with its last holder.
        """
        self._channel.close()
        self._arena.close()


def _multiprocessing_authkey() -> bytes | None:
    # Share multiprocessing's authkey (as its spawn does), so that Manager proxies
    # passed to jobs can authenticate; only if the parent uses multiprocessing.
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is None:
        return None
    return bytes(mp_process.current_process().authkey)
