"""trio_wf: run CPU-bound Python in parallel from Trio, and workflows on top."""

import typing as _typing

from _trio_wf_worker._policies import RetirePolicy as RetirePolicy
from _trio_wf_worker._protocol import RemoteError as RemoteError

from ._abc import SupportsRunSync as SupportsRunSync
from ._context import (
    WorkerContext as WorkerContext,
    WorkerContextStatistics as WorkerContextStatistics,
    WorkerType as WorkerType,
    current_default_worker_limiter as current_default_worker_limiter,
    open_worker_context as open_worker_context,
)
from ._defaults import (
    cache_scope as cache_scope,
    configure_default_context as configure_default_context,
    default_context_statistics as default_context_statistics,
    run_sync as run_sync,
    start_workers as start_workers,
)
from ._errors import BrokenWorkerError as BrokenWorkerError, WorkerExit as WorkerExit
from ._map import MapResults as MapResults, open_map as open_map
from ._retire import retire_policy as retire_policy
from ._util import fixup_module_metadata as _fixup_module_metadata
from ._version import __version__ as __version__

__all__ = (
    "BrokenWorkerError",
    "MapResults",
    "RemoteError",
    "RetirePolicy",
    "SupportsRunSync",
    "WorkerContext",
    "WorkerContextStatistics",
    "WorkerExit",
    "WorkerType",
    "__version__",
    "cache_scope",
    "configure_default_context",
    "current_default_worker_limiter",
    "default_context_statistics",
    "open_map",
    "open_worker_context",
    "retire_policy",
    "run_sync",
    "start_workers",
)

if _typing.TYPE_CHECKING:
    from ._dask import open_dask_context as open_dask_context

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata


def __getattr__(name: str) -> object:
    # open_dask_context needs distributed, an optional extra (trio-wf[dask]):
    # import it on first use, so that `import trio_wf` never imports Dask.  It
    # is left out of __all__ so that `from trio_wf import *` does not either.
    if name == "open_dask_context":
        from ._dask import open_dask_context

        return open_dask_context
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    # List open_dask_context with the rest, for completion and help(), without
    # importing it: __getattr__ serves it on first use.
    return sorted({*globals(), "open_dask_context"})
