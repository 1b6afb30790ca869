"""The ``trio-wf`` command: run, check and draw workflow graphs, report on runs.

``trio-wf run GRAPH`` runs a graph (`._cli_run`); ``trio-wf check GRAPH``
validates one and runs nothing; ``trio-wf show GRAPH`` draws one;
``trio-wf report TRACE`` makes a page of a run's trace (`._cli_graph`).
``python -m trio_wf`` and ``python -m trio_wf.workflow`` are the same command.

Exit status: 0 when the run succeeded (or the graph is valid), 1 when a node
failed (each failure is named on standard error, with where in your code it
was raised), 2 for a bad command line, graph, setting or option, 124 when
``--timeout`` expired (as ``timeout(1)``), 130 after Ctrl+C.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ._backends import WORKER_TYPES
from ._cli_config import (
    ConfigError,
    positive_int,
    read_defaults,
    seconds,
    worker_type,
    workers,
)
from ._cli_graph import (
    EXIT_USAGE,
    UsageError,
    check_command,
    json_inputs,
    report_command,
    show_command,
)
from ._cli_run import EXIT_INTERRUPTED, run_command, say
from ._execute import MAX_ITERATIONS

#: The settings ``[tool.trio_wf]`` and ``TRIO_WF_*`` variables may give, and
#: how their text is read (as on the command line).
SETTINGS = {
    "worker-type": worker_type,
    "workers": workers,
    "timeout": seconds,
    "max-iterations": positive_int,
}


def main(argv: Sequence[str] | None = None) -> int:
    """The ``trio-wf`` command; returns the exit status."""
    parser = _parser()
    options = parser.parse_args(argv)
    try:
        if options.command == "run":
            _importable_cwd()
            _apply_defaults(options)
            return run_command(options)
        if options.command == "check":
            _importable_cwd()
            return check_command(options)
        if options.command == "report":
            return report_command(options)
        return show_command(options)
    except (UsageError, ConfigError) as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    finally:
        if argv is None:  # the command itself, not a test: the process ends now
            # Python's last collections at exit walk every object Dask's import
            # made: 0.2 to 0.5 s, nothing of which needs finalizing.
            gc.freeze()


def _importable_cwd() -> None:
    # As under ``python -m``: a task module next to the graph, in the current
    # directory, can be imported (workers start with this sys.path).  Appended,
    # not prepended, so that a local file cannot shadow an installed module.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def _apply_defaults(options: argparse.Namespace) -> None:
    """Fill the options the command line left out from the settings, then from
    the built-in defaults (an option left out is None: none of them has a
    value None can spell)."""
    for dest, value in read_defaults(SETTINGS).items():
        if getattr(options, dest) is None:
            setattr(options, dest, value)
    if options.max_iterations is None:
        options.max_iterations = MAX_ITERATIONS
    if options.workers == "auto":
        options.workers = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-wf",
        description="Run, check and draw ewoks workflow graphs on trio_wf's workers.",
        epilog=(
            "Defaults for run may be set in the [tool.trio_wf] table of the nearest "
            "pyproject.toml (worker_type, workers, timeout, max_iterations) or as "
            "TRIO_WF_WORKER_TYPE, TRIO_WF_WORKERS, TRIO_WF_TIMEOUT and "
            "TRIO_WF_MAX_ITERATIONS; options that widen trust are taken from the "
            "command line only."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"trio-wf {__version__}",
        help="print the version and exit",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )
    _add_run(commands)
    check = commands.add_parser(
        "check",
        help="validate a graph without running it (exit 0 or 2)",
        description=(
            "Read and validate GRAPH, and run nothing: exit 0 if it is valid, "
            "2 with the problem otherwise."
        ),
    )
    _graph_argument(check)
    _trust_arguments(check, run=False)
    show = commands.add_parser(
        "show",
        help="draw a graph: Mermaid text, or SVG/PNG with Graphviz",
        description=(
            "Print GRAPH as a Mermaid flowchart (GitHub and most Markdown viewers "
            "draw it), as Graphviz DOT, or draw it to an SVG or PNG file with "
            "Graphviz's dot program."
        ),
    )
    _graph_argument(show)
    show.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE instead of standard output; its extension "
        "(.mmd, .dot, .svg, .png) chooses the format",
    )
    show.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "png"),
        help="the format (default: from --output's extension, else mermaid)",
    )
    report = commands.add_parser(
        "report",
        help="make a self-contained HTML report of a run's trace",
        description=(
            "Turn the trace that trio-wf run --trace wrote into one HTML page "
            "that opens offline: the graph with each node's state, a timeline "
            "with one lane per worker, and each node's times and error."
        ),
    )
    report.add_argument(
        "trace", metavar="TRACE", help="the trace file (trio-wf run --trace)"
    )
    report.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the HTML file to write (default: TRACE with the extension .html)",
    )
    return parser


def _graph_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "graph",
        metavar="GRAPH",
        help="the graph file (.json, .yml or .yaml), or - to read it from "
        "standard input",
    )


def _trust_arguments(parser: argparse.ArgumentParser, *, run: bool) -> None:
    parser.add_argument(
        "--trusted",
        action="store_true",
        help="import every task first, to fail early on a bad identifier",
    )
    parser.add_argument(
        "--allow-task",
        metavar="PATTERN",
        action="append",
        dest="allowed_tasks",
        help=(
            "allow only tasks whose identifier matches PATTERN (shell-style; "
            "repeat for more), or that an installed package registers as a "
            "trio_wf.tasks entry point; the whole graph is checked "
            + ("before anything runs" if run else "")
        ).strip(),
    )


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run a workflow graph and print its results",
        description=(
            "Run the workflow graph in GRAPH and print the outputs of its end nodes."
        ),
    )
    _graph_argument(run)
    run.add_argument(
        "--inputs",
        metavar="JSON",
        type=json_inputs,
        help=(
            "override default inputs: a JSON object {name: value} for the start "
            'nodes, or a list of {"name", "value"} items with an optional '
            '"id", "label", "task_identifier" or "all" selector; @FILE reads '
            "the JSON from FILE"
        ),
    )
    run.add_argument(
        "--worker-type",
        type=worker_type,
        metavar="{" + ",".join(WORKER_TYPES) + "}",
        help="where tasks run (default: spawn)",
    )
    run.add_argument(
        "-n",
        "--workers",
        "--max-workers",
        metavar="N",
        type=workers,
        help="how many tasks run at once: a number, or auto for one per CPU "
        "(the default)",
    )
    run.add_argument(
        "--timeout",
        metavar="S",
        type=seconds,
        help="stop the run after S seconds, killing running tasks (exit 124)",
    )
    run.add_argument(
        "--max-iterations",
        metavar="N",
        type=positive_int,
        help=f"how many times a node of a loop may run (default: {MAX_ITERATIONS})",
    )
    run.add_argument(
        "--trace",
        metavar="FILE",
        help="write the run's trace to FILE when it ends: each node's wait for "
        "a worker and its run, per worker (Chrome trace-event JSON: open it in "
        "Perfetto or chrome://tracing, or make a report of it with trio-wf "
        "report)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON object (other values as their repr)",
    )
    _trust_arguments(run, run=True)
    run.add_argument(
        "--allow-scripts",
        action="store_true",
        help="run the graph's script tasks (they run programs: trust the graph)",
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
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report each node's start, end and failure, and failures' full "
        "tracebacks, on standard error",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print the results and errors only: no progress, no summary",
    )
