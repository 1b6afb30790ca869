"""Contract tests of `trio_wf.open_dask_context`, against real LocalClusters.

A module-scoped cluster (2 process workers of 1 thread, on loopback) serves the
tests that leave its workers alone; tests that kill, crash or interrupt workers
open private clusters of one worker, which the context closes.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import dask
import pytest
import trio

import trio_wf
from tests import dask_scenarios, dask_workers, workers
from tests.dask_scenarios import SMALL
from tests.helpers import wait_event
from trio_wf.workflow import WorkflowExecutionError, aexecute_graph, execute_graph

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("quiet_dask")

from trio_wf._dask._cluster import (  # noqa: E402, needs distributed
    SEND_INTERVAL,
    _close_client,
    check_secure,
)

GRAPHS = Path(__file__).parents[1] / "examples" / "graphs"


async def test_round_trip_on_a_shared_cluster(cluster: Any) -> None:
    """Results and exceptions come back; identical calls are separate tasks."""
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        assert isinstance(ctx, trio_wf.SupportsRunSync)
        assert await ctx.run_sync(workers.add, 1, 2) == 3
        # pure=False: the same call twice runs twice.
        first, second = [await ctx.run_sync(time.perf_counter_ns) for _ in "ab"]
        assert first != second
        with pytest.raises(ValueError, match="outer") as info:
            await ctx.run_sync(workers.raise_chain)
        assert isinstance(info.value.__cause__, KeyError)
        limiter = trio.CapacityLimiter(1)
        pids = set()
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(_collect, ctx, pids, limiter)
        assert pids
        assert os.getpid() not in pids
        stats = ctx.statistics()
        assert stats.running_calls == 0
        assert stats.scheduler_address == cluster.scheduler_address
    with pytest.raises(trio.ClosedResourceError):
        await ctx.run_sync(int)


async def _collect(ctx: Any, pids: set[int], limiter: trio.CapacityLimiter) -> None:
    pids.add(await ctx.run_sync(os.getpid, limiter=limiter))


async def test_the_client_sends_to_the_scheduler_within_2_ms(cluster: Any) -> None:
    """Dask's client batches messages for 10 ms; the context's client for 2.

    This checks that the setting reached the client, so that a Dask release
    which changes its ``BatchedSend`` shows here (its calls would still work).
    """
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        assert await ctx.run_sync(workers.add, 1, 2) == 3  # after the change
        assert ctx.client.scheduler_comm.interval == SEND_INTERVAL


def test_a_client_whose_close_fails_leaves_no_loop_behind(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dask's close can fail after a lost scheduler (a race of its reconnection,
    seen in test_dask_cli's lost-scheduler test); the error is raised, and the
    client's loop and its thread are stopped all the same (the leak check sees
    its epoll descriptor otherwise)."""
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)

    async def failing_close(fast: bool = False) -> None:
        raise ValueError("IOStream is not idle; cannot convert to SSL")

    monkeypatch.setattr(client, "_close", failing_close)
    with pytest.raises(ValueError, match="not idle"):
        _close_client(client, 5.0)
    assert client.status == "closed"
    assert client.loop.asyncio_loop.is_closed()


async def test_async_function_refused(cluster: Any) -> None:
    """An async function is refused before anything is submitted."""
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        with pytest.raises(TypeError, match="is async"):
            await ctx.run_sync(trio.sleep, 0)  # type: ignore[arg-type]


async def test_unimportable_function_fails_fast(cluster: Any) -> None:
    """A function the workers cannot import fails with its ImportError."""
    ghost = types.ModuleType("trio_wf_ghost_module")
    exec("def answer():\n    return 42\n", ghost.__dict__)
    sys.modules[ghost.__name__] = ghost
    try:
        async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
            assert ghost.answer() == 42  # pickled by reference, like an import
            with trio.fail_after(10), pytest.raises(ModuleNotFoundError, match="ghost"):
                await ctx.run_sync(ghost.answer)
            assert await ctx.run_sync(workers.add, 2, 2) == 4
    finally:
        del sys.modules[ghost.__name__]


async def test_no_kill_waits_for_the_result(cluster: Any, manager: SyncManager) -> None:
    """kill_on_cancel=False: the call finishes and returns, then cancels."""
    started, release = manager.Event(), manager.Event()
    got: list[int] = []
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    got.append(await ctx.run_sync(workers.block, started, release))

                nursery.start_soon(call)
                with trio.fail_after(20):
                    await trio.to_thread.run_sync(started.wait)
                scope.cancel()
                release.set()
        assert got
        assert got[0] != os.getpid()


@pytest.mark.slow
async def test_kill_on_cancel_returns_at_once_and_the_worker_is_replaced(
    manager: SyncManager,
) -> None:
    """kill_on_cancel=True: the worker is killed, the caller does not wait for
    its replacement, and a call made meanwhile waits for the replacement.

    A LocalCluster would close the nanny of a worker still away when the
    lost-worker timeout expires (here far shorter than a restart): the
    private cluster keeps it, and the replacement comes.
    """
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "50ms"}):
        async with trio_wf.open_dask_context(n_workers=1, cluster_options=SMALL) as ctx:
            await dask_scenarios.kill_on_cancel_returns_at_once(ctx, manager)
            nannies = ctx.client.cluster.workers
            assert [n.status.name for n in nannies.values()] == ["running"]


@pytest.mark.slow
async def test_cancelling_a_queued_call_kills_nothing(manager: SyncManager) -> None:
    """A kill_on_cancel call waiting behind another is released, not killed:
    the running call's worker lives on, and the cancelled one never starts."""
    started, release = manager.Event(), manager.Event()
    queued_started = manager.Event()
    async with trio_wf.open_dask_context(n_workers=1, cluster_options=SMALL) as ctx:
        async with trio.open_nursery() as nursery:
            running: list[int] = []

            async def first() -> None:
                running.append(await ctx.run_sync(workers.block, started, release))

            nursery.start_soon(first)
            await wait_event(started)
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as inner:
                    inner.start_soon(
                        _call_and_kill, ctx, workers.block, queued_started, release
                    )
                    # Dask hands it to the busy worker, where it waits for
                    # the thread: the case where killing would be wrong.
                    with trio.fail_after(10):
                        while await _handed_out(ctx) < 2:  # noqa: ASYNC110, remote
                            await trio.sleep(0.01)
                    scope.cancel()
            assert ctx.statistics().running_calls == 1
            release.set()
        # One worker thread, calls in order: had the cancelled call stayed on
        # the worker, it would have run before this one.
        with trio.fail_after(10):
            assert await ctx.run_sync(os.getpid) == running[0]
        assert not queued_started.is_set()


async def _handed_out(ctx: Any) -> int:
    processing = await trio.to_thread.run_sync(ctx.client.processing)
    return sum(map(len, processing.values()))


async def _call_and_kill(ctx: Any, fn: Any, *args: Any) -> None:
    await ctx.run_sync(fn, *args, kill_on_cancel=True)


@pytest.mark.slow
async def test_dead_worker_and_init_on_replacements() -> None:
    """A crash raises BrokenWorkerError naming the worker; init runs again."""
    async with trio_wf.open_dask_context(
        n_workers=1, init=dask_workers.mark_init, cluster_options=SMALL
    ) as ctx:
        pid = await ctx.run_sync(os.getpid)
        assert await ctx.run_sync(dask_workers.init_mark) == str(pid)
        # Workers ignore SIGINT: raising it in a task returns normally.
        assert await ctx.run_sync(signal.raise_signal, signal.SIGINT) is None
        with trio.fail_after(10), pytest.raises(trio_wf.BrokenWorkerError) as info:
            await ctx.run_sync(os._exit, 42)
        address = info.value.address
        assert address is not None
        assert address.startswith("tcp://127.0.0.1:")
        assert address in str(info.value)
        with trio.fail_after(20):
            new_pid = await ctx.run_sync(os.getpid)
        assert new_pid != pid
        marked = await ctx.run_sync(dask_workers.init_mark)
        assert marked == str(new_pid)


@pytest.mark.slow
async def test_failing_init_raises() -> None:
    """An init that raises fails the opening, with the cause attached."""
    with pytest.raises(trio_wf.BrokenWorkerError, match="init") as info:
        async with trio_wf.open_dask_context(
            n_workers=1, init=dask_workers.fail_init, cluster_options=SMALL
        ):
            pass  # pragma: no cover
    assert "no GPU here" in repr(info.value.__cause__)


@pytest.mark.slow
async def test_lost_scheduler_raises(manager: SyncManager) -> None:
    """Losing the scheduler fails the running call, naming the scheduler.

    Slow: the call fails within a second, but Dask's LocalCluster then takes
    about 30 s to close once its scheduler is gone.
    """
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        **SMALL,
    ) as local:
        async with trio_wf.open_dask_context(local.scheduler_address) as ctx:
            await dask_scenarios.lost_scheduler_fails_the_call(
                ctx, manager, lambda: local.sync(local.scheduler.close)
            )


@pytest.mark.slow
async def test_unreachable_scheduler_fails_fast_naming_it() -> None:
    """Nothing listening fails at once; a listener that never answers fails
    after connect_timeout; both messages name the address and what to check."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    with trio.fail_after(5), pytest.raises(OSError, match="dask scheduler") as info:
        async with trio_wf.open_dask_context(address):
            pass  # pragma: no cover
    assert address in str(info.value)
    assert "Connection refused" in str(info.value)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with trio.fail_after(5), pytest.raises(OSError, match="dask scheduler") as info:
            async with trio_wf.open_dask_context(address, connect_timeout=1):
                pass  # pragma: no cover
    assert address in str(info.value)


@pytest.mark.slow
async def test_cli_timeout_and_ctrl_c_stop_the_run_on_the_cluster(
    tmp_path: Path,
) -> None:
    """trio-wf run --scheduler: --timeout and Ctrl+C exit at once, and leave
    nothing running on the cluster (the node's worker was killed)."""
    async with trio_wf.open_dask_context(n_workers=1, cluster_options=SMALL) as ctx:
        address = ctx.scheduler_address
        for timeout in (2.0, None):
            pid = await trio.to_thread.run_sync(
                functools.partial(
                    dask_scenarios.run_cli_and_stop, tmp_path, address, timeout=timeout
                )
            )
            await dask_scenarios.nothing_runs_for(ctx.client, pid)


@pytest.mark.slow
def test_ctrl_c_leaves_no_processes(manager: SyncManager) -> None:
    """Ctrl+C while a call runs closes the private cluster (no_leaks checks)."""
    started, release = manager.Event(), manager.Event()

    async def main() -> None:
        async with (
            trio_wf.open_dask_context(n_workers=1, cluster_options=SMALL) as ctx,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_call_and_kill, ctx, workers.block, started, release)
            await trio.to_thread.run_sync(started.wait)
            signal.raise_signal(signal.SIGINT)
            await trio.sleep_forever()

    # Raised as is, or in an exception group when a nursery was open.
    with pytest.raises(BaseException) as info:
        trio.run(main)
    assert _only_interrupts(info.value), info.value


def _only_interrupts(exc: BaseException) -> bool:
    nested = getattr(exc, "exceptions", None)
    if nested is None:
        return isinstance(exc, KeyboardInterrupt)
    return all(_only_interrupts(inner) for inner in nested)


def test_security_rules() -> None:
    """Only loopback goes without TLS and mutual auth, unless insecure=True."""
    with pytest.raises(ValueError, match="without TLS"):
        check_secure("tcp://10.1.2.3:8786", None, insecure=False)
    with pytest.raises(ValueError, match="without TLS"):
        check_secure("tls://head:8786", distributed.Security(), insecure=False)
    half = distributed.Security(require_encryption=True)
    with pytest.raises(ValueError, match="tls_ca_file, tls_client_cert"):
        check_secure("tls://head:8786", half, insecure=False)
    check_secure("tcp://10.1.2.3:8786", None, insecure=True)
    for local in ("tcp://127.0.0.1:1", "localhost:1", "tcp://[::1]:1"):
        check_secure(local, None, insecure=False)


async def test_arguments_are_validated() -> None:
    """Bad combinations fail before anything starts or connects."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"retire": bool}, "distributed.worker.lifetime"),
        ({"address": "tcp://127.0.0.1:1", "cluster": object()}, "not both"),
        ({"address": "tcp://127.0.0.1:1", "n_workers": 2}, "n_workers"),
        ({"n_workers": 0}, "n_workers must be a positive int"),
        ({"timeout": -1}, "timeout"),
        ({"address": "tcp://10.1.2.3:8786"}, "without TLS"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            async with trio_wf.open_dask_context(**kwargs):
                pass  # pragma: no cover


@pytest.mark.slow
async def test_tls_round_trip(tmp_path: Path) -> None:
    """A private cluster with TLS and mutual auth, from throwaway certificates."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    files = {}
    for role in ("scheduler", "worker", "client"):
        cert = ca.issue_cert("127.0.0.1", "localhost")
        path = tmp_path / f"{role}.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
        files[f"tls_{role}_cert"] = str(path)
        files[f"tls_{role}_key"] = str(path)
    security = distributed.Security(
        tls_ca_file=str(ca_file), require_encryption=True, **files
    )
    async with trio_wf.open_dask_context(
        n_workers=1, security=security, cluster_options=SMALL
    ) as ctx:
        assert ctx.scheduler_address.startswith("tls://127.0.0.1:")
        assert await ctx.run_sync(workers.add, 20, 22) == 42


async def test_workflow_graphs_match_local_results(cluster: Any) -> None:
    """Example graphs give the same results on the cluster as locally."""
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        for name in ("diamond.json", "subgraph.json"):
            local = await aexecute_graph(GRAPHS / name, worker_type="thread")
            assert await aexecute_graph(GRAPHS / name, context=ctx) == local


async def test_ewoksdask_schedulers_run_graphs_on_dask(cluster: Any) -> None:
    """execute_graph's scheduler=ADDRESS and scheduler="cluster" (ewoksdask's
    spellings) run the graph on Dask, with the same results as locally."""
    graph = GRAPHS / "diamond.json"
    local = await aexecute_graph(graph, worker_type="thread")
    assert await aexecute_graph(graph, scheduler=cluster.scheduler_address) == local
    options = {"n_workers": 1, **SMALL}
    assert (
        await aexecute_graph(graph, scheduler="cluster", scheduler_options=options)
        == local
    )
    with pytest.raises(ValueError, match="either max_workers or scheduler_options"):
        await aexecute_graph(graph, max_workers=2, scheduler_options={"num_workers": 2})


def test_ewoks_engine_takes_ewoksdask_scheduler_options() -> None:
    """``ewoks execute --engine trio -o scheduler=cluster -o scheduler_options=..``:
    ewoksdask's options reach a private cluster through ewoks' entry point."""
    import ewoks
    from ewokscore.tests.examples.graphs import get_graph

    document, expected = get_graph("acyclic1")
    result = ewoks.execute_graph(
        document,
        engine="trio",
        scheduler="cluster",
        scheduler_options={"n_workers": 1, **SMALL},
        outputs=[{"all": True}],
        merge_outputs=False,
    )
    assert result == expected


def _adders(n: int) -> dict[str, Any]:
    task = "tests.workflow.tasks.add"
    nodes = [{"id": 0, "task_type": "method", "task_identifier": task}]
    nodes[0]["default_inputs"] = [{"name": "a", "value": 1}, {"name": "b", "value": 1}]
    for i in range(1, n):
        inputs = [{"name": "b", "value": 1}]
        nodes.append(
            {
                "id": i,
                "task_type": "method",
                "task_identifier": task,
                "default_inputs": inputs,
            }
        )
    mapping = [{"source_output": "return_value", "target_input": "a"}]
    links = [
        {"source": i, "target": i + 1, "data_mapping": mapping} for i in range(n - 1)
    ]
    return {"graph": {"id": "adders"}, "nodes": nodes, "links": links}


async def test_a_chain_of_nodes_on_dask_keeps_per_node_events_and_errors(
    cluster: Any,
) -> None:
    """A chain, submitted at once: the results, each node's events in order
    with its worker's pid, and a failing node reported as itself."""
    events: list[Any] = []
    document = _adders(6)
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        results = await aexecute_graph(document, context=ctx, on_event=events.append)
        assert results == {"return_value": 7}
        assert [(e.kind, e.node_id) for e in events] == [
            (kind, i) for i in range(6) for kind in ("queued", "start", "end")
        ]
        ends = [e for e in events if e.kind == "end"]
        assert all(e.worker_pid not in (None, os.getpid()) for e in ends)
        document["nodes"][3]["task_identifier"] = "tests.workflow.tasks.fail"
        document["nodes"][3]["default_inputs"] = [{"name": "message", "value": "no"}]
        events.clear()
        with pytest.raises(WorkflowExecutionError, match="no") as info:
            await aexecute_graph(document, context=ctx, on_event=events.append)
        assert info.value.node_id == 3
        assert [(e.kind, e.node_id) for e in events][-2:] == [
            ("start", 3),
            ("error", 3),
        ]
        assert ctx.statistics().running_calls == 0


@pytest.mark.slow
async def test_cancelling_a_chain_kills_its_running_node_and_releases_the_rest(
    tmp_path: Path,
) -> None:
    """The nodes after the running one are already on the cluster; a
    cancellation kills the running one and releases them."""
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    document = _adders(3)
    document["nodes"][0]["task_identifier"] = "tests.workflow.tasks.announce_and_sleep"
    document["nodes"][0]["default_inputs"] = [{"name": "fifo", "value": str(fifo)}]
    document["links"][0]["data_mapping"][0]["target_input"] = "b"
    async with trio_wf.open_dask_context(n_workers=1, cluster_options=SMALL) as ctx:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    functools.partial(aexecute_graph, document, context=ctx)
                )
                with trio.fail_after(30):
                    text = await trio.to_thread.run_sync(
                        fifo.read_text, abandon_on_cancel=True
                    )
                pid = int(text)
                # All three: the chain went out at once.
                assert ctx.statistics().running_calls == 3
                scope.cancel()
        assert ctx.statistics().running_calls == 0
        await dask_scenarios.nothing_runs_for(ctx.client, pid)


def test_cli_scheduler_option(cluster: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """trio-wf run --scheduler ADDRESS runs the graph on that cluster."""
    from trio_wf.workflow._cli import main

    graph = str(GRAPHS / "diamond.json")
    assert main(["run", graph, "--json", "--scheduler", cluster.scheduler_address]) == 0
    assert json.loads(capsys.readouterr().out) == execute_graph(graph)
    arguments = ["run", graph, "--scheduler", "x", "--worker-type", "thread"]
    assert main(arguments) == 2


def test_first_use_of_open_dask_context_imports_distributed(tmp_path: Path) -> None:
    """trio_wf.open_dask_context imports Dask (test_public_api: not before)."""
    code = (
        "import sys, trio_wf; "
        "assert trio_wf.open_dask_context.__doc__; "
        "assert 'distributed' in sys.modules"
    )
    # Not from the checkout: the installed trio_wf is the one under test.
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
    with pytest.raises(AttributeError, match="no_such_name"):
        trio_wf.no_such_name  # type: ignore[attr-defined]
