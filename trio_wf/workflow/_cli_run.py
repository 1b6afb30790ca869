"""``trio-wf run GRAPH``: run a graph, print its results, say what failed."""

from __future__ import annotations

import argparse
import json
import os
import pprint
import sys
import textwrap
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TextIO

import trio

from .._util import QUOTE_LIMIT, quote, quote_items, shorten
from ._cli_graph import EXIT_USAGE, UsageError, read_graph
from ._cli_progress import LiveProgress, RunCounts
from ._errors import WorkflowExecutionError
from ._events import NodeEvent
from ._execute import aexecute_graph, execute_graph
from ._graph import Graph, NodeId, display_id
from ._tracebacks import format_user_traceback, user_frames

EXIT_FAILED = 1
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130


def run_command(options: argparse.Namespace) -> int:
    """Run the graph as the options say; return the exit status."""
    if options.scheduler is None and options.insecure:
        msg = "--insecure only applies with --scheduler"
        raise UsageError(msg)
    if options.scheduler is not None and options.worker_type is not None:
        msg = "pass either --scheduler or --worker-type, not both"
        raise UsageError(msg)
    graph = read_graph(
        options.graph,
        trusted=options.trusted,
        allowed_tasks=options.allowed_tasks,
        inputs=options.inputs,
    )
    scripts = [node.id for node in graph.nodes.values() if node.task_type == "script"]
    if scripts and not options.allow_scripts:
        msg = (
            f"nodes {quote_items(scripts)} are script tasks, which run programs: "
            "pass "
            "--allow-scripts to run them"
        )
        raise UsageError(msg)
    run_options: dict[str, Any] = {
        "max_workers": options.workers,
        "timeout": options.timeout,
        "max_iterations": options.max_iterations,
        "allow_scripts": options.allow_scripts,
        "allowed_tasks": options.allowed_tasks,
        "cache_dir": options.cache_dir,
        "trace": options.trace,
    }
    # Animated on a terminal only: a log or a pipe gets no escape sequences.
    animate = not (options.quiet or options.verbose) and _on_a_terminal()
    counts = RunCounts(graph) if animate or options.verbose else None
    display: AbstractContextManager[Any] = nullcontext()
    if animate:
        display = progress = LiveProgress(graph)
        counts = progress.counts
        run_options["on_event"] = progress
    elif counts is not None:
        run_options["on_event"] = _both(counts, _report)
    try:
        with display:
            results = _execute(graph, options, run_options)
    except WorkflowExecutionError as exc:
        _summary(counts)
        _say_failures(graph, exc, options.verbose)
        return EXIT_FAILED
    except TimeoutError as exc:
        _summary(counts)
        say(f"error: {exc}")
        return EXIT_TIMEOUT
    except (ValueError, TypeError, OSError, ImportError) as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    except BaseException as exc:
        # trio.run raises Ctrl+C wrapped in an exception group when it
        # arrives while a nursery is open.
        if _only_interrupts(exc):
            raise KeyboardInterrupt from None
        raise
    _summary(counts)
    try:
        _print_results(results, options.json, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``trio-wf run g.json | head -1``): not an
        # error of ours, and Python must not report it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _execute(
    graph: Graph, options: argparse.Namespace, run_options: dict[str, Any]
) -> dict[Any, Any]:
    if options.scheduler is None:
        return execute_graph(graph, worker_type=options.worker_type, **run_options)
    return trio.run(
        _run_on_dask, graph, options.scheduler, options.insecure, run_options
    )


def _on_a_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _both(
    first: Callable[[NodeEvent], object], second: Callable[[NodeEvent], object]
) -> Callable[[NodeEvent], None]:
    def on_event(event: NodeEvent) -> None:
        first(event)
        second(event)

    return on_event


def _summary(counts: RunCounts | None) -> None:
    """The one line that ends the progress display, or the -v events."""
    if counts is not None:
        say(counts.summary())


async def _run_on_dask(
    graph: Graph, address: str, insecure: bool, run_options: dict[str, Any]
) -> dict[Any, Any]:
    from trio_wf._dask import open_dask_context  # an optional extra

    async with open_dask_context(address, insecure=insecure) as context:
        return await aexecute_graph(graph, context=context, **run_options)


def _print_results(results: dict[Any, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(results, default=repr, indent=2) + "\n")
        return
    for name, value in results.items():
        text = pprint.pformat(value, sort_dicts=False)
        if "\n" in text:  # a big value: on its own lines, indented
            out.write(f"{name}:\n{textwrap.indent(text, '  ')}\n")
        else:
            out.write(f"{name}: {text}\n")


#: How many of the user's innermost frames a failure shows without ``-v``.
SHORT_FRAMES = 3


def _say_failures(graph: Graph, error: WorkflowExecutionError, verbose: bool) -> None:
    """Each failure no ``on_error`` link handled: node, task and cause, then
    where in the user's code it was raised (every frame and chained exception
    with ``-v``)."""
    for node_id, cause in error.failures.items():
        say(f"error: {describe_node(graph, node_id)} failed: {_cause(cause)}")
        if verbose:
            block = textwrap.indent(format_user_traceback(cause), "  ", bool)
        else:
            block = _short_block(cause)
        sys.stderr.write(block)
    sys.stderr.flush()


def _short_block(error: BaseException) -> str:
    """The user's innermost frames, and what the error was raised from."""
    frames = user_frames(error)
    shown = traceback.StackSummary.from_list(frames[-SHORT_FRAMES:])
    block = "".join(shown.format())
    if len(frames) > SHORT_FRAMES:
        hidden = len(frames) - SHORT_FRAMES
        block = f"  ... {hidden} outer frame(s), -v shows them\n" + block
    origin = error.__cause__ or (
        None if error.__suppress_context__ else error.__context__
    )
    if origin is not None:
        block += f"  (raised from {_cause(origin)}; -v shows where)\n"
    return block


def describe_node(graph: Graph, node_id: NodeId) -> str:
    """``node 'b' (its label, task pkg.mod.func)``, for messages."""
    node = graph.nodes[node_id]
    details = []
    if node.display_label != display_id(node_id):
        details.append(quote(node.display_label))
    task = shorten(node.task_identifier or node.task_type, QUOTE_LIMIT)
    details.append(f"task {task}")
    return f"node {quote(display_id(node_id))} ({', '.join(details)})"


def _cause(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _report(event: NodeEvent) -> None:
    where = f" (iteration {event.iteration})" if event.iteration > 1 else ""
    # A label comes from the graph: a part of it, the rest of the line kept.
    label = shorten(event.label, QUOTE_LIMIT)
    pid = "" if event.worker_pid is None else f" in process {event.worker_pid}"
    if event.kind == "start":
        waited = event.queued or 0.0
        wait = f" after {waited:.3f} s waiting for a worker" if waited >= 0.001 else ""
        say(f"{label}: started{pid}{wait}{where}")
    elif event.kind == "end":
        say(f"{label}: done in {event.duration:.3f} s{pid}{where}")
    elif event.kind == "cached":
        say(f"{label}: outputs read from the cache{where}")
    elif event.kind == "error":
        say(f"{label}: failed: {_cause(event.error or Exception())}{where}")


def say(message: str) -> None:
    """One line on standard error, as ``trio-wf: message``."""
    # Messages quote graphs and tasks: one line of bounded length each.
    print(f"trio-wf: {shorten(message)}", file=sys.stderr, flush=True)


def _only_interrupts(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt):
        return True
    # A BaseExceptionGroup (a builtin from Python 3.11 on).
    nested: Sequence[BaseException] = getattr(exc, "exceptions", ())
    return bool(nested) and all(_only_interrupts(inner) for inner in nested)
