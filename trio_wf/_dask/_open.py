"""`open_dask_context`: check the arguments, connect, yield a `DaskContext`, close."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._util import is_int_at_least
from ._cluster import Connection, checked_security
from ._context import DaskContext

_LIFETIME_HINT = (
    "Dask retires workers itself: set the distributed.worker.lifetime.duration, "
    ".stagger and .restart options (dask config or DASK_DISTRIBUTED__WORKER__"
    "LIFETIME__* environment variables) on the workers instead"
)


@asynccontextmanager
async def open_dask_context(
    address: str | None = None,
    *,
    cluster: Any = None,
    n_workers: int | None = None,
    security: Any = None,
    insecure: bool = False,
    init: Callable[[], object] | None = None,
    retire: Callable[[], object] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109, bounds Dask calls, as in Dask
    cluster_options: Mapping[str, Any] | None = None,
    connect_timeout: float = 4.0,
    share_tasks: bool = False,
) -> AsyncIterator[DaskContext]:
    """Open a `~trio_wf._dask.DaskContext`: `run_sync` on a Dask cluster.

    With no ``address`` and no ``cluster``, a private ``LocalCluster`` of
    ``n_workers`` worker processes (one thread each) is started on 127.0.0.1,
    with its dashboard, if bokeh is installed, on a free loopback port.  With an
    ``address``, the context connects to that scheduler; with a ``cluster``
    object (a ``LocalCluster``, dask-jobqueue's ``SLURMCluster``...), to that
    cluster.  See :doc:`/scaling`.

    On exit the context closes what it opened, the client and a private cluster
    (never a cluster or scheduler it was given), shielded from cancellation and
    bounded by ``timeout``.

    Args:
        address: the scheduler to connect to, such as ``"tls://head:8786"``.
        cluster: a cluster object to connect to instead.
        n_workers: how many workers a private cluster starts (default: one
            per CPU); only without ``address`` and ``cluster``.
        security: a ``distributed.Security``.  Required, with TLS and
            mutual authentication (``require_encryption=True``, a CA and a client
            certificate), to reach a scheduler that is not on loopback.  Given
            without ``address`` or ``cluster``, the private cluster uses it and
            ``tls://``.
        insecure: allow plain TCP to a scheduler that is not on loopback, where
            anyone who reaches it can run code on the workers.
        init: called without arguments on every worker, also on workers that
            join later (replacements), before their next task.
        retire: not supported: Dask's ``distributed.worker.lifetime.*``
            settings retire workers; passing it raises `ValueError`.
        timeout: seconds allowed for starting a private cluster, and for
            closing.
        cluster_options: more keyword arguments for the private ``LocalCluster``
            (``memory_limit``, ``threads_per_worker``...).
        connect_timeout: seconds allowed for reaching the scheduler at
            ``address`` (or the ``cluster``'s); a port where nothing listens
            fails at once.
        share_tasks: let many calls made at once share a few Dask tasks, each
            running its calls in turn for a slice of time, which saves Dask's
            milliseconds per task on short calls (:ref:`dask-throughput`).  The
            price: a cancelled call that shares a task is killed, or released,
            only with the task's last waiting call (it may still start), and
            when a call kills its worker, the task's other calls run again,
            also those that had finished.  The workflow engine's own Dask
            contexts share tasks; its runs are cancelled as a whole.

    Raises:
        ValueError: for an inconsistent choice of arguments, a ``retire``, or an
            insecure connection to a scheduler that is not on loopback.
        BrokenWorkerError: if ``init`` raised on a worker (as ``__cause__``).
        OSError: if the scheduler cannot be reached within ``connect_timeout``;
            the message names its address and what to check.
    """
    await trio.lowlevel.checkpoint()
    if retire is not None:
        msg = f"retire is not supported by open_dask_context: {_LIFETIME_HINT}"
        raise ValueError(msg)
    if address is not None and cluster is not None:
        msg = "pass either address or cluster, not both"
        raise ValueError(msg)
    if n_workers is not None and (address is not None or cluster is not None):
        msg = "n_workers only applies to the private cluster (no address or cluster)"
        raise ValueError(msg)
    if cluster_options and (address is not None or cluster is not None):
        msg = (
            "cluster_options only apply to the private cluster (no address or cluster)"
        )
        raise ValueError(msg)
    if n_workers is not None and not is_int_at_least(n_workers, 1):
        msg = f"n_workers must be a positive int, got {n_workers!r}"
        raise ValueError(msg)
    function: object = init
    if function is not None and not callable(function):
        msg = f"init must be callable without arguments, got {init!r}"
        raise TypeError(msg)
    for name, seconds in (("timeout", timeout), ("connect_timeout", connect_timeout)):
        if not seconds > 0 or math.isinf(seconds):
            msg = f"{name} must be a positive number of seconds, got {seconds!r}"
            raise ValueError(msg)
    security = checked_security(address, cluster, security, insecure)
    connection = Connection(
        address=address,
        cluster=cluster,
        n_workers=n_workers,
        cluster_options=cluster_options,
        security=security,
        init=init,
        timeout=timeout,
        connect_timeout=connect_timeout,
    )
    context: DaskContext | None = None
    try:
        client = await trio.to_thread.run_sync(connection.connect)
        context = DaskContext(
            client, trio.lowlevel.current_trio_token(), share_tasks=share_tasks
        )
        yield context
    finally:
        if context is not None:
            context._close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(connection.close)
