"""The raw-pipe floor: an echo child over two pipes, driven with trio waits.

The child is started once and echoes length-prefixed frames with blocking reads and
writes.  The parent writes a frame, waits with `trio.lowlevel.wait_readable` and reads
the echo with ``os.read``/``os.readv``: no pickling, no worker cache, no limiter
bookkeeping beyond the benchmark's own.  What a library adds on top of a pipe shows
up as the distance to this row.

Run as a script, this module is the echo child (its stdin and stdout are the pipes).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys

HEADER = struct.Struct("<Q")
_READ_SIZE = 1 << 16
# Up to this size the header and payload go out in one write, as a library would.
_SMALL = _READ_SIZE - HEADER.size


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _child_main() -> None:
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    buffer = b""
    while True:
        while len(buffer) < HEADER.size:
            chunk = os.read(rfd, _READ_SIZE)
            if not chunk:
                return
            buffer += chunk
        (length,) = HEADER.unpack_from(buffer)
        end = HEADER.size + length
        if len(buffer) >= end:
            frame, buffer = buffer[:end], buffer[end:]
            _write_all(wfd, frame)
            continue
        big = bytearray(end)
        view = memoryview(big)
        have = len(buffer)
        view[:have] = buffer
        buffer = b""
        while have < end:
            got = os.readv(rfd, [view[have:]])
            if not got:
                return
            have += got
        _write_all(wfd, big)


class FloorChannel:
    """The parent's end of one echo child."""

    def __init__(self) -> None:
        # stdin/stdout pipes: os.pipe() pairs, default (64 KiB) capacity.
        self._process = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self.pid = self._process.pid
        self._send_fd = self._process.stdin.fileno()
        self._recv_fd = self._process.stdout.fileno()
        os.set_blocking(self._send_fd, False)
        os.set_blocking(self._recv_fd, False)

    async def roundtrip(self, payload: bytes | memoryview) -> bytes | bytearray:
        """Send one frame, wait for its echo and return the echoed payload."""
        import trio

        length = len(payload)
        head = HEADER.pack(length)
        if length <= _SMALL:
            await self._send(head + bytes(payload))
        else:
            await self._send(head)
            await self._send(payload)
        # The floor of "pipe + trio wait": nothing is there yet, so wait first.
        await trio.lowlevel.wait_readable(self._recv_fd)
        buffer = b""
        while len(buffer) < HEADER.size:
            buffer += await self._read_some()
        (got_length,) = HEADER.unpack_from(buffer)
        end = HEADER.size + got_length
        if len(buffer) >= end:
            return buffer[HEADER.size : end]
        out = bytearray(got_length)
        view = memoryview(out)
        have = len(buffer) - HEADER.size
        view[:have] = buffer[HEADER.size :]
        while have < got_length:
            try:
                got = os.readv(self._recv_fd, [view[have:]])
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._recv_fd)
                continue
            if not got:
                raise EOFError("the floor's echo child died")
            have += got
        return out

    async def _send(self, data: bytes | memoryview) -> None:
        import trio

        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._send_fd, view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._send_fd)

    async def _read_some(self) -> bytes:
        import trio

        while True:
            try:
                data = os.read(self._recv_fd, _READ_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._recv_fd)
                continue
            if not data:
                raise EOFError("the floor's echo child died")
            return data

    def close(self) -> None:
        """Close the pipes (the child sees EOF and exits) and reap the child."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        self._process.stdout.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    _child_main()
