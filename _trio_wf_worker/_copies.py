"""The receiver's own copies of large buffers, in memory that faults few pages in.

Whatever leaves the arena is copied into fresh memory: a ``bytes`` or
``bytearray`` rebuilt from a view of the arena, or a buffer that an object keeps
(a NumPy array's).  Touching fresh memory costs a page fault per 4 KiB page,
which here costs more than copying the page (several microseconds on a virtual
machine): left to itself, a 16 MiB copy could fault 4096 times on every call.

* Below `MAPPED`, copies come from glibc's heap.  glibc maps every block above
  its *mmap threshold* afresh, and raises the threshold, up to 32 MiB, only
  after freeing such a block: so its first two calls of a size fault every page
  in.  `hint_malloc` allocates and frees one untouched block of 31 MiB the first
  time a process receives a large message, which raises the threshold at once:
  from the second call of a size, its copies reuse the heap's memory.  glibc
  then keeps up to twice the threshold (62 MiB) of freed memory at the top of its
  heap instead of returning it at once (its own rule, the state it reaches by
  itself after freeing one such block).  A process whose environment sets
  glibc's thresholds (``MALLOC_TRIM_THRESHOLD_`` and the like, which Dask's
  nanny sets for its workers) keeps them fixed, and its copies fault as before.
* From `MAPPED` up, glibc always maps a fresh block, so a buffer kept by its
  object gets a private mapping of its own, advised to use transparent huge
  pages: one fault per 2 MiB instead of 512.  Each side of an arena keeps its
  last `KEPT` such blocks while calls keep coming (`Spares`), so that the next
  message of a size is copied into one its object has let go of, with no fault
  at all.  A worker gives them back when it trims its arena (after
  ``_shm.TRIM_AFTER`` seconds without a job), the parent when the worker goes:
  each side holds at most `KEPT` blocks of the largest size it received beyond
  what its objects use.  A block is unmapped once neither its object nor
  `Spares` refers to it.  A ``bytes`` that large still faults every page: its
  memory is malloc's.
"""

from __future__ import annotations

import mmap
import os
import sys

MAPPED = 32 << 20  # glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX)
_HINT = 31 << 20  # a block just below it (with malloc's header, still <= MAPPED)
KEPT = 2  # mapped copies each side of an arena keeps for reuse
_hinted = False


def hint_malloc() -> None:
    """Have glibc's malloc keep blocks below `MAPPED` in its heap, once per process
    (see the module docstring); elsewhere, do nothing."""
    global _hinted
    if _hinted:
        return
    _hinted = True
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return
    if libc and libc.startswith("glibc"):
        # calloc leaves a freshly mapped block untouched (the kernel zeroed it):
        # no page is faulted in, and freeing it raises the threshold.
        bytes(_HINT)


class Spares:
    """One side of an arena's mapped copies (`MAPPED` and up), kept for reuse.

    The side keeps the last `KEPT` blocks it handed out.  A later message whose
    buffer has the size of one that no object refers to any more is copied into
    that block: its pages are still there, so nothing is faulted in or zeroed.
    The blocks kept are given back by `release`, which a worker calls when it
    trims its arena, and both sides call when the worker goes.
    """

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks: list[mmap.mmap] = []

    def copy(self, part: memoryview) -> bytearray | mmap.mmap:
        """A writable copy of ``part`` for an object to keep."""
        size = part.nbytes
        if size < MAPPED:
            return bytearray(part)
        blocks = self._blocks
        block = _unused(blocks, size)
        if block is None:
            block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
            if hasattr(mmap, "MADV_HUGEPAGE"):
                block.madvise(mmap.MADV_HUGEPAGE)
        else:
            blocks.remove(block)
        blocks.append(block)
        del blocks[:-KEPT]
        with memoryview(block) as view:
            view[:] = part
        return block

    def held(self) -> bool:
        """Whether any block is kept."""
        return bool(self._blocks)

    def release(self) -> None:
        """Stop keeping the blocks: each is unmapped once no object uses it."""
        self._blocks.clear()


def _unused(blocks: list[mmap.mmap], size: int) -> mmap.mmap | None:
    # A block whose only reference is the list's: every object built on it (a
    # NumPy array's base, a view, a buffer kept as is) holds a reference.
    for block in blocks:
        if len(block) == size and _FREE and sys.getrefcount(block) <= _FREE:
            return block
    return None


def _references_in_a_loop(items: list[object]) -> int:
    for item in items:
        return sys.getrefcount(item)
    return 0


# What getrefcount says of an item only its list holds, from a loop like
# _unused's (what it counts varies between Python versions); 0 where there is no
# getrefcount (PyPy): then no block is ever reused.
_FREE = _references_in_a_loop([object()]) if hasattr(sys, "getrefcount") else 0
