"""Reading the GRAPH argument, and the commands that only read a graph.

``trio-wf check GRAPH`` validates it (exit 0 or 2) and ``trio-wf show GRAPH``
draws it (`._picture`); neither runs a task.  ``trio-wf report TRACE`` turns
the trace of a run into a page (`._report`).  GRAPH is a file, or ``-`` for
standard input; a directory, or a document that is not a graph, is refused
with a message in command-line words.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._util import quote
from ._errors import GraphValidationError
from ._graph import Graph
from ._limits import MAX_GRAPH_BYTES
from ._load import load_graph
from ._picture import dot, mermaid, render
from ._read import parse_text
from ._report import ReportError, read_trace, report_html

EXIT_USAGE = 2

_EXTENSIONS = {
    ".mmd": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
}


class UsageError(Exception):
    """A problem with the command line, its graph or its settings: exit 2."""


def read_graph(
    argument: str,
    *,
    trusted: bool = False,
    allowed_tasks: list[str] | None = None,
    inputs: Any = None,
) -> Graph:
    """The graph GRAPH names, loaded and validated once, ``inputs`` applied.

    One load checks the allow-list before a trusted load imports anything,
    and the check that every required input has a source sees the inputs.

    Raises:
        UsageError: GRAPH cannot be read, is not a valid graph, or the inputs
            select no node of it.
    """
    options: dict[str, Any] = {
        "trusted": trusted,
        "allowed_tasks": allowed_tasks,
        "inputs": inputs,
    }
    try:
        if argument == "-":
            return load_graph(_read_stdin(), **options)
        if os.path.isdir(argument):
            msg = f"{quote(argument)} is a directory, not a graph file"
            raise UsageError(msg)
        if not os.path.exists(argument):
            msg = f"graph file {quote(argument)} does not exist"
            raise UsageError(msg)
        # A Path: a file name is never taken for JSON text, whatever its
        # characters.
        return load_graph(Path(argument), **options)
    except (GraphValidationError, OSError, TypeError, ValueError) as exc:
        where = "standard input" if argument == "-" else quote(argument)
        message = str(exc)
        if quote(argument) not in message:
            message = f"{where}: {message}"
        raise UsageError(message) from exc


def _read_stdin() -> Any:
    """The graph document on standard input, JSON or YAML."""
    text = sys.stdin.read(MAX_GRAPH_BYTES + 1)
    try:
        return parse_text(text, "json", "the graph on standard input")
    except GraphValidationError:
        return parse_text(text, "yaml", "the graph on standard input")


def check_command(options: argparse.Namespace) -> int:
    """``trio-wf check``: validate, print what the graph holds, run nothing."""
    graph = read_graph(
        options.graph, trusted=options.trusted, allowed_tasks=options.allowed_tasks
    )
    where = "standard input" if options.graph == "-" else quote(options.graph)
    nodes, links = len(graph.nodes), len(graph.links)
    print(f"{where}: a valid graph of {nodes} node(s) and {links} link(s)")
    return 0


def show_command(options: argparse.Namespace) -> int:
    """``trio-wf show``: the graph as Mermaid or DOT text, or an SVG/PNG file."""
    output_format = options.format
    if output_format is None and options.output is not None:
        extension = os.path.splitext(options.output)[1].lower()
        output_format = _EXTENSIONS.get(extension)
        if output_format is None:
            msg = (
                f"cannot tell the format of {quote(options.output)} from its "
                "extension: "
                f"use {', '.join(_EXTENSIONS)} or --format"
            )
            raise UsageError(msg)
    output_format = output_format or "mermaid"
    if output_format in ("svg", "png") and options.output is None:
        msg = f"--format {output_format} writes a file: give it with -o FILE"
        raise UsageError(msg)
    graph = read_graph(options.graph)
    if output_format == "mermaid":
        data = mermaid(graph).encode()
    elif output_format == "dot":
        data = dot(graph).encode()
    else:
        try:
            data = render(graph, output_format)
        except (FileNotFoundError, RuntimeError) as exc:
            raise UsageError(str(exc)) from exc
    if options.output is None:
        sys.stdout.write(data.decode())
        return 0
    try:
        with open(options.output, "wb") as file:
            file.write(data)
    except OSError as exc:
        msg = f"cannot write {quote(options.output)}: {exc.strerror}"
        raise UsageError(msg) from exc
    return 0


def report_command(options: argparse.Namespace) -> int:
    """``trio-wf report``: a run trace as one self-contained HTML page."""
    output = options.output or os.path.splitext(options.trace)[0] + ".html"
    try:
        page = report_html(read_trace(options.trace))
    except OSError as exc:
        msg = f"cannot read {quote(options.trace)}: {exc.strerror}"
        raise UsageError(msg) from exc
    except ReportError as exc:
        raise UsageError(str(exc)) from exc
    try:
        with open(output, "w", encoding="utf-8") as file:
            file.write(page)
    except OSError as exc:
        msg = f"cannot write {quote(output)}: {exc.strerror}"
        raise UsageError(msg) from exc
    print(f"wrote {output}")
    return 0


def json_inputs(text: str) -> Any:
    """The ``--inputs`` value: JSON text, or ``@FILE`` to read it from FILE."""
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
