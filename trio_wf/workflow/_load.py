"""`load_graph`: read a graph (dict, JSON, YAML), validate it, analyse it.

A graph file is code: loading an untrusted graph (the default) checks its
structure and the syntax of its task identifiers, and imports nothing.  Text is
capped in size and nesting depth before and after parsing.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ._allow import AllowedTasks, check_allowed, check_allowed_nodes
from ._analysis import analyse
from ._errors import GraphValidationError
from ._flatten import parse_graph
from ._graph import Graph, InputName, Link, Node
from ._selectors import apply_inputs
from ._starts import analyse_inferring_starts, has_start_node, required_input_names
from ._tasks import resolve_here

#: Largest graph text or file accepted, in bytes.
MAX_GRAPH_BYTES = 32 * 1024 * 1024
#: Deepest nesting of lists and dicts accepted in graph text or files.
MAX_GRAPH_DEPTH = 100

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
            ewoks node-link form (never modified); a string containing ``{``,
            parsed as JSON; or the path of a ``.json``, ``.yml`` or ``.yaml`` file
            (another extension is tried as JSON, then YAML).
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
            or link), too big or too deep, or (``trusted=True``) a task cannot
            be imported; its ``__cause__`` is then the `ImportError`; or a
            task is not in ``allowed_tasks``.
        TypeError: ``allowed_tasks`` is not a collection of strings.
        ValueError: ``inputs`` selects a node that does not exist.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if isinstance(source, Graph):
        graph = source
    else:
        document, base_dir = _read(source)
        # Tens of thousands of small acyclic records: without this, the cyclic
        # garbage collector runs full passes over them (half the time of a
        # 10,000-node load).  No user code runs in between.
        collect = gc.isenabled()
        gc.disable()
        try:
            nodes, links, fields = parse_graph(document, base_dir, _read_file)
            starts = has_start_node(nodes, links)
            analysis = analyse(nodes, links) if starts else None
        finally:
            if collect:
                gc.enable()
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


def _check_importable(node: Node) -> object | None:
    if node.task_type in ("ppfport", "script") or node.task_identifier is None:
        return None
    try:
        return resolve_here(node)
    except Exception as exc:
        msg = (
            f"node {node.id!r}: cannot import task_identifier "
            f"{node.task_identifier!r}: {type(exc).__name__}: {exc}"
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
            f"node {node.id!r}: required input(s) {names} of task "
            f"{node.task_identifier!r} come from no default input, inputs= entry "
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


def _read_file(path: str) -> tuple[Any, str]:
    """A sub-graph file's document and directory."""
    document, base_dir = _read(path)
    assert base_dir is not None
    return document, base_dir


def _read(source: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[Any, str | None]:
    """The graph document and the directory relative task paths start from."""
    if isinstance(source, Mapping):
        return source, None
    if isinstance(source, str) and "{" in source:
        return _parse_text(source, "json", "graph JSON string"), None
    checked: object = source  # callers may pass anything
    if not isinstance(checked, (str, os.PathLike)):
        msg = (
            f"a graph must be a dict, a JSON string or a file path, "
            f"got {type(checked).__name__}"
        )
        raise TypeError(msg)
    path = os.fspath(source)
    size = os.stat(path).st_size  # FileNotFoundError names the path
    if size > MAX_GRAPH_BYTES:
        msg = f"graph file {path!r} is {size} bytes, more than {MAX_GRAPH_BYTES}"
        raise GraphValidationError(msg)
    with open(path, "rb") as file:
        data = file.read(MAX_GRAPH_BYTES + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"graph file {path!r} is not UTF-8 text: {exc}"
        raise GraphValidationError(msg) from exc
    base_dir = os.path.dirname(os.path.abspath(path))
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        return _parse_text(text, "json", f"graph file {path!r}"), base_dir
    if extension in (".yml", ".yaml"):
        return _parse_text(text, "yaml", f"graph file {path!r}"), base_dir
    try:
        return _parse_text(text, "json", f"graph file {path!r}"), base_dir
    except GraphValidationError:
        return _parse_text(text, "yaml", f"graph file {path!r}"), base_dir


def _parse_text(text: str, kind: str, what: str) -> Any:
    if len(text) > MAX_GRAPH_BYTES:
        msg = f"{what} is longer than {MAX_GRAPH_BYTES} characters"
        raise GraphValidationError(msg)
    try:
        if kind == "json":
            document = json.loads(text)
        else:
            # Imported here: JSON users need not pay for it.  safe_load builds
            # plain data only, never objects named by tags.
            yaml: Any = importlib.import_module("yaml")
            document = yaml.safe_load(text)
    except RecursionError:
        document = None
        too_deep = True
    except ValueError as exc:  # json.JSONDecodeError
        msg = f"{what} is not valid JSON: {exc}"
        raise GraphValidationError(msg) from exc
    except Exception as exc:  # yaml.YAMLError
        msg = f"{what} is not valid YAML: {exc}"
        raise GraphValidationError(msg) from exc
    else:
        too_deep = _depth_exceeds(document, MAX_GRAPH_DEPTH)
    if too_deep:
        msg = f"{what} is nested more than {MAX_GRAPH_DEPTH} levels deep"
        raise GraphValidationError(msg)
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether lists and dicts nest deeper than ``limit``, without recursion.

    YAML anchors can share one container many times; each container is visited
    once, so an "alias bomb" costs its size, not its expansion.
    """
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(document, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        if depth > limit:
            return True
        todo.extend((child, depth + 1) for child in children)
    return False
