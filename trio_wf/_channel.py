"""Framed messages over a worker's two pipes, seen from the parent.

The pipes are non-blocking: a small message costs one ``write`` and one
``read``, and trio is only asked to wait when a pipe is full or empty.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio

from _trio_wf_worker._protocol import HEADER

from ._proc import close_fds

_READ_SIZE = 1 << 16


class WorkerDied(Exception):
    """The worker's pipe reached EOF: it died (the pool turns this into an error)."""


class Channel:
    """The parent's ends of one worker's job and result pipes."""

    __slots__ = ("_buffer", "_recv_fd", "_send_fd")

    def __init__(self, send_fd: int, recv_fd: int) -> None:
        self._send_fd: int | None = send_fd
        self._recv_fd = recv_fd
        self._buffer = b""

    def send_nowait(self, data: bytes) -> int:
        """Write what fits in the pipe now; return how much, or -1 if the worker
        was gone before any of it.

        A worker that dies after taking part of a message counts as having got
        it: the message itself may be what killed it (a huge argument, say), so
        it must not be sent again and again.  The rest, if any, goes with
        `send_rest` (a small message never needs it: one call, no coroutine).
        """
        assert self._send_fd is not None
        try:
            return os.write(self._send_fd, data)
        except BlockingIOError:
            return 0
        except BrokenPipeError:
            # Gone before this message: it may have said goodbye (idle timeout,
            # retire) before exiting, which receive() reads.
            return -1

    async def send_rest(self, data: bytes, sent: int, cancellable: bool) -> None:
        """Write ``data[sent:]``, waiting while the pipe is full.

        If not ``cancellable``, a cancellation does not interrupt the write: it
        is delivered again at the caller's next checkpoint, since its scope stays
        cancelled.
        """
        fd = self._send_fd
        assert fd is not None
        view = memoryview(data)[sent:]
        try:
            while view:
                await _wait(trio.lowlevel.wait_writable, fd, cancellable)
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    pass
        except BrokenPipeError:
            pass  # died while receiving: receive() reads EOF

    async def send(self, data: bytes, cancellable: bool) -> bool:
        """Write ``data``; return False if the worker was gone before any of it."""
        sent = self.send_nowait(data)
        if sent < 0:
            return False
        if sent < len(data):
            await self.send_rest(data, sent, cancellable)
        return True

    async def receive(self, cancellable: bool) -> tuple[int, bytes | bytearray]:
        """Wait for the next whole message from the worker: its kind and payload.

        Raises:
            WorkerDied: at EOF.
        """
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
        fd = self._recv_fd
        while True:
            # _wait() inlined: this is on every call's path.
            try:
                await trio.lowlevel.wait_readable(fd)
            except trio.Cancelled:
                if cancellable:
                    raise
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.wait_readable(fd)
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise WorkerDied
            return data

    def has_news(self) -> bool:
        """Whether the worker has written something, or closed its end, now."""
        if self._buffer:
            return True
        try:
            data = os.read(self._recv_fd, _READ_SIZE)
        except BlockingIOError:
            return False
        self._buffer += data  # b"" at EOF: receive() then raises WorkerDied
        return True

    def at_eof(self) -> bool:
        """Whether the worker closed its end with nothing unread before it."""
        return self.has_news() and not self._buffer

    def close_send(self) -> None:
        """Close the job pipe: an idle worker reads EOF and exits cleanly."""
        if self._send_fd is not None:
            close_fds(self._send_fd)
            self._send_fd = None

    def close(self) -> None:
        """Close both pipes (the worker is gone)."""
        self.close_send()
        if self._recv_fd >= 0:
            close_fds(self._recv_fd)
            self._recv_fd = -1


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
