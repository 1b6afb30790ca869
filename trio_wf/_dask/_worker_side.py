"""What a `DaskContext` sends to the Dask workers: the call payload, the setup plugin.

Dask pickles `WorkerSetup` by reference, so a worker imports it by this module's
path, ``trio_wf._dask._worker_side``: workers that get the plugin need trio_wf
installed, and client and workers must agree on where it lives.  `Call` never
reaches the workers as itself (its pickle is ``fn(*args)``), so plain calls need
nothing of trio_wf there.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import distributed


class Call:
    """``fn(*args)`` that happens when the pickle is loaded.

    The task Dask runs is :func:`pickle.loads` itself, a function every worker
    can import; unpickling this object calls ``fn(*args)`` (the ``__reduce__``
    protocol).  So the workers need neither trio_wf nor trio, and a function
    they cannot import fails the task with its `ImportError` when it runs,
    instead of failing Dask's own deserialization (which may retry or hang).
    """

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.fn, self.args


class WorkerSetup(distributed.WorkerPlugin):
    """Runs on every worker, also those that join later (replacements).

    Makes the worker process ignore SIGINT, so a Ctrl+C in the terminal that
    started a local cluster stops the client side, which then closes the cluster
    in order, instead of killing tasks mid-flight; then calls ``init``.
    """

    def __init__(self, init: Callable[[], object] | None) -> None:
        self.init = init

    def setup(self, worker: object) -> None:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # pragma: no cover, not the main thread of the worker
            pass
        if self.init is not None:
            self.init()
