"""The receiver's own copies of large buffers, in memory that stays fast to reuse.

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
  itself after freeing one such block).
* From `MAPPED` up, glibc always maps a fresh block, so a buffer kept by its
  object gets a private mapping of its own, advised to use transparent huge
  pages: one fault per 2 MiB instead of 512.  It is unmapped with its object.
  A ``bytes`` that large still faults every page: its memory is malloc's.
"""

from __future__ import annotations

import mmap
import os

MAPPED = 32 << 20  # glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX)
_HINT = 31 << 20  # a block just below it (with malloc's header, still <= MAPPED)
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


def owned_copy(part: memoryview) -> bytearray | mmap.mmap:
    """A writable copy of ``part`` for an object to keep."""
    if part.nbytes < MAPPED:
        return bytearray(part)
    block = mmap.mmap(-1, part.nbytes, flags=mmap.MAP_PRIVATE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        block.madvise(mmap.MADV_HUGEPAGE)
    with memoryview(block) as view:
        view[:] = part
    return block
