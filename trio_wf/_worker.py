"""The parent's handle on one worker process: framed messages over its pipes."""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Awaitable, Callable

import trio

from _trio_wf_worker._protocol import CONFIG, HEADER, frame
from _trio_wf_worker._shm import Arena

from ._errors import WorkerExit
from ._proc import ChildProcess, Launched, close_fds

_READ_SIZE = 1 << 16
# How long a worker that announced its exit gets to finish it (flushing output,
# running its atexit handlers) before it is killed.
_LEAVING_TIMEOUT = 1.0


class WorkerDied(Exception):
    """The worker's pipe reached EOF: it died (the pool turns this into an error)."""


class WorkerGone(WorkerDied):
    """The worker was gone before it read the whole message, which never ran."""


class ProcessWorker:
    """One worker process, seen from the parent.

    ``run`` sends a framed job and returns the framed reply.  The pipes are
    non-blocking; a small message costs one ``write`` and one ``read``.
    """

    __slots__ = ("_buffer", "_recv_fd", "_send_fd", "arena", "pid", "process")

    def __init__(self, launched: Launched) -> None:
        self.process: ChildProcess = launched.process
        self.pid = launched.process.pid
        self._send_fd: int | None = launched.send_fd
        self._recv_fd = launched.recv_fd
        self.arena = Arena(launched.arena_fd)
        self._buffer = b""

    @classmethod
    async def start(
        cls,
        launch: Callable[[], Awaitable[Launched]],
        idle_timeout: float,
        callables: bytes,
    ) -> tuple[ProcessWorker, int, bytes | bytearray]:
        """Start a worker; return it with its first reply (`READY` or an error)."""
        launched = await launch()
        worker = cls(launched)
        try:
            config = pickle.dumps(
                {
                    "sys_path": sys.path,
                    "parent_pid": launched.parent_pid,
                    "die_with_parent": launched.die_with_parent,
                    "idle_timeout": idle_timeout,
                    "callables": callables,
                    "authkey": _multiprocessing_authkey(),
                },
                pickle.HIGHEST_PROTOCOL,
            )
            kind, payload = await worker.run(frame(CONFIG, config))
        except WorkerDied:
            raise WorkerDied(await worker.kill_and_reap()) from None
        except BaseException:
            await worker.kill_and_reap()
            raise
        return worker, kind, payload

    async def run(
        self, message: bytes, *, cancellable: bool = True
    ) -> tuple[int, bytes | bytearray]:
        """Send one message and wait for the reply.

        Raises `WorkerGone` if the worker was already gone (the message never
        ran), `WorkerDied` if it died after receiving it.  If not ``cancellable``,
        a cancellation does not interrupt the exchange: it is delivered again at
        the caller's next checkpoint, since its scope stays cancelled.
        """
        delivered = await self._send(message, cancellable)
        try:
            return await self.receive(cancellable)
        except WorkerDied:
            if delivered:
                raise
            raise WorkerGone from None

    async def _send(self, data: bytes, cancellable: bool) -> bool:
        """Write ``data``; return False if the worker was gone before any of it.

        A worker that dies after taking part of a message counts as having got
        it: the message itself may be what killed it (a huge argument, say), so
        it must not be sent again and again.
        """
        fd = self._send_fd
        assert fd is not None
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            sent = 0
        except BrokenPipeError:
            # Gone before this message: it may have said goodbye (idle timeout,
            # retire) before exiting, which receive() reads.
            return False
        try:
            if sent == len(data):
                return True
            view = memoryview(data)[sent:]
            while view:
                await _wait(trio.lowlevel.wait_writable, fd, cancellable)
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    pass
        except BrokenPipeError:
            pass  # died while receiving: receive() reads EOF
        return True

    async def receive(self, cancellable: bool = True) -> tuple[int, bytes | bytearray]:
        """Wait for the next whole message from the worker."""
        buffer = self._buffer
        while len(buffer) < HEADER.size:
            buffer += await self._read_some(cancellable)
        length, kind = HEADER.unpack_from(buffer)
        end = HEADER.size + length
        if len(buffer) >= end:
            self._buffer = buffer[end:]
            return kind, buffer[HEADER.size : end]
        # A large message: read the rest straight into its final buffer.
        out = bytearray(length)
        view = memoryview(out)
        have = len(buffer) - HEADER.size
        view[:have] = buffer[HEADER.size :]
        self._buffer = b""
        while have < length:
            await _wait(trio.lowlevel.wait_readable, self._recv_fd, cancellable)
            try:
                got = os.readv(self._recv_fd, [view[have:]])
            except BlockingIOError:
                continue
            if not got:
                raise WorkerDied
            have += got
        return kind, out

    async def _read_some(self, cancellable: bool) -> bytes:
        while True:
            await _wait(trio.lowlevel.wait_readable, self._recv_fd, cancellable)
            try:
                data = os.read(self._recv_fd, _READ_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise WorkerDied
            return data

    def has_news(self) -> bool:
        """Whether an idle worker has said something (goodbye) or died, now."""
        if self._buffer:
            return True
        try:
            data = os.read(self._recv_fd, _READ_SIZE)
        except BlockingIOError:
            return False
        self._buffer += data  # b"" at EOF: receive() then raises WorkerDied
        return True

    def died_while_idle(self) -> bool:
        """Whether this idle worker's pipe reads EOF, with no goodbye before it."""
        return self.has_news() and not self._buffer

    def shutdown(self) -> None:
        """Close the job pipe: an idle worker sees EOF and exits cleanly."""
        if self._send_fd is not None:
            close_fds(self._send_fd)
            self._send_fd = None

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

    async def reap(self) -> WorkerExit:
        """Wait for the worker to exit (shielded) and release its descriptors."""
        with trio.CancelScope(shield=True):
            code = await self.process.wait()
        self.release()
        return WorkerExit(self.pid, code)

    def release(self) -> None:
        """Close the parent's ends of the pipes and the arena (the process is gone).

        The arena's memory goes back to the kernel with its last holder.
        """
        self.shutdown()
        if self._recv_fd >= 0:
            close_fds(self._recv_fd)
            self._recv_fd = -1
        self.arena.close()


async def _wait(
    wait: Callable[[int], Awaitable[None]], fd: int, cancellable: bool
) -> None:
    if cancellable:
        await wait(fd)
        return
    try:
        await wait(fd)
    except trio.Cancelled:
        # Swallowed on purpose: the scope stays cancelled, so the next
        # checkpoint after the exchange raises a fresh Cancelled.
        with trio.CancelScope(shield=True):
            await wait(fd)


def _multiprocessing_authkey() -> bytes | None:
    # Share multiprocessing's authkey (as its spawn does), so that Manager proxies
    # passed to jobs can authenticate; only if the parent uses multiprocessing.
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is None:
        return None
    return bytes(mp_process.current_process().authkey)
