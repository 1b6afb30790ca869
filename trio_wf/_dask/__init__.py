"""`open_dask_context`: the same `run_sync` on a Dask distributed cluster.

Imported lazily (``trio_wf.open_dask_context``), so that ``import trio_wf`` never
imports distributed, an optional extra.  This package only checks that the extra
is installed and re-exports; the work is done in:

- ``_open``: `open_dask_context`, which checks its arguments and ties the others
  together;
- ``_cluster``: which schedulers are safe to reach, the private ``LocalCluster``,
  the client;
- ``_context``: `DaskContext`, its ``run_sync``, and its statistics;
- ``_gather``: calls submitted, and their results gathered, in batches;
- ``_fuse``: many calls at once share a few tasks, each for a time slice;
- ``_chain_run``: a chain of calls in one task;
- ``_kill``: kill-on-cancel: releasing a cancelled call, killing its worker;
- ``_worker_side``: what is pickled to the workers, importable there by name.
"""

from __future__ import annotations

# Every module of this package imports distributed: checked once, here, since
# importing any of them runs this first.
try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover, the tests install the extra
    msg = (
        f"trio_wf.open_dask_context needs Dask distributed ({exc}); "
        "install it with: pip install 'trio-wf[dask]'"
    )
    raise ImportError(msg) from exc

from .._util import fixup_module_metadata as _fixup_module_metadata
from ._context import (
    DaskContext as DaskContext,
    DaskContextStatistics as DaskContextStatistics,
)
from ._open import open_dask_context as open_dask_context

# The docs and tracebacks name trio_wf._dask.DaskContext, as before the split.
_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
