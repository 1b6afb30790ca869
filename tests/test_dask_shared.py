"""Contract tests of calls that share Dask tasks (`trio_wf._dask._fuse`), on real
LocalClusters: many calls at once, fans and chains of workflow nodes.

Contexts share tasks only when opened with ``share_tasks=True`` (as the
workflow engine's are).  Each call keeps its own result, error and events; calls
a task's time slice did not reach go out again; a cancellation of all of a
task's calls kills what runs.
"""

from __future__ import annotations

import itertools
import json
import os
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_wf
from tests import dask_scenarios, dask_workers
from tests.dask_scenarios import SMALL
from tests.helpers import wait_event
from trio_wf.workflow import WorkflowExecutionError, aexecute_graph

pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("quiet_dask")

from trio_wf._dask._fuse import CHAIN_SLICE, SLICE  # noqa: E402, needs distributed

TASKS = "tests.workflow.tasks"


async def _run_all(ctx: Any, fn: Any, args: list[Any], **options: Any) -> list[Any]:
    """``fn(*each)`` for each tuple of ``args``, all at once: its result, or its
    exception."""
    results: list[Any] = [None] * len(args)

    async def call(n: int) -> None:
        try:
            results[n] = await ctx.run_sync(fn, *args[n], **options)
        except Exception as exc:
            results[n] = exc

    async with trio.open_nursery() as nursery:
        for n in range(len(args)):
            nursery.start_soon(call, n)
    return results


async def test_many_calls_at_once_share_tasks_and_keep_their_own_outcomes(
    cluster: Any,
) -> None:
    """40 calls on 2 workers run in fewer tasks; a call that raises, and one
    whose result cannot be pickled, fail alone."""
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        with trio.fail_after(30):
            results = await _run_all(
                ctx, dask_workers.task_key_or_fail, [(n,) for n in range(40)]
            )
        assert isinstance(results[7], ValueError)
        assert results[7].args == (7,)
        assert isinstance(results[8], TypeError)
        assert "lock" in str(results[8])
        good = [r for n, r in enumerate(results) if n not in (7, 8)]
        assert [n for n, _ in good] == [n for n in range(40) if n not in (7, 8)]
        keys = {key for _, key in good}
        assert len(keys) < len(good)
        assert any(key.startswith("shared-") for key in keys)
        assert ctx.statistics().running_calls == 0


async def test_calls_share_tasks_only_when_the_context_allows_it(
    cluster: Any,
) -> None:
    """By default each call is a task of its own: a cancelled call never
    starts, and one that kills its worker takes no other call with it."""
    async with trio_wf.open_dask_context(cluster.scheduler_address) as ctx:
        with trio.fail_after(30):
            results = await _run_all(
                ctx, dask_workers.task_key, [(n,) for n in range(20)]
            )
    keys = [key for _, key in results]
    assert len(set(keys)) == 20
    assert not any(key.startswith("shared-") for key in keys)


async def test_calls_a_slice_did_not_reach_go_out_again(cluster: Any) -> None:
    """Calls longer than a slice: each shared task runs its first call only,
    and the others run in tasks of their own, with the right results."""
    seconds = SLICE * 1.5
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        with trio.fail_after(30):
            results = await _run_all(
                ctx, dask_workers.task_key, [(n, seconds) for n in range(8)]
            )
    assert [n for n, _ in results] == list(range(8))
    keys = [key for _, key in results]
    # Two calls to a task (8 calls, 2 workers), one per slice: each task
    # ran one, and the other went out again on its own.
    assert len(set(keys)) == 8
    assert sum(key.startswith("shared-") for key in keys) == 4


@pytest.mark.slow
async def test_cancelling_calls_that_share_a_task_kills_it(
    manager: SyncManager,
) -> None:
    """kill_on_cancel: once every call of a shared task is cancelled, the
    worker that runs it is killed, and nothing runs on the cluster."""
    started = manager.Event()
    async with trio_wf.open_dask_context(
        n_workers=1, cluster_options=SMALL, share_tasks=True
    ) as ctx:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: _run_all(
                        ctx,
                        dask_workers.announce_and_sleep,
                        [(started,)] * 6,
                        kill_on_cancel=True,
                    )
                )
                await wait_event(started)
                pid = await dask_scenarios.pid_of_running(ctx)
                scope.cancel()
        assert ctx.statistics().running_calls == 0
        await dask_scenarios.nothing_runs_for(ctx.client, pid)


@pytest.mark.slow
async def test_a_call_that_kills_its_worker_fails_alone() -> None:
    """A call that kills the worker of the task it shares, or of its chain's:
    it alone fails, with the worker named; the others run again and succeed."""
    async with trio_wf.open_dask_context(
        n_workers=1, cluster_options=SMALL, share_tasks=True
    ) as ctx:
        with trio.fail_after(2 * dask_scenarios.REPLACEMENT):
            results = await _run_all(
                ctx, dask_workers.exit_at, [(n, 1) for n in range(6)]
            )
        assert isinstance(results[1], trio_wf.BrokenWorkerError)
        assert results[1].address is not None
        # Calls 0 and 2 shared call 1's task (3 to a task), and ran again.
        # Dask itself fails a call it handed to a worker as it dies (up to 2
        # for 1 thread), with allowed-failures=0: one more may fail, not all.
        broken = [r for r in results if isinstance(r, trio_wf.BrokenWorkerError)]
        assert len(broken) <= 2
        assert all(r == n for n, r in enumerate(results) if r not in broken)
        node = {"task_type": "method", "task_identifier": f"{TASKS}.identity"}
        nodes = [{"id": i, **node} for i in range(3)]
        nodes[0]["default_inputs"] = [{"name": "value", "value": 42}]
        nodes[1]["task_identifier"] = f"{TASKS}.exit_now"
        links = [
            {
                "source": i,
                "target": i + 1,
                "data_mapping": [
                    {"source_output": "return_value", "target_input": name}
                ],
            }
            for i, name in ((0, "code"), (1, "value"))
        ]
        graph = {"graph": {"id": "crash"}, "nodes": nodes, "links": links}
        events: list[Any] = []
        with (
            trio.fail_after(2 * dask_scenarios.REPLACEMENT),
            pytest.raises(WorkflowExecutionError) as info,
        ):
            await aexecute_graph(graph, context=ctx, on_event=events.append)
        assert info.value.node_id == 1
        assert isinstance(info.value.__cause__, trio_wf.BrokenWorkerError)
        ends = [(e.kind, e.node_id) for e in events if e.kind in ("end", "error")]
        assert ends == [("end", 0), ("error", 1)]
        # The replacement worker up before the cluster closes: closing it
        # while its nanny restarts it may leave descriptors behind.
        with trio.fail_after(dask_scenarios.REPLACEMENT):
            assert await ctx.run_sync(dask_workers.exit_at, 0, 1) == 0


def _fan(n: int, fail: int) -> dict[str, Any]:
    nodes = [{"id": 0, "task_type": "method", "task_identifier": f"{TASKS}.identity"}]
    nodes[0]["default_inputs"] = [{"name": "value", "value": 1}]
    for i in range(1, n + 1):
        task = "fail" if i == fail else "add"
        nodes.append(
            {"id": i, "task_type": "method", "task_identifier": f"{TASKS}.{task}"}
        )
        nodes[-1]["default_inputs"] = [{"name": "b", "value": i}]
    mapping = [{"source_output": "return_value", "target_input": "a"}]
    links = [
        {"source": 0, "target": i, "data_mapping": mapping} for i in range(1, n + 1)
    ]
    return {"graph": {"id": "fan"}, "nodes": nodes, "links": links}


async def test_a_fan_of_nodes_on_dask_keeps_per_node_events_and_errors(
    cluster: Any,
) -> None:
    """A fan of 20 nodes shares tasks: each node's events, on a worker, and a
    failing node reported as itself while the others succeed."""
    events: list[Any] = []
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        results = await aexecute_graph(
            _fan(20, fail=5),
            context=ctx,
            on_event=events.append,
            outputs=[{"all": True}],
            merge_outputs=False,
            raise_on_error=False,
        )
    assert {i: results[i]["return_value"] for i in range(1, 21) if i != 5} == {
        i: 1 + i for i in range(1, 21) if i != 5
    }
    kinds = {i: [e.kind for e in events if e.node_id == i] for i in range(21)}
    assert kinds[5] == ["queued", "start", "error"]
    assert all(kinds[i] == ["queued", "start", "end"] for i in range(21) if i != 5)
    ends = [e for e in events if e.kind == "end"]
    assert all(e.worker_pid not in (None, os.getpid()) for e in ends)


async def test_the_trace_of_a_run_on_dask_shows_what_ran_where(
    cluster: Any, tmp_path: Path
) -> None:
    """A fan of 8 sleepers shares tasks on 2 workers, then a chain of 3: in the
    trace, each node runs on its worker (not in this process), for the time it
    slept, never two at once on a worker; the time a node waited in its task is
    its wait for a worker."""
    nap = 0.1
    node = {"task_type": "method", "task_identifier": f"{TASKS}.sleep"}
    nodes = [{"id": i, **node} for i in range(11)]
    nodes[0]["default_inputs"] = [{"name": "seconds", "value": nap}]
    mapping = [{"source_output": "return_value", "target_input": "seconds"}]
    links = [{"source": 0, "target": i, "data_mapping": mapping} for i in range(1, 9)]
    links += [{"source": i, "target": i + 1, "data_mapping": mapping} for i in (8, 9)]
    trace_path = tmp_path / "run.json"
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        with trio.fail_after(30):
            await aexecute_graph(
                {"graph": {"id": "fan"}, "nodes": nodes, "links": links},
                context=ctx,
                trace=trace_path,
            )
    trace = json.loads(trace_path.read_text())
    runs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["args"]["node"] for e in runs) == sorted(map(str, range(11)))
    workers = {e["pid"] for e in runs}
    assert trace["trio_wf"]["parent_pid"] not in workers
    assert len(workers) <= 2
    assert {e["tid"] for e in runs} == {0}
    for event in runs:
        assert nap * 1e6 <= event["dur"] < (nap + 0.25) * 1e6, event
    for pid in workers:
        spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in runs if e["pid"] == pid)
        assert all(a[1] <= b[0] + 1 for a, b in itertools.pairwise(spans)), spans
    # 8 nodes on 2 workers: some waited for one, in their shared task.
    assert any(e["ph"] == "b" for e in trace["traceEvents"])


async def test_class_nodes_on_dask_end_with_their_worker_times(cluster: Any) -> None:
    """Class nodes on Dask, more at once than workers: each end event has the
    worker's pid and the time it ran there, not its wait for a worker."""
    nap = 0.1
    nodes = [
        {
            "id": i,
            "task_type": "class",
            "task_identifier": f"{TASKS}.Nap",
            "default_inputs": [{"name": "seconds", "value": nap}],
        }
        for i in range(6)
    ]
    events: list[Any] = []
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        with trio.fail_after(30):
            await aexecute_graph(
                {"graph": {"id": "naps"}, "nodes": nodes, "links": []},
                context=ctx,
                on_event=events.append,
            )
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) == 6
    assert all(e.worker_pid not in (None, os.getpid()) for e in ends)
    assert all(nap <= e.duration < nap + 0.25 for e in ends), ends
    # 6 naps on 2 workers: some waited for one.
    assert max(e.queued for e in ends) >= nap


async def test_a_run_on_a_scheduler_address_shares_tasks(cluster: Any) -> None:
    """The engine's own context (``scheduler=ADDRESS``) shares tasks: its
    nodes are cancelled only together, with the run."""
    nodes = [
        {
            "id": n,
            "task_type": "method",
            "task_identifier": "tests.dask_workers.task_key",
            "default_inputs": [{"name": "n", "value": n}],
        }
        for n in range(20)
    ]
    with trio.fail_after(60):
        results = await aexecute_graph(
            {"graph": {"id": "fan"}, "nodes": nodes, "links": []},
            scheduler=cluster.scheduler_address,
            outputs=[{"all": True}],
            merge_outputs=False,
        )
    keys = [results[n]["return_value"][1] for n in range(20)]
    assert [results[n]["return_value"][0] for n in range(20)] == list(range(20))
    assert any(key.startswith("shared-") for key in keys)


async def test_a_chain_longer_than_a_slice_runs_on_in_the_next(cluster: Any) -> None:
    """A chain of nodes longer than a slice: the rest goes out again, from the
    last node that ran, with the same results and events in order."""
    seconds = CHAIN_SLICE * 0.6
    node = {"task_type": "method", "task_identifier": f"{TASKS}.sleep"}
    nodes = [{"id": i, **node} for i in range(4)]
    nodes[0]["default_inputs"] = [{"name": "seconds", "value": seconds}]
    mapping = [{"source_output": "return_value", "target_input": "seconds"}]
    links = [{"source": i, "target": i + 1, "data_mapping": mapping} for i in range(3)]
    graph = {"graph": {"id": "sleepers"}, "nodes": nodes, "links": links}
    events: list[Any] = []
    async with trio_wf.open_dask_context(
        cluster.scheduler_address, share_tasks=True
    ) as ctx:
        with trio.fail_after(30):
            results = await aexecute_graph(graph, context=ctx, on_event=events.append)
        assert ctx.statistics().running_calls == 0
    assert results == {"return_value": seconds}
    assert [(e.kind, e.node_id) for e in events] == [
        (kind, i) for i in range(4) for kind in ("queued", "start", "end")
    ]
    # Each the time it ran, measured on its worker: the second node of a
    # slice comes back with the first, yet ran for as long.
    assert all(e.duration >= seconds for e in events if e.kind == "end")
