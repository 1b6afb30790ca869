"""Reaching a Dask cluster: which ones are safe, a private one, the client.

`checked_security` refuses plain TCP to a scheduler off loopback;
`check_reachable` fails fast, saying what to check, when no scheduler answers; a
`Connection` starts the private ``LocalCluster`` when there is no address or
cluster object, connects the client (`send_promptly`), registers the worker
setup plugin, and closes what it opened.  Its methods block: `open_dask_context`
runs them in a thread.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import dask
import distributed
import distributed.deploy.cluster
from distributed.batched import BatchedSend
from distributed.comm.addressing import parse_address, parse_host_port
from distributed.comm.core import connect as dask_connect

from _trio_wf_worker._protocol import describe_callable

from .._errors import BrokenWorkerError
from ._worker_side import WorkerSetup


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


def check_secure(address: str, security: Any, insecure: bool) -> None:
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


def checked_security(
    address: str | None, cluster: Any, security: Any, insecure: bool
) -> Any:
    """The ``security`` to connect with, once `check_secure` accepts it."""
    if security is None and (address is not None or cluster is not None):
        # TLS may be configured in Dask's config (distributed.comm.tls.*, or
        # DASK_DISTRIBUTED__COMM__TLS__* variables): the Client would use it.
        security = getattr(cluster, "security", None) or distributed.Security()  # type: ignore[no-untyped-call]
    if address is not None:
        check_secure(address, security, insecure)
    elif cluster is not None:
        check_secure(cluster.scheduler_address, security, insecure)
    return security


def check_reachable(address: str, security: Any, timeout: float) -> None:
    """Fail within ``timeout`` unless a Dask scheduler answers at ``address``.

    Dask retries a refused connection until its timeout (right for a scheduler
    that is starting, slow to say that there is none), and its client waits
    forever on a listener that never answers: both are checked here first.
    """
    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        return  # not host:port; the client will say what is wrong
    if scheme not in ("tcp", "tls"):
        return
    try:
        socket.create_connection((host.strip("[]"), port), timeout=timeout).close()
    except OSError as exc:
        raise unreachable(address, exc) from exc
    arguments = {} if security is None else security.get_connection_args("client")

    async def identity() -> None:
        comm = await dask_connect(address, timeout=timeout, **arguments)  # type: ignore[no-untyped-call]
        try:
            await comm.write({"op": "identity", "reply": True})
            await comm.read()
        finally:
            await comm.close()

    try:
        asyncio.run(asyncio.wait_for(identity(), timeout))
    except asyncio.TimeoutError as exc:
        raise unreachable(address, f"no answer within {timeout:g} s") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise unreachable(address, exc) from exc


def unreachable(address: str, cause: BaseException | str) -> OSError:
    """The error for a scheduler that cannot be reached: what to check."""
    reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    tls = (
        ", and that your TLS settings (security=, or distributed.comm.tls.* in "
        "Dask's config) trust its certificate and it yours"
        if address.startswith("tls://")
        else ""
    )
    msg = (
        f"cannot reach the dask scheduler at {address} ({reason}): check that "
        "a scheduler runs there (dask scheduler), that the host and port are "
        f"right and open to this machine{tls}"
    )
    return OSError(msg)


#: Seconds the client may hold a message to the scheduler, to batch it with
#: others (`send_promptly`); the scheduler answers clients at this interval.
SEND_INTERVAL = 0.002


def send_promptly(client: Any) -> None:
    """Let ``client`` hold its messages to the scheduler for 2 ms, not 10.

    Dask's client sends what it queues for the scheduler (submissions, releases,
    closing) in batches, at most once per 10 ms, a figure written in its code:
    a message queued within 10 ms of the last batch waits for the next one.  A
    run that connects, submits and closes pays it up to three times, more than
    its round trips to the scheduler (measured by ``benchmarks/dask_connect.py``:
    the first call takes 18 ms instead of 8).  `._gather.Batches` already sends
    many calls as one message, so a short interval costs no extra messages.
    On Dask versions without these attributes, the client keeps its interval.
    """
    comm = getattr(client, "scheduler_comm", None)
    if not (
        isinstance(comm, BatchedSend)
        and all(hasattr(comm, name) for name in ("interval", "next_deadline", "waker"))
    ):
        return  # pragma: no cover, another Dask: a slower first call, no harm

    def on_loop() -> None:
        comm.interval = SEND_INTERVAL
        # The batch due at the old deadline goes out now (the connection's own
        # messages have just started its 10 ms).
        comm.next_deadline = None
        comm.waker.set()

    # Its sends run on the client's loop, in order: this comes before them.
    client.loop.add_callback(on_loop)


class _PrivateCluster(distributed.LocalCluster):
    """A ``LocalCluster`` that never gives up on a worker its nanny replaces.

    ``SpecCluster`` closes a worker's nanny for good when no worker of that
    name is registered ``distributed.deploy.lost-worker-timeout`` after the
    worker left.  The timer of one departure can fire while the nanny restarts
    the worker after a later kill-on-cancel, which shrinks the cluster for
    good (seen with a few kills in 15 s).  Every worker here has a nanny that
    replaces it: the bookkeeping of the base `Cluster` is all it needs.
    """

    def _update_worker_status(self, op: str, msg: Any) -> None:
        distributed.deploy.cluster.Cluster._update_worker_status(self, op, msg)  # type: ignore[no-untyped-call]


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
        return _PrivateCluster(**kwargs)  # type: ignore[no-untyped-call]


def _close_quietly(*closers: Callable[[], object]) -> None:
    for close in closers:
        try:
            close()
        except Exception:  # pragma: no cover, best effort on the way out
            pass


def _close_client(client: Any, timeout: float) -> None:
    """``client.close``, which leaves no event loop thread behind if it fails.

    Once its scheduler is lost, a Dask client tries to reconnect, and an error
    of that attempt (seen over TLS: "IOStream is not idle") can end its close,
    before the close stops the client's loop and its thread.
    """
    try:
        client.close(timeout=timeout)
    except Exception:
        runner = getattr(client, "_loop_runner", None)
        if runner is not None:
            runner.stop()
        client.status = "closed"  # its __del__ must not close it again
        raise


class Connection:
    """A client of a cluster, and the private cluster it may have started.

    With neither ``address`` nor ``cluster``, `connect` starts a private
    ``LocalCluster`` (``n_workers`` and ``cluster_options`` apply to it only),
    and `close` closes it too.  Both methods block.
    """

    def __init__(
        self,
        *,
        address: str | None,
        cluster: Any,
        n_workers: int | None,
        cluster_options: Mapping[str, Any] | None,
        security: Any,
        init: Callable[[], object] | None,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self._target: Any = address if address is not None else cluster
        self._owns_cluster = address is None and cluster is None
        self._n_workers = n_workers
        self._cluster_options = cluster_options
        self._security = security
        self._init = init
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._plugin_name = f"trio-wf-setup-{uuid.uuid4().hex}"
        self._private_cluster: Any = None
        self._client: Any = None
        self._plugin_registered = False

    def connect(self) -> Any:
        """Return a new ``distributed.Client``, starting the cluster if private.

        Raises:
            BrokenWorkerError: if ``init`` raised on a worker (as ``__cause__``).
        """
        target = self._target
        if self._owns_cluster:
            target = self._private_cluster = _start_local_cluster(
                self._n_workers or os.cpu_count() or 1,
                self._security,
                self._cluster_options or {},
                self._timeout,
            )
        timeout = self._timeout if self._owns_cluster else self._connect_timeout
        kwargs: dict[str, Any] = {"timeout": timeout, "set_as_default": False}
        if self._security is not None and not self._owns_cluster:
            kwargs["security"] = self._security
        address = target if isinstance(target, str) else target.scheduler_address
        if not self._owns_cluster:
            check_reachable(address, self._security, timeout)
        try:
            client = distributed.Client(target, **kwargs)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise unreachable(address, exc) from exc
        self._client = client
        send_promptly(client)
        # SIGINT is ignored on the workers we start; on others we only run
        # the user's init, if any (their owner chose their signal handling).
        if self._owns_cluster or self._init is not None:
            try:
                client.register_plugin(WorkerSetup(self._init), name=self._plugin_name)
            except Exception as exc:
                if self._init is None:
                    raise
                msg = f"init {describe_callable(self._init)} failed on a dask worker"
                raise BrokenWorkerError(msg) from exc
            self._plugin_registered = True
        return client

    def close(self) -> None:
        """Close what `connect` opened, as far as it got; errors are dropped."""
        client = self._client
        cluster = self._private_cluster
        closers: list[Callable[[], object]] = []
        if client is not None and self._plugin_registered and not self._owns_cluster:
            closers.append(lambda: client.unregister_worker_plugin(self._plugin_name))
        if client is not None:
            closers.append(lambda: _close_client(client, self._timeout))
        if cluster is not None:
            closers.append(lambda: cluster.close(timeout=self._timeout))
        _close_quietly(*closers)
        if cluster is not None:
            # The nannies' process objects hold pipes to their (dead) worker
            # processes until they are collected, which cycles can delay.
            gc.collect()
