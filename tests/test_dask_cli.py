"""Contract tests of `trio_wf.open_dask_context` against a real multi-process cluster.

A ``dask scheduler`` and a ``dask worker`` (two worker processes of one thread,
each under a nanny) run as separate processes, started with Dask's own
command-line tools on loopback, over TLS with mutual authentication from
certificates made here; the tests connect by address.  They run the kill,
death, timeout, Ctrl+C and lost-scheduler scenarios of tests/test_dask.py
(tests/dask_scenarios.py), with the same assertions.

The cluster is shared by the module: the leak check ignores its processes and
their replacements (`tests.helpers.SHARED_PROCESS_ROOTS`), and the fixture
checks that they are all gone at its end.  The lost-scheduler test starts a
cluster of its own.
"""

from __future__ import annotations

import functools
import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest
import trio

import trio_wf
from tests import dask_scenarios, workers
from tests.dask_preload import AUTHKEY_VARIABLE
from tests.helpers import SHARED_PROCESS_ROOTS

distributed = pytest.importorskip("distributed")
trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Seconds the processes of a cluster may take to start, or to stop.
STARTUP = 60.0
#: Dask's config for every process of the cluster: no retry of a task whose
#: worker died (as the private cluster), quiet logs, no /proc polling.
CLUSTER_CONFIG = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "1h",
    "DASK_LOGGING__DISTRIBUTED": "warning",
}


@attrs.frozen
class Certificates:
    """A throwaway CA, and a certificate for each role, as PEM files."""

    ca: str
    scheduler: str
    worker: str
    client: str

    def security(self, role: str = "client") -> Any:
        """A ``distributed.Security`` with TLS and mutual authentication."""
        cert = getattr(self, role)
        return distributed.Security(
            tls_ca_file=self.ca,
            tls_client_cert=cert,
            tls_client_key=cert,
            require_encryption=True,
        )

    def options(self, role: str) -> list[str]:
        """The command-line options of ``dask scheduler`` and ``dask worker``."""
        cert = getattr(self, role)
        return ["--tls-ca-file", self.ca, "--tls-cert", cert, "--tls-key", cert]

    def config(self) -> dict[str, str]:
        """Dask's config, as environment variables, for ``trio-wf run``."""
        prefix = "DASK_DISTRIBUTED__COMM__"
        return {
            f"{prefix}REQUIRE_ENCRYPTION": "True",
            f"{prefix}TLS__CA_FILE": self.ca,
            f"{prefix}TLS__CLIENT__CERT": self.client,
            f"{prefix}TLS__CLIENT__KEY": self.client,
        }


def make_certificates(directory: Path) -> Certificates:
    ca = trustme.CA()
    paths = {"ca": directory / "ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    for role in ("scheduler", "worker", "client"):
        paths[role] = directory / f"{role}.pem"
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_and_cert_chain_pem.write_to_path(str(paths[role]))
    return Certificates(**{name: str(path) for name, path in paths.items()})


@attrs.frozen
class CliCluster:
    """A scheduler and workers started with ``dask scheduler``/``dask worker``."""

    address: str
    certificates: Certificates
    client: Any
    processes: list[subprocess.Popen[bytes]]


def start_cluster(directory: Path, n_workers: int, *, nanny: bool = True) -> CliCluster:
    """Start a TLS cluster of ``n_workers`` one-thread workers; wait until up."""
    directory.mkdir(parents=True, exist_ok=True)
    certificates = make_certificates(directory)
    # Workers import the tests' task modules by name: a directory holding only
    # the tests package, so that trio_wf still comes from the installed wheel.
    path = directory / "path"
    path.mkdir(exist_ok=True)
    (path / "tests").symlink_to(ROOT / "tests")
    env = {
        **os.environ,
        **CLUSTER_CONFIG,
        "PYTHONPATH": str(path),
        AUTHKEY_VARIABLE: multiprocessing.current_process().authkey.hex(),
    }
    scheduler_file = directory / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    processes = [
        _start(
            [
                *(dask, "scheduler", "--protocol", "tls", "--port", "0"),
                *("--scheduler-file", str(scheduler_file)),
                *common,
                *certificates.options("scheduler"),
            ],
            env,
            directory / "scheduler.log",
        )
    ]
    try:
        processes.append(
            _start(
                [dask, "worker", "--scheduler-file", str(scheduler_file)]
                + ["--nworkers", str(n_workers), "--nthreads", "1"]
                + ["--memory-limit", "512MiB", "--protocol", "tls"]
                + ["--local-directory", str(directory / "workers")]
                + ["--preload", "tests.dask_preload"]
                + ([] if nanny else ["--no-nanny"])
                + common
                + certificates.options("worker"),
                env,
                directory / "worker.log",
            )
        )
        address = _read_address(scheduler_file, processes)
        client = distributed.Client(
            address,
            security=certificates.security(),
            timeout=STARTUP,
            set_as_default=False,
        )
        client.wait_for_workers(n_workers, timeout=STARTUP)
    except BaseException:
        stop_cluster(processes)
        raise
    return CliCluster(address, certificates, client, processes)


def _start(
    command: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    SHARED_PROCESS_ROOTS.add(process.pid)
    return process


def _read_address(scheduler_file: Path, processes: list[Any]) -> str:
    # The scheduler writes the file once it listens: its port is chosen then.
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            msg = "a process of the cluster exited while starting (see its log)"
            raise RuntimeError(msg)
        try:
            return json.loads(scheduler_file.read_text())["address"]  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.05)
    msg = f"no scheduler address in {scheduler_file} after {STARTUP} s"
    raise TimeoutError(msg)


def stop_cluster(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop the workers, then the scheduler; every process of theirs is gone."""
    tree = []
    for process in processes:
        try:
            tree += [psutil.Process(process.pid)]
            tree += tree[-1].children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    for process in reversed(processes):  # workers first: they leave cleanly
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STARTUP / 2)
        except subprocess.TimeoutExpired:  # pragma: no cover, only on failure
            process.kill()
            process.wait()
    _, alive = psutil.wait_procs(tree, timeout=10)
    for leftover in alive:  # pragma: no cover, only on failure
        leftover.kill()
    for process in processes:
        SHARED_PROCESS_ROOTS.discard(process.pid)
    assert not alive, f"cluster processes left behind: {alive}"


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    """The module's cluster: a scheduler and two workers under nannies."""
    cluster = start_cluster(tmp_path_factory.mktemp("cli-cluster"), 2)
    try:
        yield cluster
    finally:
        cluster.client.close()
        stop_cluster(cluster.processes)


@pytest.fixture
def cluster(cli_cluster: CliCluster) -> CliCluster:
    """The module's cluster, with a worker up (a test may have killed one,
    whose replacement may still be starting)."""
    cli_cluster.client.wait_for_workers(1, timeout=dask_scenarios.REPLACEMENT)
    return cli_cluster


def connect(cluster: CliCluster, **options: Any) -> Any:
    return trio_wf.open_dask_context(
        cluster.address, security=cluster.certificates.security(), **options
    )


async def test_round_trip_over_tls(cluster: CliCluster) -> None:
    """Calls run in the workers' processes, over TLS with mutual auth."""
    async with connect(cluster) as ctx:
        assert ctx.scheduler_address.startswith("tls://127.0.0.1:")
        assert await ctx.run_sync(workers.add, 20, 22) == 42
        assert await ctx.run_sync(os.getpid) != os.getpid()


async def test_kill_on_cancel(cluster: CliCluster, manager: SyncManager) -> None:
    """The same as on a LocalCluster: the caller returns at once, the worker
    dies, its nanny replaces it; a call made meanwhile runs on the other."""
    await trio.to_thread.run_sync(
        functools.partial(
            cluster.client.wait_for_workers, 2, timeout=dask_scenarios.REPLACEMENT
        )
    )
    async with connect(cluster) as ctx:
        await dask_scenarios.kill_on_cancel_returns_at_once(ctx, manager)


async def test_dead_worker(cluster: CliCluster) -> None:
    """The same as on a LocalCluster: BrokenWorkerError naming the worker."""
    async with connect(cluster) as ctx:
        await dask_scenarios.dead_worker_fails_its_call(ctx)


async def test_cli_timeout_and_ctrl_c(cluster: CliCluster, tmp_path: Path) -> None:
    """The same as on a LocalCluster: trio-wf run exits at once, and nothing
    runs on the cluster for that run; TLS comes from Dask's config."""
    for timeout in (2.0, None):
        pid = await trio.to_thread.run_sync(
            functools.partial(
                dask_scenarios.run_cli_and_stop,
                tmp_path,
                cluster.address,
                cluster.certificates.config(),
                timeout=timeout,
            )
        )
        await dask_scenarios.nothing_runs_for(cluster.client, pid)


async def test_wrong_certificate_fails_fast_naming_tls(
    cli_cluster: CliCluster, tmp_path: Path
) -> None:
    """Certificates from another CA: an error within connect_timeout that
    names the scheduler and the TLS settings."""
    strangers = make_certificates(tmp_path)
    with trio.fail_after(10), pytest.raises(OSError, match="TLS") as info:
        async with trio_wf.open_dask_context(
            cli_cluster.address, security=strangers.security()
        ):
            pass  # pragma: no cover
    assert cli_cluster.address in str(info.value)


# When the scheduler dies under it, distributed's client may drop a TLS socket
# without closing it (about one run in eight); its ResourceWarning surfaces as
# an unraisable exception when the socket is collected.  It is Dask's, not
# ours: the test collects it before it ends, under this filter, instead of
# letting a later test's collection fail.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket"
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_lost_scheduler(tmp_path: Path, manager: SyncManager) -> None:
    """The same as on a LocalCluster: the running call fails, naming the
    scheduler.  On a cluster of its own, whose scheduler this test kills."""
    own = await trio.to_thread.run_sync(lambda: start_cluster(tmp_path, 1, nanny=False))
    try:
        async with connect(own) as ctx:
            await dask_scenarios.lost_scheduler_fails_the_call(
                ctx, manager, own.processes[0].kill
            )
    finally:
        own.client.close()
        await trio.to_thread.run_sync(stop_cluster, own.processes)
        gc.collect()
