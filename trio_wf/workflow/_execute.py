"""`execute_graph` and `aexecute_graph`: a run from its options to its result.

The one place the options of a run are checked and put together: load the
graph (`._load`), check the options before anything runs, open the backend,
walk the graph (`._walker`) under the timeout, then collect the results
(`._results`).
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, TypedDict, TypeVar

import trio

import trio_wf

from .._util import quote, quote_items
from ._allow import AllowedTasks
from ._backends import choose_backend, open_backend
from ._cache import ResultCache
from ._events import EventCallback, NodeStatus
from ._ewoks import ewoks_events, ewoks_settings
from ._graph import Graph
from ._load import GraphSource, load_graph
from ._results import (
    collect_results,
    execution_error,
    ids_with_status,
    with_failures,
)
from ._schedulers import DASK
from ._selectors import OutputsSpec, Selection, output_selection
from ._tasks import TaskRunner
from ._trace import TraceRecorder
from ._walker import Run

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack

T = TypeVar("T")

#: How many times, by default, a node of a loop may run in one execution.
MAX_ITERATIONS = 1000


class ExecuteOptions(TypedDict, total=False):
    """The keyword arguments of `aexecute_graph`, for the functions that pass
    them on (`execute_graph`, `open_graph_run`) and their type checking."""

    inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None
    outputs: OutputsSpec | None
    merge_outputs: bool
    context: trio_wf.SupportsRunSync | None
    worker_type: trio_wf.WorkerType | str | None
    max_workers: int | None
    timeout: float | None
    raise_on_error: bool
    on_event: EventCallback | None
    max_iterations: int
    pool_type: str | None
    scheduler: str | None
    scheduler_options: Mapping[str, Any] | None
    allow_scripts: bool
    allowed_tasks: AllowedTasks | None
    cache_dir: str | os.PathLike[str] | None
    varinfo: Mapping[str, Any] | None
    task_options: Mapping[str, Any] | None
    output_tasks: bool
    execinfo: Mapping[str, Any] | str | bool | None
    trace: str | os.PathLike[str] | None


async def aexecute_graph(
    graph: GraphSource,
    *,
    inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    outputs: OutputsSpec | None = None,
    merge_outputs: bool = True,
    context: trio_wf.SupportsRunSync | None = None,
    worker_type: trio_wf.WorkerType | str | None = None,
    max_workers: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109, the ewoks API has timeout=
    raise_on_error: bool = True,
    on_event: EventCallback | None = None,
    max_iterations: int = MAX_ITERATIONS,
    pool_type: str | None = None,
    scheduler: str | None = None,
    scheduler_options: Mapping[str, Any] | None = None,
    allow_scripts: bool = False,
    allowed_tasks: AllowedTasks | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    varinfo: Mapping[str, Any] | None = None,
    task_options: Mapping[str, Any] | None = None,
    output_tasks: bool = False,
    execinfo: Mapping[str, Any] | str | bool | None = None,
    trace: str | os.PathLike[str] | None = None,
) -> dict[Any, Any]:
    """Run a workflow graph from Trio; every node's task runs in a worker.

    Each node starts, in a nursery, as soon as its incoming links have settled
    (see :doc:`/workflows` for the exact rules), so independent nodes run in
    parallel, up to ``max_workers`` at a time.

    Args:
        graph: a `Graph`, or anything `load_graph` accepts (loaded untrusted:
            tasks are imported by the workers, when their node runs).
        inputs: values overriding the nodes' ``default_inputs``, as for
            `load_graph`.
        outputs: which outputs to return: a list of ``{"id"|"label"|
            "task_identifier"|"all", "name"?, "new_name"?}`` selectors.  The
            default, ``[{"all": False}]``, selects the end nodes; ``"all": true``
            selects every node; ``"name"`` keeps one output, renamed to
            ``"new_name"`` if given.
        merge_outputs: return one dict merging the selected nodes' outputs (in
            the graph's order, later nodes winning), rather than
            ``{node_id: outputs}``.
        context: the backend to run tasks on, such as a `trio_wf.WorkerContext`
            (any `trio_wf.SupportsRunSync`).  By default a private backend
            chosen by ``worker_type`` is opened for the run and closed after.
        worker_type: where tasks run, when no ``context`` is given: a
            `trio_wf.WorkerType` (``"spawn"``, the default, ``"forkserver"`` or
            ``"fork"``: a private worker context), ``"thread"`` (Trio's worker
            threads) or ``"sequential"`` (one at a time, in the Trio thread:
            for debugging); see :ref:`backends`.
        max_workers: how many tasks run at once (default: one per CPU for a
            private local backend, the context's own limit otherwise; no
            limit on a Dask cluster, whose scheduler queues what its workers
            cannot run yet).
        timeout: seconds after which the run (loading the graph included) is
            stopped: running tasks are killed (a thread's or a sequential
            task is waited for, and no other node starts after it) and
            `TimeoutError` is raised.
        raise_on_error: if false, return the outputs of the nodes that completed
            instead of raising `WorkflowExecutionError`, with the failure as
            ewoksppf adds it: merged, that error as
            ``"WorkflowExceptionInstance"`` and ``{"errorMessage",
            "traceBack"}`` as ``"WorkflowException"``; per node, each failed
            node's own exception on its entry (see :ref:`errors`).
        on_event: called with a `NodeEvent` when a node is queued for a
            worker, starts, ends or fails, in the Trio thread; what it raises
            aborts the run.
        max_iterations: how many times a node of a loop may run; one more
            fails it with `LoopLimitError` (see :ref:`loops`).
        pool_type: ewoksppf's spelling of ``worker_type``: ``"process"``
            (spawn) or ``"thread"``.
        scheduler: ewoksdask's spelling of the backend: ``"multiprocessing"``
            (spawn), ``"multithreading"`` (thread), ``"sequential"``,
            ``"cluster"`` (a private Dask cluster, as
            ``trio_wf.open_dask_context()`` opens) or the address of a Dask
            scheduler (``"tls://head:8786"``); see :ref:`ewoksdask-options`.
        scheduler_options: ewoksdask's options of that backend, in one
            mapping: ``num_workers`` (= ``max_workers``), ``context`` (the
            start method) and ``chunksize=1`` for ``"multiprocessing"`` (also
            the default scheduler); ``num_workers`` for ``"multithreading"``;
            for ``"cluster"``, `trio_wf.open_dask_context`'s ``n_workers``,
            ``security``, ``timeout`` and ``init``, the rest going to Dask's
            ``LocalCluster``; for an address, ``security``, ``timeout``,
            ``connect_timeout``, ``insecure`` and ``init``.  Anything else is
            refused with the reason.
        allow_scripts: run ``script`` nodes.  A graph with script nodes is
            refused otherwise: a script runs any program (see :ref:`scripts`).
        allowed_tasks: the task identifiers the graph may name, as for
            `load_graph`; ``None`` (the default) allows any (see
            :ref:`allow-list`).  Checked before anything runs.
        cache_dir: a directory of your own where each successful node's
            outputs are stored; a node whose task and inputs have stored
            outputs is not run again (see :ref:`persistence`).
        varinfo: ewokscore's persistence, ``{"root_uri": path, "scheme":
            "json"|"nexus"}``: outputs are stored by ewokscore, where ewoks
            tools find them, and a task whose outputs are stored is not run
            again.  Needs the ``trio-wf[ewoks]`` extra (see :doc:`/ewoks`).
        task_options: keyword arguments of every ewokscore task's
            constructor (such as ``profile_directory``); needs the extra.
        output_tasks: return ``{node_id: task}``, the ewokscore ``Task``
            each node executed, instead of outputs (what ewokscore's test
            helpers inspect); needs the extra.
        execinfo: ewoks events: job and workflow start and end events from
            this process, node events from each ewokscore task, sent to the
            ``handlers`` it names (ewokscore's ``execinfo``: a dict, a job
            id, or true); needs the extra.  None (the default) sends none.
        trace: a file to write the run's trace to when it ends, however it
            ends: each node's wait for a worker and its run, with the worker's
            pid, in Chrome's trace-event format (Perfetto and
            ``chrome://tracing`` open it; see :ref:`trace`), and what
            ``trio-wf report`` draws.

    Returns:
        The selected outputs, merged or per node.  Only nodes that completed
        contribute; the result is the same on every run, whatever the timing.

    Raises:
        WorkflowExecutionError: a node failed and no ``on_error`` link handled
            it; raised after every independent branch finished.
        TimeoutError: the run took longer than ``timeout``.
        GraphValidationError: the graph is malformed.
        ValueError: an option is invalid, or selects a node that does not exist.
        PermissionError: the graph has ``script`` nodes and ``allow_scripts``
            is false, or ``cache_dir`` is not safe to read pickles from.
    """
    choice = choose_backend(
        worker_type, pool_type, scheduler, scheduler_options, context is not None
    )
    if choice is not None and choice.max_workers is not None:
        if max_workers is not None:
            msg = "pass either max_workers or scheduler_options num_workers, not both"
            raise ValueError(msg)
        max_workers = choice.max_workers
    if not _positive_int(max_iterations):
        msg = f"max_iterations must be a positive int, got {quote(max_iterations)}"
        raise ValueError(msg)
    if max_workers is not None and not _positive_int(max_workers):
        msg = f"max_workers must be a positive int or None, got {quote(max_workers)}"
        raise ValueError(msg)
    if timeout is not None and not timeout >= 0:  # also rejects NaN
        msg = f"timeout must be a non-negative number of seconds, got {quote(timeout)}"
        raise ValueError(msg)
    deadline = trio.current_time() + (math.inf if timeout is None else timeout)
    prepared: tuple[Graph, Selection] | None = None
    with trio.move_on_at(deadline):
        prepared = await _off_trio_thread(
            functools.partial(
                _prepare, graph, inputs, allowed_tasks, outputs, allow_scripts
            )
        )
    if prepared is None:
        msg = (
            f"the graph did not finish within {timeout} s: it was still being "
            f"prepared (read, checked and analysed)"
        )
        raise TimeoutError(msg)
    loaded, selection = prepared
    ewoks = ewoks_settings(loaded, varinfo, task_options, output_tasks, execinfo)
    if cache_dir is not None and ewoks is not None and ewoks.varinfo is not None:
        msg = "pass either cache_dir (trio_wf's store) or varinfo (ewokscore's)"
        raise ValueError(msg)
    cache = None if cache_dir is None else ResultCache.open(cache_dir)

    # ewoks events, if asked for: the end events carry what leaves the block.
    with ewoks_events(ewoks, loaded) as ewoks:
        limiter = None
        on_dask = choice is not None and choice.kind == DASK
        if max_workers is not None or (context is None and not on_dask):
            limiter = trio.CapacityLimiter(max_workers or os.cpu_count() or 1)
        recorder = None if trace is None else TraceRecorder()
        if recorder is not None:
            on_event = recorder.chain(on_event)
        run: Run | None = None
        try:
            with trio.move_on_at(deadline) as scope:
                backend = (
                    open_backend(choice) if context is None else nullcontext(context)
                )
                async with backend as runner:
                    run = Run(
                        loaded,
                        TaskRunner(
                            runner, limiter, allow_scripts=allow_scripts, ewoks=ewoks
                        ),
                        on_event,
                        max_iterations,
                        cache,
                    )
                    await run.run()
        finally:
            if recorder is not None:
                assert trace is not None
                recorder.write(trace, loaded, None if run is None else run.status)
        # cancel_called, not cancelled_caught: threads are waited for, and the
        # run may end normally after its deadline; it still took too long.
        if scope.cancel_called:
            raise TimeoutError(_timeout_message(loaded, run, timeout))
        assert run is not None
        results = collect_results(run, selection, merge_outputs)
        error = execution_error(run, results)
        if error is not None:
            if raise_on_error:
                raise error from error.__cause__
            results = with_failures(run, results, error, merge_outputs)
        if output_tasks:
            tasks = run.runner.tasks
            order = loaded.analysis.order
            return {node_id: tasks[node_id] for node_id in order if node_id in tasks}
        return results


def _timeout_message(graph: Graph, run: Run | None, timeout: float | None) -> str:
    """What was running, and what was waiting for a worker, at the deadline."""
    submitted = [] if run is None else ids_with_status(run, NodeStatus.RUNNING)
    started = set() if run is None else {run.nodes[i].id for i in run.started}
    running = [node_id for node_id in submitted if node_id in started]
    waiting = [node_id for node_id in submitted if node_id not in started]
    msg = f"{graph.display_name} did not finish within {timeout} s"
    if running:
        msg += f"; nodes {quote_items(running)} were running and have been stopped"
    if waiting:
        msg += f"; nodes {quote_items(waiting)} were waiting for a worker"
    return msg


def execute_graph(
    graph: GraphSource, **options: Unpack[ExecuteOptions]
) -> dict[Any, Any]:
    """Run a workflow graph from synchronous code, in a new `trio.run`.

    The arguments, result and errors are those of `aexecute_graph`.  Ctrl+C
    stops the run: running tasks are killed and `KeyboardInterrupt` is raised.
    """
    return trio.run(functools.partial(aexecute_graph, graph, **options))


async def _off_trio_thread(function: Callable[[], T]) -> T:
    """``function()``, in a thread that a cancellation abandons.

    Reading and analysing a graph of 10,000 nodes takes a good part of a
    second, in C calls (json.loads) as much as in Python.  In a thread, the
    timeout and Ctrl+C are obeyed meanwhile, which checkpoints in the loader
    could not do inside one C call.  Abandoned, the thread finishes its work
    (pure computation, bounded by the limits on the graph's size; an untrusted
    load imports nothing) and its result is dropped.

    Under `trio.testing.MockClock` it runs in Trio's thread instead: virtual
    time cannot see work done in a thread, and autojump would pass every
    deadline while a graph loads.
    """
    testing = sys.modules.get("trio.testing")
    if testing is not None and isinstance(
        trio.lowlevel.current_clock(), testing.MockClock
    ):
        await trio.lowlevel.checkpoint()
        return function()
    return await trio.to_thread.run_sync(function, abandon_on_cancel=True)


def _prepare(
    source: GraphSource,
    inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None,
    allowed_tasks: AllowedTasks | None,
    outputs: OutputsSpec | None,
    allow_scripts: bool,
) -> tuple[Graph, Selection]:
    """The graph, loaded and checked, and the outputs selected (in a thread)."""
    graph = load_graph(source, inputs=inputs, allowed_tasks=allowed_tasks)
    scripts = [node.id for node in graph.nodes.values() if node.task_type == "script"]
    if scripts and not allow_scripts:
        msg = (
            f"nodes {quote_items(scripts)} are script tasks, which run programs: "
            f"pass allow_scripts=True (trio-wf run --allow-scripts) to run them"
        )
        raise PermissionError(msg)
    return graph, output_selection(graph, outputs)


def _positive_int(value: object) -> bool:
    # Checked at run time, whatever the annotations say; a bool is no count.
    return type(value) is not bool and isinstance(value, int) and value >= 1
