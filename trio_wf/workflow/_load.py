"""`load_graph`: read a graph (dict, JSON, YAML), validate it, analyse it.

A graph file is code: loading an untrusted graph (the default) checks its
structure and the syntax of its task identifiers, and imports nothing; the
allow-list is checked before a trusted load imports anything.  Reading and the
limits on size and depth are `._read`'s job.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._util import quote
from ._allow import AllowedTasks, check_allowed, check_allowed_nodes
from ._analysis import analyse
from ._errors import GraphValidationError
from ._flatten import Budget, parse_graph
from ._graph import Graph, InputName, Link, Node
from ._read import FileReader, measure, read_source
from ._registered import resolve_short_names
from ._selectors import apply_inputs
from ._serialized import decoded, pickling_serializer, refusal
from ._starts import analyse_inferring_starts, has_start_node, required_input_names
from ._tasks import resolve_here

GraphSource = Graph | Mapping[str, Any] | str | os.PathLike[str]


def load_graph(
    source: GraphSource,
    *,
    trusted: bool = False,
    inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
    allowed_tasks: AllowedTasks | None = None,
) -> Graph:
    """Load, validate and analyse an ewoks workflow graph.

    Args:
        source: a `Graph` (returned as is, with ``inputs`` applied); a dict in
            ewoks node-link form (never modified); a string whose first
            character after whitespace is ``{``, parsed as JSON; or the path
            (any other string, or a ``pathlib.Path``) of a ``.json``, ``.yml``
            or ``.yaml`` file (another extension is tried as JSON, then YAML).
        trusted: import every task identifier now and fail if one cannot be
            imported or is not callable.  Leave it false for graphs from
            elsewhere: nothing is imported until a node runs, in a worker.
        inputs: values overriding the nodes' ``default_inputs``: a list of
            ``{"name", "value"}`` dicts with a selector, ``"id"``, ``"label"``,
            ``"task_identifier"`` (matched as a suffix) or ``"all": true``; items
            without a selector go to the start nodes.  A dict ``{name: value}``
            is short for items without selector.
        allowed_tasks: the task identifiers the graph may name, or ``None``
            (the default) for any.  Each item is an exact identifier
            (``"pkg.mod.func"``), a prefix ending in ``.``, ``::`` or ``/``
            (``"pkg.tasks."``: every task under that module), or an
            ``fnmatch`` glob (``"/srv/tasks/*.py::*"``; file tasks are matched
            by their absolute path).  The objects of the ``trio_wf.tasks``
            entry points are always allowed; an empty collection allows only
            them.  Checked before anything is imported (see :ref:`allow-list`).

    Returns:
        The frozen `Graph`.

    Raises:
        GraphValidationError: the graph is malformed (the message names the node
            or link), over one of the limits listed in :doc:`/failures`, or
            (``trusted=True``) a task cannot
            be imported; its ``__cause__`` is then the `ImportError`; or a
            task is not in ``allowed_tasks``.
        TypeError: ``allowed_tasks`` is not a collection of strings.
        ValueError: ``inputs`` selects a node that does not exist.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if isinstance(source, Graph):
        graph = source
    else:
        reader = FileReader()
        document, base_dir, values = read_source(source, reader)
        with _collector_paused():
            nodes, links, fields = _parse(
                (document, base_dir, values), reader, trusted, allowed_tasks
            )
            nodes = resolve_short_names(nodes, trusted)
            starts = has_start_node(nodes, links)
            analysis = analyse(nodes, links) if starts else None
        if analysis is None:
            # Imports the class tasks (trusted graphs only): allowed first.
            check_allowed_nodes(nodes, allowed_tasks)
            nodes, analysis = analyse_inferring_starts(
                nodes, links, trusted, _check_importable
            )
        graph = Graph(
            nodes={node.id: node for node in nodes},
            links=tuple(links),
            trusted=False,
            analysis=analysis,
            **fields,
        )
    if inputs is not None:
        graph = apply_inputs(graph, inputs)
    check_allowed(graph, allowed_tasks)
    if trusted and not graph.trusted:
        incoming: dict[Any, list[Link]] = {}
        for link in graph.links:
            incoming.setdefault(link.target, []).append(link)
        # Every import first: a task that cannot be imported is the first problem.
        tasks = {node.id: _check_importable(node) for node in graph.nodes.values()}
        for node in graph.nodes.values():
            task = tasks[node.id]
            if task is not None:
                _check_required_inputs(node, task, incoming.get(node.id, []))
        graph = attrs.evolve(graph, trusted=True)
    return graph


def _parse(
    read: tuple[Any, str | None, int],
    reader: FileReader,
    trusted: bool,
    allowed: AllowedTasks | None,
) -> tuple[list[Node], list[Link], dict[str, Any]]:
    """`parse_graph`, with the values of the graph and sub-graph files that
    ewokscore saved with a pickling serializer decoded (trusted graphs only,
    once the allow-list accepted their tasks)."""
    document, base_dir, values = read
    pickled: list[tuple[str, str]] = []

    def read_file(path: str, decode: bool = False) -> tuple[Any, str, int]:
        sub, sub_dir, count = reader(path)
        what = f"sub-graph file {quote(path)}"
        serializer = pickling_serializer(sub, what)
        if serializer is not None:
            pickled.append((what, serializer))
            if decode:
                sub = decoded(sub, what)
                count = measure(sub, what)
        return sub, sub_dir, count

    serializer = pickling_serializer(document, "the graph")
    if serializer is not None:
        pickled.append(("the graph", serializer))
    parsed = parse_graph(document, base_dir, read_file, Budget(values))
    if not pickled:
        return parsed
    if not trusted:
        raise refusal(*pickled[0])
    # Read as they are, encoded values are plain data: the tasks can be
    # checked before anything is unpickled.
    check_allowed_nodes(parsed[0], allowed)
    if serializer is not None:
        document = decoded(document, "the graph")
        values = measure(document, "the graph")
    decoding = functools.partial(read_file, decode=True)
    return parse_graph(document, base_dir, decoding, Budget(values))


def _check_importable(node: Node) -> object | None:
    if node.task_type in ("ppfport", "script") or node.task_identifier is None:
        return None
    try:
        return resolve_here(node)
    except Exception as exc:
        msg = (
            f"node {quote(node.id)}: cannot import task_identifier "
            f"{quote(node.task_identifier)}: {type(exc).__name__}: {exc}"
        )
        raise GraphValidationError(msg, node_id=node.id) from exc


def _check_required_inputs(node: Node, task: object, links: list[Link]) -> None:
    """Fail if a required input of a method or class task has no possible source.

    Sources are the node's default inputs (``inputs=`` already applied) and the
    inputs its links map.  A ``map_all_data`` link can carry any name, so a node
    fed by one is not checked; nor are ppfmethod tasks (they take any keywords).
    """
    provided: set[InputName] = set(node.default_inputs)
    for link in links:
        if link.map_all_data:
            return
        provided.update(mapping.target_input for mapping in link.data_mapping)
    if node.task_type == "class":
        declared = required_input_names(task) or []
        required = [name for name in declared if name not in provided]
    elif node.task_type == "method" and callable(task):
        required = _required_parameters(task, provided)
    else:
        return
    if required:
        names = ", ".join(repr(name) for name in required)
        msg = (
            f"node {quote(node.id)}: required input(s) {names} of task "
            f"{quote(node.task_identifier)} come from no default input, inputs= entry "
            "or link"
        )
        raise GraphValidationError(msg, node_id=node.id)


def _required_parameters(
    function: Callable[..., Any], provided: set[InputName]
) -> list[str]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: cannot tell
        return []
    missing = []
    for position, parameter in enumerate(parameters):
        if parameter.default is not parameter.empty or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        by_position = parameter.kind is not parameter.KEYWORD_ONLY
        by_name = parameter.kind is not parameter.POSITIONAL_ONLY
        if not (
            (by_position and position in provided)
            or (by_name and parameter.name in provided)
        ):
            missing.append(parameter.name)
    return missing


_paused = 0
_paused_lock = threading.Lock()
_collector_was_enabled = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off, while at least one load runs.

    Tens of thousands of small acyclic records: without this, the collector
    runs full passes over them (half the time of a 10,000-node load).  The
    collector is process-wide, and loads may run in several threads at once
    (`aexecute_graph` loads in one, while Trio's thread goes on): the first
    load in turns it off, the last one out restores it.  It stays off for as
    long as loads run, which the limits on a graph's size bound.
    """
    global _paused, _collector_was_enabled
    with _paused_lock:
        if not _paused:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if not _paused and _collector_was_enabled:
                gc.enable()
