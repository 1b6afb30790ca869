"""The task allow-list: which task identifiers a graph may name.

Matching is done on the identifier strings alone, so checking a graph imports
nothing.  The ``trio_wf.tasks`` entry points are read from the installed
packages' metadata, which does not import them either.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Collection, Iterable
from importlib import metadata

from .._util import quote
from ._errors import GraphValidationError
from ._graph import Graph, Node

#: The entry-point group whose objects every allow-list accepts.
ENTRY_POINT_GROUP = "trio_wf.tasks"

AllowedTasks = Collection[str]


def check_allowed(graph: Graph, allowed_tasks: AllowedTasks | None) -> None:
    """Raise `GraphValidationError` for the first node whose task is not allowed.

    ``None`` allows everything.  Otherwise a node's ``task_identifier`` must
    match one of the patterns or a ``trio_wf.tasks`` entry point.
    """
    check_allowed_nodes(graph.nodes.values(), allowed_tasks)


def check_allowed_nodes(
    nodes: Iterable[Node], allowed_tasks: AllowedTasks | None
) -> None:
    """`check_allowed` for nodes not yet made into a `Graph`."""
    if allowed_tasks is None:
        return
    checked: object = allowed_tasks  # callers may pass anything
    if isinstance(checked, (str, bytes)) or not all(
        isinstance(pattern, str) for pattern in allowed_tasks
    ):
        msg = (
            f"allowed_tasks must be a collection of identifier patterns (str), "
            f"got {quote(allowed_tasks)}"
        )
        raise TypeError(msg)
    matcher = _Matcher(allowed_tasks)
    entry_points: _Matcher | None = None
    for node in nodes:
        identifier = node.task_identifier
        if identifier is None or matcher.matches(identifier):
            continue
        if entry_points is None:  # read lazily: a scan of every installed package
            entry_points = _Matcher(registered_patterns())
        if entry_points.matches(identifier):
            continue
        msg = (
            f"node {quote(node.id)}: task_identifier {quote(identifier)} is not "
            f"allowed: it matches neither allowed_tasks nor a "
            f"{ENTRY_POINT_GROUP!r} entry point"
        )
        raise GraphValidationError(msg, node_id=node.id)


def registered_patterns() -> list[str]:
    """The identifiers the ``trio_wf.tasks`` entry points register.

    ``name = "pkg.mod:func"`` registers ``pkg.mod.func``; ``name = "pkg.mod"``
    registers every task of that module and of the modules under it.
    """
    patterns = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        module, _, attribute = entry_point.value.partition(":")
        module, attribute = module.strip(), attribute.strip()
        patterns.append(f"{module}.{attribute}" if attribute else f"{module}.")
    return patterns


class _Matcher:
    """Exact identifiers, prefixes (ending in ``.``, ``::`` or ``/``) and globs."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.exact: set[str] = set()
        prefixes: list[str] = []
        self.globs: list[str] = []
        for pattern in patterns:
            if any(char in pattern for char in "*?["):
                self.globs.append(pattern)
            elif pattern.endswith((".", "::", "/", os.sep)):
                prefixes.append(pattern)
            elif pattern:
                self.exact.add(pattern)
        self.prefixes = tuple(prefixes)

    def matches(self, identifier: str) -> bool:
        if identifier in self.exact:
            return True
        if self.prefixes and identifier.startswith(self.prefixes):
            return True
        # fnmatchcase: the same answer on every platform.
        return any(fnmatch.fnmatchcase(identifier, glob) for glob in self.globs)
