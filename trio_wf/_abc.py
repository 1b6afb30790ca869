"""The seam between callers (and the workflow engine) and execution backends."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import trio

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


@runtime_checkable
class SupportsRunSync(Protocol):
    """What any execution backend offers: `WorkerContext` is one.

    A backend runs ``sync_fn(*args)`` somewhere (worker processes, threads, the
    current thread, a cluster) with the semantics of :func:`trio_wf.run_sync` and
    reports its state with ``statistics()``.  Backends are opened and closed by
    an ``open_*`` async context manager; code that receives one (the workflow
    engine, libraries) only calls these two methods, so it works with any of them.
    """

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
    ) -> R:
        """Run ``sync_fn(*args)`` and return or raise its outcome."""
        ...

    def statistics(self) -> object:
        """Return a snapshot of the backend's state."""
        ...
