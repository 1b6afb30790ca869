"""Large payloads through shared memory instead of the pipe.

Every worker has an *arena*: an anonymous ``memfd`` created by the parent with the
worker's pipes and handed to the worker at start (``pass_fds``, fork inheritance or
``SCM_RIGHTS`` through the fork server).  Only the two of them hold it, and the
kernel frees it when the last of them closes it, so a worker that dies
mid-transfer leaks nothing.

A message whose pickle has large out-of-band buffers (pickle protocol 5: NumPy
arrays, and ``bytes``/``bytearray`` arguments and results), or whose pickle
stream is itself large, carries the `SHM` flag in its kind.  Its payload is then a
small table; the data sits in the arena:

* `HEAD`: the number of buffers, then the pickle stream's length in the arena
  (0: the stream follows the table inline);
* one `SLOT` per buffer: its offset, its length, and whether the receiver may
  hand the pickle a view of the arena (`VIEW`: a wrapped ``bytes`` or
  ``bytearray``, whose reconstructor copies it at once) or must give it a copy of
  its own (`OWNED`: a NumPy array keeps the buffer it is given).

The writer copies into the arena and the reader copies out (into memory chosen
to fault few pages in: see `_copies`), one copy each way and no system call per
byte.  Requests and replies alternate, so one arena serves both directions.  The
arena grows on demand, to the next power of two of the largest message, and keeps
its memory while calls keep coming, so that a run of large calls does not fault
every page in again each time.  A worker left idle for `TRIM_AFTER` seconds
gives back everything above `KEEP` bytes.  That trim holds a POSIX record lock on
the arena, which the parent also holds while it copies in or out, so the worker
never punches a hole in data the parent is writing or reading (the only time the
two could overlap: the worker trims while waiting for a job).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import pickle
import struct
import types

from . import _protocol
from ._copies import Spares, hint_malloc
from ._protocol import HEADER, JOB, OK, PROTOCOL, dumps, frame

TYPE_CHECKING = False  # see _protocol: no typing import at run time
if TYPE_CHECKING:
    from typing import Any

SHM = 0x80  # set in a message kind: the payload is a table, the data in the arena
STREAM_THRESHOLD = 1 << 20  # larger pickle streams go to the arena too
KEEP = 64 << 20  # arena memory an idle worker keeps
TRIM_AFTER = 2.0  # seconds a worker waits for a job before trimming its arena
_ALIGN = 64
_MIN_SIZE = 1 << 20

HEAD = struct.Struct("<IQ")
SLOT = struct.Struct("<QQB")
VIEW = 0
OWNED = 1

_WRAPPED = (bytes, bytearray)


class _Copied:
    """Pickles a ``bytes``/``bytearray`` out of band; unpickles to a copy of it."""

    __slots__ = ("obj",)

    def __init__(self, obj: bytes | bytearray) -> None:
        self.obj = obj

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return type(self.obj), (pickle.PickleBuffer(self.obj),)


def _large(obj: object) -> bool:
    size = _protocol.BUFFER_THRESHOLD  # the one setting, shared with dumps()
    return type(obj) in _WRAPPED and len(obj) >= size  # type: ignore[arg-type]


# A framed message, the parts to copy into the arena first (offset, data), and the
# arena size they need.  A plain tuple: every call builds two of them.
Outgoing = tuple[bytes, tuple[tuple[int, memoryview], ...], int]
_NOTHING: frozenset[int] = frozenset()


def _wrap(items: tuple[Any, ...]) -> tuple[tuple[Any, ...], frozenset[int]]:
    # Protocol 5 keeps bytes and bytearray in the pickle stream; wrapped, they
    # travel through the arena, and the receiver may hand their reconstructor a
    # view, which it copies at once.
    if not any(map(_large, items)):
        return items, _NOTHING
    views = frozenset(id(item) for item in items if _large(item))
    return tuple(_Copied(item) if id(item) in views else item for item in items), views


# A JOB payload starts with the length of the function's own pickle, then that
# pickle, then the arguments' message.  A function pickled by reference (a
# module's function or class, a builtin) is pickled once per process and, in the
# worker, unpickled once: a global's pickle is most of a small call's.  Any other
# callable (partial, bound method, lambda...) has length 0 and travels in the
# arguments' pickle, as ``(fn, args)``, so it keeps sharing objects with them.
FUNCTION = struct.Struct("<I")
_UNCACHED = FUNCTION.pack(0)
_CACHE_SIZE = 256  # functions per process; the cache is emptied when full
_function_heads: dict[Any, bytes] = {}
_functions: dict[bytes, Any] = {}


def _by_reference(fn: Any) -> bool:
    kind = type(fn)
    if kind is types.FunctionType or kind is type:
        return True
    # A builtin bound to an object (``[].append``) pickles that object.
    return kind is types.BuiltinFunctionType and isinstance(
        fn.__self__, (types.ModuleType, type(None))
    )


def _function_head(fn: Any) -> bytes:
    # Checked first: these types hash and compare by identity, so the lookup
    # runs no user code.
    if not _by_reference(fn):
        return _UNCACHED
    head = _function_heads.get(fn)
    if head is not None:
        return head
    try:
        data = pickle.dumps(fn, PROTOCOL)
    except Exception:  # a lambda or local function: cloudpickle's, by value
        return _UNCACHED
    if b"__main__" in data:  # by value too (see dumps)
        return _UNCACHED
    if len(_function_heads) >= _CACHE_SIZE:
        _function_heads.clear()
    head = _function_heads[fn] = FUNCTION.pack(len(data)) + data
    return head


def encode_call(fn: Any, args: tuple[Any, ...]) -> Outgoing:
    """The `JOB` message of a call, its large buffers out of band.

    Only the top level is wrapped (the arguments themselves): a large ``bytes``
    deeper inside still reaches the arena inside a large pickle stream, at the cost
    of one more copy.
    """
    head = _function_head(fn)
    args, views = _wrap(args)
    if head is _UNCACHED:
        return _encode(JOB, (fn, args), views, head)
    return _encode(JOB, args, views, head)


def load_call(arena: Arena, kind: int, payload: bytes) -> tuple[Any, Any]:
    """``(fn, args)`` from a `JOB` message (the worker's side of `encode_call`)."""
    view = memoryview(payload)
    (length,) = FUNCTION.unpack_from(view)
    start = FUNCTION.size + length
    if not length:
        fn, args = arena.loads(kind, view[start:])
        return fn, args
    data = bytes(view[FUNCTION.size : start])
    fn = _functions.get(data)
    if fn is None:
        fn = pickle.loads(data)
        if len(_functions) >= _CACHE_SIZE:
            _functions.clear()
        _functions[data] = fn
    return fn, arena.loads(kind, view[start:])


def encode_result(result: Any) -> Outgoing:
    """The `OK` message of a result, its large buffers (itself, or its items) out
    of band."""
    views = _NOTHING
    if _large(result):
        views = frozenset((id(result),))
        result = _Copied(result)
    elif type(result) is tuple:
        result, views = _wrap(result)
    elif type(result) is list and any(map(_large, result)):
        items, views = _wrap(tuple(result))
        result = list(items)
    return _encode(OK, result, views)


def _encode(kind: int, obj: Any, views: frozenset[int], head: bytes = b"") -> Outgoing:
    buffers: list[pickle.PickleBuffer] = []
    stream = dumps(obj, buffers)
    if not buffers and len(stream) < STREAM_THRESHOLD:
        return HEADER.pack(len(head) + len(stream), kind) + head + stream, (), 0
    table = [head, HEAD.pack(len(buffers), 0)]
    parts = []
    offset = 0
    for buffer in buffers:
        raw = buffer.raw()
        how = VIEW if id(raw.obj) in views else OWNED
        table.append(SLOT.pack(offset, raw.nbytes, how))
        parts.append((offset, raw))
        offset = _aligned(offset + raw.nbytes)
    if len(stream) >= STREAM_THRESHOLD:
        table[1] = HEAD.pack(len(buffers), len(stream))
        parts.append((offset, memoryview(stream)))
        offset += len(stream)
    else:
        table.append(stream)
    return frame(kind | SHM, b"".join(table)), tuple(parts), offset


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class Arena:
    """One side's mapping of a worker's shared memory arena.

    Args:
        fd: the arena's memfd.
        lock: hold the arena's record lock while copying in or out (the parent
            does, so that an idle worker's trim waits; see the module docstring).
    """

    __slots__ = ("_fd", "_lock", "_map", "_size", "_spares", "_untrimmed")

    def __init__(self, fd: int, *, lock: bool = False) -> None:
        self._fd = fd
        self._lock = lock
        self._map: mmap.mmap | None = None
        self._size = 0
        # Whether a message since the last trim used memory above KEEP.
        self._untrimmed = False
        self._spares = Spares()

    def write(self, message: Outgoing) -> bytes:
        """Copy ``message``'s out-of-band parts into the arena; return its frame."""
        framed, parts, extent = message
        if not parts:
            return framed
        if self._lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            view = self._view(extent, grow=True)
            try:
                for offset, part in parts:
                    view[offset : offset + part.nbytes] = part
            finally:
                view.release()
        finally:
            if self._lock:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        return framed

    def loads(self, kind: int, payload: bytes | bytearray | memoryview) -> Any:
        """Unpickle a message's payload, from the arena if ``kind`` says so."""
        if not kind & SHM:
            return pickle.loads(payload)
        if self._lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            return self._loads_shared(payload)
        finally:
            if self._lock:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _loads_shared(self, payload: bytes | bytearray | memoryview) -> Any:
        count, stream_length = HEAD.unpack_from(payload)
        slots = [
            SLOT.unpack_from(payload, HEAD.size + i * SLOT.size) for i in range(count)
        ]
        end = max((o + n for o, n, _ in slots), default=0)
        stream_offset = _aligned(end)
        if stream_length:
            end = stream_offset + stream_length
        view = self._view(end, grow=False)
        hint_malloc()
        handed: list[memoryview] = []
        try:
            buffers: list[Any] = []
            for offset, length, how in slots:
                part = view[offset : offset + length]
                if how == VIEW:
                    handed.append(part)
                    buffers.append(part)
                else:
                    buffers.append(self._spares.copy(part))
                    part.release()
            if stream_length:
                stream: Any = view[stream_offset:end]
                handed.append(stream)
            else:
                stream = memoryview(payload)[HEAD.size + count * SLOT.size :]
            return pickle.loads(stream, buffers=buffers)
        finally:
            for part in handed:
                part.release()
            view.release()

    def needs_trim(self) -> bool:
        """Whether the arena may hold more than `KEEP` bytes of memory, or this
        side keeps copies for reuse."""
        return self._untrimmed or self._spares.held()

    def trim(self) -> None:
        """Give back this side's copies kept for reuse, and the memory above
        `KEEP` (it then reads as zeroes on both sides), unless the other side is
        copying (then it is not idle)."""
        self._spares.release()
        if self._map is None or not self._untrimmed:
            return
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        try:
            self._map.madvise(mmap.MADV_REMOVE, KEEP, self._size - KEEP)
            self._untrimmed = False
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _view(self, extent: int, *, grow: bool) -> memoryview:
        if extent > KEEP:
            self._untrimmed = True
        if extent > self._size:
            size = os.fstat(self._fd).st_size
            if size < extent:
                if not grow:
                    msg = f"shared memory arena of {size} bytes, message needs {extent}"
                    raise ValueError(msg)
                size = max(_MIN_SIZE, 1 << (extent - 1).bit_length())
                os.ftruncate(self._fd, size)
            self.close_map()
            self._map = mmap.mmap(self._fd, size)
            if hasattr(mmap, "MADV_DONTFORK"):
                # A process forked from this one (a fork worker, a task's own
                # pool) must not keep this arena alive.
                self._map.madvise(mmap.MADV_DONTFORK)
            self._size = size
        assert self._map is not None
        return memoryview(self._map)

    def close_map(self) -> None:
        """Unmap the arena (the descriptor stays open)."""
        if self._map is not None:
            self._map.close()
            self._map, self._size = None, 0

    def close(self) -> None:
        """Unmap the arena and close its descriptor, keep no copies."""
        self._spares.release()
        self.close_map()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def create_fd() -> int:
    """A new, empty arena (close-on-exec: ``pass_fds`` makes it inheritable)."""
    return os.memfd_create("trio_wf-arena")
