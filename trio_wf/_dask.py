"""`open_dask_context`: the same `run_sync` on a Dask distributed cluster.

Imported lazily (``trio_wf.open_dask_context``), so that ``import trio_wf`` never
imports distributed, an optional extra.

How it drives Dask from Trio: a synchronous ``distributed.Client`` owns an event
loop in a thread of its own; Trio never runs asyncio.  A call is submitted with
``Client.submit``, which only queues a message for that loop (it does not block),
then a coroutine scheduled on the client's loop awaits the result and hands it
to Trio with `trio.lowlevel.TrioToken.run_sync_soon`: no thread per call, and
the Trio thread never waits on Dask.  Every Client method that blocks (creation,
plugin registration, cancel, restart, close) runs in `trio.to_thread.run_sync`,
bounded by a timeout.
"""

from __future__ import annotations

import gc
import ipaddress
import math
import os
import pickle
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import CancelledError as FuturesCancelledError
from contextlib import asynccontextmanager
from typing import Any, TypeVar, final

import attrs
import cloudpickle
import outcome
import trio

from _trio_wf_worker._protocol import describe_callable

from ._errors import BrokenWorkerError
from ._util import is_int_at_least

try:
    import dask
    import distributed
    from distributed.comm.addressing import parse_address, parse_host_port
except ImportError as exc:  # pragma: no cover, the tests install the extra
    msg = (
        f"trio_wf.open_dask_context needs Dask distributed ({exc}); "
        "install it with: pip install 'trio-wf[dask]'"
    )
    raise ImportError(msg) from exc

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_LIFETIME_HINT = (
    "Dask retires workers itself: set the distributed.worker.lifetime.duration, "
    ".stagger and .restart options (dask config or DASK_DISTRIBUTED__WORKER__"
    "LIFETIME__* environment variables) on the workers instead"
)


@final
@attrs.frozen
class DaskContextStatistics:
    """A snapshot of a `DaskContext`, from `DaskContext.statistics`.

    Attributes:
        running_calls: calls submitted by this context and not finished yet
            (running on a worker or queued by the scheduler).
        scheduler_address: the address of the scheduler the client talks to.
    """

    running_calls: int
    scheduler_address: str


class _Call:
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


class _WorkerSetup(distributed.WorkerPlugin):
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


class _Waiter:
    """The outcome of one submitted call, delivered to the waiting Trio task."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: outcome.Outcome[Any] | None = None

    def set(self, result: outcome.Outcome[Any]) -> None:
        self.result = result
        self.event.set()


@final
class DaskContext:
    """Runs calls on a Dask cluster; from :func:`trio_wf.open_dask_context`.

    It offers the `trio_wf.SupportsRunSync` methods of a `trio_wf.WorkerContext`,
    so it can be passed wherever a context is (``execute_graph(...,
    context=ctx)``).

    Attributes:
        client: the synchronous ``distributed.Client``, for what this class does
            not wrap (``client.dashboard_link``...).  Its methods block: from Trio,
            call them through `trio.to_thread.run_sync`.
        scheduler_address: the scheduler's address.
    """

    def __init__(
        self, client: Any, token: trio.lowlevel.TrioToken, timeout: float
    ) -> None:
        self.client = client
        self.scheduler_address: str = client.scheduler.address
        self._token = token
        self._timeout = timeout
        self._running = 0
        self._closed = False

    def statistics(self) -> DaskContextStatistics:
        """Return a `DaskContextStatistics` snapshot."""
        return DaskContextStatistics(
            running_calls=self._running, scheduler_address=self.scheduler_address
        )

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
    ) -> R:
        """Run ``sync_fn(*args)`` on a worker of the cluster.

        The semantics are those of :func:`trio_wf.run_sync`, with the
        differences that :ref:`dask-semantics` lists.  ``limiter`` defaults to
        none: the scheduler queues what its workers cannot run yet.

        Raises:
            BrokenWorkerError: the worker running the call died (``address``
                names it), or the connection to the scheduler was lost.
            trio.ClosedResourceError: if the context has been closed.
        """
        if _is_async(sync_fn):
            await trio.lowlevel.checkpoint()
            msg = (
                f"run_sync expected a sync function, but {describe_callable(sync_fn)} "
                "is async; await it directly instead of sending it to a worker"
            )
            raise TypeError(msg)
        result: R
        if limiter is None:
            result = await self._run(sync_fn, args, kill_on_cancel)
        else:
            async with limiter:
                result = await self._run(sync_fn, args, kill_on_cancel)
        return result

    async def _run(self, fn: Callable[..., Any], args: Any, kill: bool) -> Any:
        if self._closed:
            await trio.lowlevel.checkpoint()
            msg = "this dask context is closed"
            raise trio.ClosedResourceError(msg)
        payload = cloudpickle.dumps(_Call(fn, args))
        name = getattr(fn, "__name__", None) or type(fn).__name__
        # pure=False and a random key: identical calls never share a task.
        key = f"{name}-{uuid.uuid4().hex}"
        waiter = _Waiter()
        self._running += 1
        try:
            future = self.client.submit(pickle.loads, payload, key=key, pure=False)
            self.client.loop.add_callback(self._fetch, future, waiter)
            if kill:
                try:
                    await waiter.event.wait()
                except trio.Cancelled:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self._kill, future)
                    raise
            else:
                # Like the local context: the call runs to its end and its
                # outcome is returned; a cancellation is delivered at the
                # caller's next checkpoint.
                with trio.CancelScope(shield=True):
                    await waiter.event.wait()
        finally:
            self._running -= 1
        assert waiter.result is not None
        return self._unwrap(waiter.result, fn, key)

    async def _fetch(self, future: Any, waiter: _Waiter) -> None:
        # Runs in the client's event loop thread.
        try:
            result: outcome.Outcome[Any] = outcome.Value(
                await self.client.gather(future, asynchronous=True)
            )
        except BaseException as exc:  # delivered to the Trio task, which decides
            result = outcome.Error(exc)
        del future  # releases the task's result on the cluster sooner
        try:
            self._token.run_sync_soon(waiter.set, result)
        except trio.RunFinishedError:  # pragma: no cover, the run was torn down
            pass

    def _unwrap(self, result: outcome.Outcome[Any], fn: Any, key: str) -> Any:
        if not isinstance(result, outcome.Error):
            return result.unwrap()
        error = result.error
        what = describe_callable(fn)
        if isinstance(error, distributed.KilledWorker):
            address = error.last_worker.address
            msg = (
                f"dask worker {address} died while running {what} (task {key}); "
                "its nanny log says why"
            )
            raise BrokenWorkerError(msg, address=address) from error
        if isinstance(error, FuturesCancelledError):
            reason = getattr(error, "reason", "unknown")
            if reason == "scheduler-connection-lost":
                msg = (
                    f"lost the connection to the dask scheduler at "
                    f"{self.scheduler_address} while running {what} (task {key})"
                )
            else:
                msg = f"task {key} of {what} was cancelled on the cluster ({reason})"
            raise BrokenWorkerError(msg, address=self.scheduler_address) from error
        return result.unwrap()

    def _kill(self, future: Any) -> None:
        """Cancel ``future``, and kill the worker process running it.

        Dask cannot interrupt a running task: cancelling the future only forgets
        its result.  So the worker's nanny restarts the worker process: it asks
        the worker to stop, kills it after a few seconds (a busy thread does not
        stop), and starts a new one.
        Runs in a thread: these Client calls block.
        """
        client = self.client
        processing = client.processing()
        running_on = [a for a, keys in processing.items() if future.key in keys]
        client.cancel([future], reason="kill_on_cancel")
        if not running_on:  # still queued, or already finished: nothing runs
            return
        try:
            # Waits for the replacement, so that the next call cannot be sent
            # to the dying worker.
            client.restart_workers(running_on, timeout=self._timeout)
        except Exception as exc:
            msg = (
                f"could not restart the dask worker {running_on[0]} that runs a "
                f"cancelled call (kill_on_cancel=True needs workers with nannies)"
            )
            raise BrokenWorkerError(msg, address=running_on[0]) from exc

    def _close(self) -> None:
        self._closed = True


def _is_async(fn: object) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _is_loopback(address: str) -> bool:
    try:
        _, location = parse_address(address)
        host, _ = parse_host_port(location)
    except (ValueError, TypeError):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: we cannot tell without resolving it
        return False


def _check_secure(address: str, security: Any, insecure: bool) -> None:
    """Refuse to talk to a non-loopback scheduler without TLS and mutual auth.

    Anyone who can reach a scheduler can make its workers run code (it unpickles
    what clients send), so plain TCP is only acceptable on loopback.
    """
    if insecure or _is_loopback(address):
        return
    if security is None or not security.require_encryption:
        msg = (
            f"refusing to connect to the dask scheduler at {address} without "
            "TLS: pass security=distributed.Security(require_encryption=True, "
            "tls_ca_file=..., tls_client_cert=..., tls_client_key=...), or "
            "insecure=True if the network is trusted"
        )
        raise ValueError(msg)
    missing = [
        name
        for name in ("tls_ca_file", "tls_client_cert")
        if not getattr(security, name, None)
    ]
    if missing:
        msg = (
            f"security must use TLS with mutual authentication to connect to "
            f"{address}, but its {', '.join(missing)} is not set (or pass "
            "insecure=True if the network is trusted)"
        )
        raise ValueError(msg)


def _start_local_cluster(
    n_workers: int, security: Any, options: Mapping[str, Any], timeout: float
) -> Any:
    kwargs: dict[str, Any] = {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        # A free loopback port: the scheduler's HTTP server (health checks, and
        # the dashboard when bokeh is installed) never takes a public one.
        "dashboard_address": "127.0.0.1:0",
        "timeout": timeout,
    }
    if security is not None:
        kwargs["security"] = security
        kwargs["protocol"] = "tls://"
    kwargs.update(options)
    # No silent retries: a task whose worker died fails at once with
    # KilledWorker, instead of being rerun on (and maybe killing) other workers.
    # The scheduler reads this once, when LocalCluster creates it, just below.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        return distributed.LocalCluster(**kwargs)  # type: ignore[no-untyped-call]


def _close_quietly(*closers: Callable[[], object]) -> None:
    for close in closers:
        try:
            close()
        except Exception:  # pragma: no cover, best effort on the way out
            pass


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
        timeout: seconds allowed for connecting, and for closing.
        cluster_options: more keyword arguments for the private ``LocalCluster``
            (``memory_limit``, ``threads_per_worker``...).

    Raises:
        ValueError: for an inconsistent choice of arguments, a ``retire``, or an
            insecure connection to a scheduler that is not on loopback.
        BrokenWorkerError: if ``init`` raised on a worker (as ``__cause__``).
        OSError: if the scheduler cannot be reached within ``timeout``.
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
    if not timeout > 0 or math.isinf(timeout):
        msg = f"timeout must be a positive number of seconds, got {timeout!r}"
        raise ValueError(msg)
    if security is None and (address is not None or cluster is not None):
        # TLS may be configured in Dask's config (distributed.comm.tls.*, or
        # DASK_DISTRIBUTED__COMM__TLS__* variables): the Client would use it.
        security = getattr(cluster, "security", None) or distributed.Security()  # type: ignore[no-untyped-call]
    if address is not None:
        _check_secure(address, security, insecure)
    elif cluster is not None:
        _check_secure(cluster.scheduler_address, security, insecure)

    state: dict[str, Any] = {}
    plugin_name = f"trio-wf-setup-{uuid.uuid4().hex}"
    owns_cluster = address is None and cluster is None

    def connect() -> Any:
        target = address if address is not None else cluster
        if owns_cluster:
            target = state["cluster"] = _start_local_cluster(
                n_workers or os.cpu_count() or 1,
                security,
                cluster_options or {},
                timeout,
            )
        kwargs: dict[str, Any] = {"timeout": timeout, "set_as_default": False}
        if security is not None and not owns_cluster:
            kwargs["security"] = security
        client = state["client"] = distributed.Client(target, **kwargs)  # type: ignore[no-untyped-call]
        # SIGINT is ignored on the workers we start; on others we only run
        # the user's init, if any (their owner chose their signal handling).
        if owns_cluster or init is not None:
            client.register_plugin(_WorkerSetup(init), name=plugin_name)
            state["plugin"] = True
        return client

    def close() -> None:
        client = state.get("client")
        closers: list[Callable[[], object]] = []
        if client is not None and state.get("plugin") and not owns_cluster:
            closers.append(lambda: client.unregister_worker_plugin(plugin_name))
        if client is not None:
            closers.append(lambda: client.close(timeout=timeout))
        if "cluster" in state:
            closers.append(lambda: state["cluster"].close(timeout=timeout))
        _close_quietly(*closers)
        if "cluster" in state:
            # The nannies' process objects hold pipes to their (dead) worker
            # processes until they are collected, which cycles can delay.
            gc.collect()

    context: DaskContext | None = None
    try:
        try:
            client = await trio.to_thread.run_sync(connect)
        except Exception as exc:
            if "client" in state and "plugin" not in state and init is not None:
                msg = f"init {describe_callable(init)} failed on a dask worker"
                raise BrokenWorkerError(msg) from exc
            raise
        context = DaskContext(client, trio.lowlevel.current_trio_token(), timeout)
        yield context
    finally:
        if context is not None:
            context._close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(close)
