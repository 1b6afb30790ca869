"""Contract tests: graphs run end to end on real worker processes (fault rows 27-30)."""

from __future__ import annotations

import functools
import json
import os
import time
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio

import trio_wf
from trio_wf.workflow import (
    GraphValidationError,
    NodeStatus,
    WorkflowExecutionError,
    aexecute_graph,
    execute_graph,
)

from .helpers import graph, link, method, run_cli

RV = "return_value"
#: A generous bound on the start-up of a trio-wf process, on a loaded machine.
STARTUP = 2.5


def test_execute_graph_from_sync_code() -> None:
    """execute_graph runs a diamond in spawn workers that never import trio."""
    document = graph(
        [
            method("a", "add", inputs={"a": 1}),
            method("b", "add", inputs={"b": 10}),
            method("c", "trio_imported"),
            method("d", "kwargs"),
        ],
        [
            link("a", "b", (RV, "a")),
            link("a", "c"),
            link("b", "d", (RV, "b")),
            link("c", "d", (RV, "c")),
        ],
    )
    result = execute_graph(document, max_workers=2)
    assert result == {RV: {"b": 11, "c": []}}


async def test_file_tasks_and_worker_types(
    tmp_path: Path, worker_type: trio_wf.WorkerType
) -> None:
    """file.py::function tasks run under every worker type."""
    (tmp_path / "mytasks.py").write_text("def double(x):\n    return 2 * x\n")
    document = graph([method("a", "add")])
    document["nodes"][0]["task_identifier"] = f"{tmp_path}/mytasks.py::double"
    result = await aexecute_graph(document, inputs={"x": 21}, worker_type=worker_type)
    assert result == {RV: 42}


async def test_unimportable_task_fails_its_node_at_run_time(
    tmp_path: Path,
) -> None:
    """An untrusted graph's bad identifier fails that node, in the worker (row 28)."""
    counter = tmp_path / "runs.txt"
    document = graph(
        [
            method("a", "record", inputs={"path": str(counter), "name": "a"}),
            {"id": "bad", "task_type": "method", "task_identifier": "no_such.module.f"},
        ]
    )
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document)
    assert "node id 'bad', task 'no_such.module.f'" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert counter.read_text() == "a\n"
    with pytest.raises(GraphValidationError, match="node 'bad': cannot import"):
        await aexecute_graph(trio_wf.workflow.load_graph(document, trusted=True))
    assert counter.read_text() == "a\n"


def test_invalid_graph_runs_nothing(tmp_path: Path) -> None:
    """Row 27: a dangling link or duplicate id fails before any task runs."""
    counter = tmp_path / "runs.txt"
    task = {"path": str(counter), "name": "x"}
    for document in [
        graph([method("a", "record", inputs=task)], [link("a", "b")]),
        graph([method("a", "record", inputs=task), method("a", "record", inputs=task)]),
        graph([method("a", "record", inputs=task)], [link("a", "a")]),
    ]:
        with pytest.raises(GraphValidationError):
            execute_graph(document)
    assert not counter.exists()


def test_failure_mid_graph(tmp_path: Path) -> None:
    """Row 29: a→(b fails, c)→d: c completes, d is skipped, the error names b."""
    counter = tmp_path / "runs.txt"

    def node(node_id: str, task: str = "record") -> Any:
        return method(node_id, task, inputs={"path": str(counter), "name": node_id})

    document = graph(
        [node("a"), node("b", "fail"), node("c"), node("d")],
        [link("a", "b"), link("a", "c"), link("b", "d"), link("c", "d")],
    )
    with pytest.raises(WorkflowExecutionError) as info:
        execute_graph(document)
    assert sorted(counter.read_text().split()) == ["a", "c"]
    assert info.value.statuses["d"] is NodeStatus.SKIPPED
    assert info.value.outputs == {"a": {RV: "a"}, "c": {RV: "c"}}


async def test_worker_crash_is_a_node_failure() -> None:
    """A worker dying mid-task fails its node with BrokenWorkerError; the
    independent branch still completes."""
    document = graph(
        [method("crash", "exit_now", inputs={"code": 42}), method("ok", "pid")]
    )
    with pytest.raises(WorkflowExecutionError) as info:
        await aexecute_graph(document, max_workers=2)
    cause = info.value.__cause__
    assert isinstance(cause, trio_wf.BrokenWorkerError)
    assert cause.exitcode == 42
    assert "ok" in info.value.outputs


def blocking_graph(manager: SyncManager) -> tuple[Any, Any, Any]:
    started, release, done = manager.Event(), manager.Event(), manager.Event()
    document = graph(
        [
            method(
                "block",
                "wait_for",
                inputs={"started": started, "release": release, "done": done},
            ),
            method("after", "add", inputs={"a": 1}),
        ],
        [link("block", "after")],
    )
    return document, started, done


async def wait_event(event: Any) -> None:
    with trio.fail_after(20):
        await trio.to_thread.run_sync(event.wait, abandon_on_cancel=True)


async def test_timeout_kills_a_blocked_node(manager: SyncManager) -> None:
    """Row 30: timeout raises TimeoutError and kills the running node's worker."""
    document, started, done = blocking_graph(manager)
    async with trio_wf.open_worker_context() as context:
        await context.run_sync(int)  # a worker is ready: the node starts at once
        with pytest.raises(TimeoutError, match=r"nodes \['block'\] were running"):
            await aexecute_graph(document, context=context, timeout=1.5)
        assert started.is_set()
        assert not done.is_set()
        assert context.statistics().running_workers == 0


async def test_cancelling_the_caller_kills_running_nodes(
    manager: SyncManager,
) -> None:
    """Cancelling the caller's scope cancels the run and kills its workers."""
    document, started, done = blocking_graph(manager)
    me = psutil.Process()
    before = {child.pid for child in me.children()}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(aexecute_graph, document))
        await wait_event(started)
        workers = [child for child in me.children() if child.pid not in before]
        assert workers
        nursery.cancel_scope.cancel()
    assert not done.is_set()
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive


@pytest.mark.parametrize(
    ("options", "in_process", "main_thread"),
    [
        ({"worker_type": "thread"}, True, False),
        ({"worker_type": "sequential"}, True, True),
        ({"worker_type": trio_wf.WorkerType.FORKSERVER}, False, True),
        ({"pool_type": "thread"}, True, False),
        ({"pool_type": "process"}, False, True),
        ({"scheduler": "sequential"}, True, True),
        ({"scheduler": "multithreading"}, True, False),
        ({"scheduler": "multiprocessing"}, False, True),
        ({"scheduler": None}, False, True),
    ],
)
def test_one_argument_chooses_where_tasks_run(
    options: dict[str, Any], in_process: bool, main_thread: bool
) -> None:
    """worker_type, or ewoksppf's pool_type or ewoksdask's scheduler, picks
    worker processes, threads, or the Trio thread."""
    document = graph([method("a", "where")])
    pid, thread = execute_graph(document, **options)[RV]
    assert (pid == os.getpid()) is in_process
    assert (thread == "MainThread") is main_thread


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_type": "gevent"}, "worker_type must be one of 'spawn', "),
        ({"pool_type": "ndprocess"}, "pool_type='ndprocess' has no trio_wf equiv"),
        ({"scheduler": "processes"}, "scheduler='processes' has no trio_wf equiv"),
        ({"scheduler": "sequential", "pool_type": "thread"}, "pass only one of"),
        ({"worker_type": "thread", "context": "c"}, "either context or worker_type"),
    ],
)
def test_unknown_backends_are_refused(options: dict[str, Any], message: str) -> None:
    """A backend name trio_wf does not know is a ValueError naming the option."""
    with pytest.raises(ValueError, match=message):
        execute_graph(graph([method("a", "where")]), **options)


async def test_thread_backend_waits_for_running_tasks_on_timeout() -> None:
    """A thread cannot be killed: a timeout waits for its task, then raises."""
    document = graph([method("a", "sleep", inputs={"seconds": 0.5})])
    start = trio.current_time()
    with pytest.raises(TimeoutError, match=r"did not finish within 0.1 s$"):
        await aexecute_graph(document, worker_type="thread", timeout=0.1)
    assert trio.current_time() - start >= 0.5


@pytest.mark.parametrize(
    ("worker_type", "max_workers"), [("sequential", None), ("thread", 1)]
)
@pytest.mark.parametrize("chain", [False, True], ids=["independent", "chain"])
async def test_in_process_backends_stop_between_nodes_on_timeout(
    worker_type: str, max_workers: int | None, chain: bool
) -> None:
    """Sequential and thread backends cannot stop a running task, but a timeout
    holds between nodes: of three 0.6 s nodes, independent or in a chain, only
    the first runs (it took all three before, for independent ones)."""
    nodes = [method(n, "sleep", inputs={"seconds": 0.6}) for n in "abc"]
    links = [link("a", "b"), link("b", "c")] if chain else []
    start = trio.current_time()
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.2 s"):
        await aexecute_graph(
            graph(nodes, links),
            worker_type=worker_type,
            max_workers=max_workers,
            timeout=0.2,
        )
    assert 0.6 <= trio.current_time() - start < 1.2


def test_a_timeout_holds_under_the_sequential_cli() -> None:
    """trio-wf run --worker-type sequential --timeout: exit 124 after the
    running node, not after every node."""
    nodes = [method(n, "sleep", inputs={"seconds": 1.5}) for n in "abc"]
    start = time.monotonic()
    result = run_cli(
        "run",
        "-",
        "--worker-type",
        "sequential",
        "--timeout",
        "0.2",
        stdin=json.dumps(graph(nodes)),
    )
    assert result.returncode == 124, result.stderr
    # 1.5 s and the start-up; 4.5 s and more when every node runs.
    assert time.monotonic() - start < 1.5 + STARTUP
