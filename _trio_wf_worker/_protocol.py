"""The wire protocol shared by the parent and its workers.

Every message is a 9-byte header (payload length, message kind) followed by the
payload, over a pair of anonymous pipes that only the parent and its own child hold
(see the security rules: this channel is trusted *because* nobody else can write
to it).  Both sides import the constants from here, so they cannot drift apart.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys

# Not imported at run time: they would cost a spawned worker milliseconds of
# start-up (typing, collections).  Workers import traceback only on error paths.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

HEADER = struct.Struct("<QB")

# parent -> worker
CONFIG = 1
JOB = 2
# worker -> parent
READY = 10
INIT_FAILED = 11
OK = 12
ERROR = 13
# "I exited without taking your job": idle timeout or retirement.  The parent
# resubmits the job elsewhere (it never ran), so these races are invisible.
BYE = 14
# retire() raised; the payload is the formatted traceback text.
RETIRE_FAILED = 15

# Exit statuses a worker chooses itself.
EXIT_CLEAN = 0
EXIT_RETIRE_FAILED = 3

PROTOCOL = pickle.HIGHEST_PROTOCOL


# Smaller out-of-band buffers stay in the pickle stream (see `_shm`).
BUFFER_THRESHOLD = 1 << 16


def dumps(obj: object, buffers: list[pickle.PickleBuffer] | None = None) -> bytes:
    """Pickle ``obj`` fast, falling back to cloudpickle only where needed.

    Plain pickle is about ten times faster than cloudpickle for a typical job, but
    it pickles ``__main__`` functions and classes by reference, which a spawned
    worker cannot resolve.  A ``__main__`` reference shows up in the pickle as the
    module name, so a substring test (a memchr-speed scan) decides.

    With ``buffers``, protocol 5 buffers of at least `BUFFER_THRESHOLD` bytes are
    left out of the stream and appended to it instead.
    """
    callback = None if buffers is None else _out_of_band(buffers)
    try:
        data = pickle.dumps(obj, PROTOCOL, buffer_callback=callback)
    except Exception:  # lambdas, local functions, dynamic classes...
        pass
    else:
        if b"__main__" not in data:
            return data
    import cloudpickle  # lazy: most payloads never need it

    if buffers is not None:
        buffers.clear()
    return cloudpickle.dumps(obj, PROTOCOL, buffer_callback=callback)  # type: ignore[no-any-return]


def _out_of_band(
    buffers: list[pickle.PickleBuffer],
) -> Callable[[pickle.PickleBuffer], bool]:
    def keep(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < BUFFER_THRESHOLD:
            return True  # in band
        buffers.append(buffer)
        return False

    return keep


def frame(kind: int, payload: bytes = b"") -> bytes:
    """Return the bytes of one message, header included."""
    return HEADER.pack(len(payload), kind) + payload


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to a blocking file descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class BlockingReader:
    """Reads whole messages from a blocking pipe, one ``read`` for small ones."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def _read_exactly(self, n: int) -> bytes:
        # Small messages arrive in one read; large ones are read straight into a
        # preallocated buffer instead of being concatenated piece by piece.
        if len(self._buffer) >= n:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
            return data
        out = bytearray(n)
        view = memoryview(out)
        have = len(self._buffer)
        view[:have] = self._buffer
        self._buffer = b""
        while have < n:
            chunk = os.read(self.fd, max(n - have, 65536))
            if not chunk:
                raise EOFError
            take = min(len(chunk), n - have)
            view[have : have + take] = chunk[:take]
            self._buffer = chunk[take:]
            have += take
        return bytes(out) if n < 65536 else out  # type: ignore[return-value]

    def read_message(self) -> tuple[int, bytes]:
        """Return the next ``(kind, payload)``; raise `EOFError` at end of stream."""
        if len(self._buffer) < HEADER.size:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
            while len(self._buffer) < HEADER.size:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError
                self._buffer += chunk
        length, kind = HEADER.unpack_from(self._buffer)
        self._buffer = self._buffer[HEADER.size :]
        return kind, self._read_exactly(length)

    def has_buffered(self) -> bool:
        return bool(self._buffer)


class RemoteError(Exception):
    """Stands in for an exception that could not travel back from a worker.

    Raised in the caller when the worker's exception could not be pickled (it held
    a lock, a socket, a generator...).  It keeps what can be kept: the original
    type's qualified name, its message and the formatted remote traceback.

    Attributes:
        type_name: ``module.QualName`` of the original exception.
        message: ``str()`` of the original exception.
        remote_traceback: the traceback text as formatted in the worker.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(type_name, message, remote_traceback)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return (
            f"{self.type_name}: {self.message} (the exception could not be "
            f"pickled; its remote traceback follows)\n{self.remote_traceback}"
        )


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a type or callable, for error messages."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if name is None:
        return repr(obj)
    return f"{module}.{name}" if module and module != "builtins" else name


def describe_callable(fn: Any) -> str:
    """A short name for ``fn``, seeing through `functools.partial`."""
    inner = getattr(fn, "func", None)
    if inner is not None and callable(inner):
        return f"functools.partial({qualified_name(inner)}, ...)"
    return qualified_name(fn)


def dumps_exception(exc: BaseException) -> bytes:
    """Pickle ``exc`` with its traceback and cause chain, or a `RemoteError`."""
    try:
        import copyreg  # error path only

        from tblib import pickling_support

        pickling_support.install(exc)
        # tblib rebuilds exceptions whose class has its own __init__ without
        # calling it; for builtin ones (SystemExit.code, ImportError.name...) their
        # own __reduce__ is right, so use it and keep tblib's chain handling.
        for link in _chain(exc):
            if type(link).__module__ == "builtins":
                copyreg.pickle(type(link), _reduce_builtin_exception)
        return dumps(exc)
    except BaseException:  # a SystemExit from a __reduce__ included: see _run_job
        text = format_exception_text(exc)
        return dumps(RemoteError(qualified_name(type(exc)), str(exc), text))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is not None and all(link is not s for s in seen):
            seen.append(link)
            todo += [link.__cause__, link.__context__]
    return seen


def _reduce_builtin_exception(exc: BaseException) -> tuple[Any, ...]:
    from tblib.pickling_support import unpickle_exception

    reduced = exc.__reduce__()
    assert isinstance(reduced, tuple)  # a string only for module-level singletons
    func, args, *state = reduced
    chain = (exc.__cause__, exc.__traceback__, exc.__context__)
    notes = getattr(exc, "__notes__", None)
    return (
        unpickle_exception,
        (func, args, *chain, exc.__suppress_context__, notes),
        *state,
    )


def format_exception_text(exc: BaseException) -> str:
    import traceback  # error path only

    return "".join(traceback.format_exception(exc))


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed or broken stream must not stop an exit
            pass
