"""``trio-wf run GRAPH``: run a workflow graph from the command line.

Exit status: 0 when the run succeeded, 1 when a node failed (one paragraph on
standard error names it), 2 for a bad command line, graph or option, 124 when
``--timeout`` expired (as ``timeout(1)``), 130 after Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import os
import pprint
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import trio

from .._util import QUOTE_LIMIT, quote, shorten
from ._backends import WORKER_TYPES
from ._errors import GraphValidationError, WorkflowExecutionError
from ._events import NodeEvent
from ._execute import MAX_ITERATIONS, aexecute_graph, execute_graph
from ._graph import Graph
from ._load import load_graph

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trio-wf`` command; returns the exit status."""
    parser = _parser()
    options = parser.parse_args(argv)
    try:
        return _run(options)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BaseException as exc:
        # trio.run raises Ctrl+C wrapped in an exception group when it
        # arrives while a nursery is open.
        if _only_interrupts(exc):
            _say("interrupted")
            return EXIT_INTERRUPTED
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-wf",
        description="Run ewoks workflow graphs on trio_wf's worker processes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run a workflow graph and print its results",
        description=(
            "Run the workflow graph in GRAPH (a .json, .yml or .yaml file) and "
            "print the outputs of its end nodes."
        ),
    )
    run.add_argument("graph", metavar="GRAPH", help="the graph file")
    run.add_argument(
        "--inputs",
        metavar="JSON",
        type=_json_inputs,
        help=(
            "override default inputs: a JSON object {name: value} for the start "
            'nodes, or a list of {"name", "value"} items with an optional '
            '"id", "label", "task_identifier" or "all" selector; @FILE reads '
            "the JSON from FILE"
        ),
    )
    run.add_argument(
        "--worker-type",
        choices=WORKER_TYPES,
        help="where tasks run (default: spawn)",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=(
            "run tasks on the Dask cluster whose scheduler is at ADDRESS "
            "(needs trio-wf[dask]; TLS settings come from the Dask config)"
        ),
    )
    run.add_argument(
        "--insecure",
        action="store_true",
        help=(
            "with --scheduler: allow a plain TCP connection to a scheduler that "
            "is not on this machine (anyone on the network could run code)"
        ),
    )
    run.add_argument(
        "--max-workers",
        metavar="N",
        type=_positive_int,
        help="how many tasks run at once (default: one per CPU)",
    )
    run.add_argument(
        "--timeout",
        metavar="S",
        type=_seconds,
        help="stop the run after S seconds, killing running tasks (exit 124)",
    )
    run.add_argument(
        "--max-iterations",
        metavar="N",
        type=_positive_int,
        default=MAX_ITERATIONS,
        help="how many times a node of a loop may run (default: %(default)s)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON object (other values as their repr)",
    )
    run.add_argument(
        "--trusted",
        action="store_true",
        help="import every task before running, to fail early on a bad identifier",
    )
    run.add_argument(
        "--allow-task",
        metavar="PATTERN",
        action="append",
        dest="allowed_tasks",
        help=(
            "run only tasks whose identifier matches PATTERN (shell-style; "
            "repeat for more), or that an installed package registers as a "
            "trio_wf.tasks entry point; the whole graph is checked first"
        ),
    )
    run.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=(
            "keep each successful node's outputs in DIR (yours alone), so that a "
            "re-run executes only what failed or changed"
        ),
    )
    run.add_argument(
        "--allow-scripts",
        action="store_true",
        help="run the graph's script tasks (they run programs: trust the graph)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report each node's start, end and failure on standard error",
    )
    return parser


def _run(options: argparse.Namespace) -> int:
    if not os.path.isfile(options.graph):
        _say(f"error: graph file {quote(options.graph)} does not exist")
        return EXIT_USAGE
    # A Path: a file name is never taken for JSON text, whatever its characters.
    graph: Graph | Path = Path(options.graph)
    inputs = options.inputs
    try:
        if options.trusted:
            # One load, which checks the allow-list before importing anything
            # (a second one, in the run, would come too late), and sees the
            # inputs when it checks that every required input has a source.
            graph = load_graph(
                graph,
                trusted=True,
                inputs=inputs,
                allowed_tasks=options.allowed_tasks,
            )
            inputs = None
        run_options: dict[str, Any] = {
            "inputs": inputs,
            "max_workers": options.max_workers,
            "timeout": options.timeout,
            "max_iterations": options.max_iterations,
            "allow_scripts": options.allow_scripts,
            "allowed_tasks": options.allowed_tasks,
            "cache_dir": options.cache_dir,
            "on_event": _report if options.verbose else None,
        }
        if options.scheduler is None:
            if options.insecure:
                _say("error: --insecure only applies with --scheduler")
                return EXIT_USAGE
            results = execute_graph(
                graph, worker_type=options.worker_type, **run_options
            )
        elif options.worker_type is not None:
            _say("error: pass either --scheduler or --worker-type, not both")
            return EXIT_USAGE
        else:
            results = trio.run(
                _run_on_dask, graph, options.scheduler, options.insecure, run_options
            )
    except WorkflowExecutionError as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except TimeoutError as exc:
        _say(f"error: {exc}")
        return EXIT_TIMEOUT
    except (GraphValidationError, ValueError, TypeError, OSError, ImportError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    try:
        _print_results(results, options.json, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``trio-wf run g.json | head -1``): not an
        # error of ours, and Python must not report it again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _run_on_dask(
    graph: Graph | Path, address: str, insecure: bool, run_options: dict[str, Any]
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


def _report(event: NodeEvent) -> None:
    where = f" (iteration {event.iteration})" if event.iteration > 1 else ""
    # A label comes from the graph: a part of it, the rest of the line kept.
    label = shorten(event.label, QUOTE_LIMIT)
    if event.kind == "start":
        _say(f"{label}: started{where}")
    elif event.kind == "end":
        pid = "" if event.worker_pid is None else f" in process {event.worker_pid}"
        _say(f"{label}: done in {event.duration:.3f} s{pid}{where}")
    elif event.kind == "cached":
        _say(f"{label}: outputs read from the cache{where}")
    else:
        error = event.error
        _say(f"{label}: failed: {type(error).__name__}: {error}{where}")


def _say(message: str) -> None:
    # Messages quote graphs and tasks: one line of bounded length each.
    print(f"trio-wf: {shorten(message)}", file=sys.stderr, flush=True)


def _only_interrupts(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt):
        return True
    # A BaseExceptionGroup (a builtin from Python 3.11 on).
    nested: Sequence[BaseException] = getattr(exc, "exceptions", ())
    return bool(nested) and all(_only_interrupts(inner) for inner in nested)


def _json_inputs(text: str) -> Any:
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            msg = f"cannot read {quote(text[1:])}: {exc.strerror}"
            raise argparse.ArgumentTypeError(msg) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        msg = f"not valid JSON: {exc}"
        raise argparse.ArgumentTypeError(msg) from None
    if not isinstance(value, (dict, list)):
        msg = f"must be a JSON object or list, got {type(value).__name__}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, got {quote(text)}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        msg = f"must be a non-negative number of seconds, got {quote(text)}"
        raise argparse.ArgumentTypeError(msg)
    return value
