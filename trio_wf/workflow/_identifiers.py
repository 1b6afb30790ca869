"""How a node's task is written: its task type, identifier and script argv.

Syntax only, checked when a graph is read: nothing here imports a task, runs a
program or touches the engine (it imports nothing of trio_wf but the `quote`
of its messages), so a graph from elsewhere can be checked without trusting
it.  Running a task of each type is `._tasks`' job.
"""

from __future__ import annotations

import functools
import os
import shlex

from .._util import quote

#: The task types the engine can execute.
SUPPORTED_TASK_TYPES = ("method", "ppfmethod", "ppfport", "class", "script", "graph")
#: Task types of the ewoks format that trio_wf does not execute yet.
UNSUPPORTED_TASK_TYPES = ("notebook", "generated")

_EXPECTED = "'package.module.function' or 'path/file.py::function'"
_CACHED_LENGTH = 1000


def identifier_problem(identifier: object) -> str | None:
    """Why ``identifier`` cannot name a function, or None if its syntax is fine."""
    # Cached for the identifiers of real graphs only: the cache keeps what it
    # is given, and a hostile graph's megabyte identifiers must not stay.
    if isinstance(identifier, str) and len(identifier) <= _CACHED_LENGTH:
        return _string_identifier_problem(identifier)
    return _identifier_problem(identifier)


@functools.lru_cache(maxsize=1024)  # graphs reuse a few identifiers many times
def _string_identifier_problem(identifier: str) -> str | None:
    return _identifier_problem(identifier)


def _identifier_problem(identifier: object) -> str | None:
    if not isinstance(identifier, str) or not identifier:
        return f"task_identifier must be {_EXPECTED}, got {quote(identifier)}"
    if "::" in identifier:
        path, _, name = identifier.rpartition("::")
        if not path or not name.isidentifier():
            return f"task_identifier must be {_EXPECTED}, got {quote(identifier)}"
        return None
    parts = identifier.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return f"task_identifier must be {_EXPECTED}, got {quote(identifier)}"
    return None


def is_short_name(identifier: object) -> bool:
    """Whether a ``class`` node's identifier is a name ewokscore may have
    registered a task class under, rather than where to import it from: any
    name without a ``.``, a ``/`` or ``::`` (see `._registered`)."""
    return (
        isinstance(identifier, str)
        and bool(identifier.strip())
        and not any(mark in identifier for mark in (".", "/", "::"))
    )


def absolute_identifier(identifier: str, base_dir: str | None) -> str:
    """Make the path of a ``file.py::function`` identifier absolute.

    Relative paths are relative to the graph file's directory when the graph was
    loaded from a file, else to the current directory.
    """
    if "::" not in identifier:
        return identifier
    path, _, name = identifier.rpartition("::")
    path = os.path.join(base_dir or os.getcwd(), os.path.expanduser(path))
    return f"{os.path.normpath(path)}::{name}"


def script_argv(identifier: object, base_dir: str | None) -> tuple[str, ...] | str:
    """The argv a ``script`` node's ``task_identifier`` names, or why it cannot.

    A list is the argv itself.  A string whose first word names a ``.py`` or
    ``.sh`` file, or contains a ``/``, is a script path, relative to the
    graph's directory, and the other words its arguments.  Any other string
    is split like a shell would (``shlex.split``), but never run by one.
    Which interpreter runs a script file is decided when it runs
    (`._scripts.program`): the file may not exist yet.
    """
    if isinstance(identifier, list) and identifier:
        if all(isinstance(part, str) for part in identifier):
            return tuple(identifier)
    elif isinstance(identifier, str) and identifier.strip():
        first, _, rest = identifier.strip().partition(" ")
        if first.endswith((".py", ".sh")) or "/" in first:
            path = os.path.normpath(
                os.path.join(base_dir or os.getcwd(), os.path.expanduser(first))
            )
            return (path, *shlex.split(rest))
        try:
            return tuple(shlex.split(identifier))
        except ValueError as exc:
            return f"script task_identifier {quote(identifier)} cannot be split: {exc}"
    return (
        f"a script task_identifier must be an argv list of strings or a command "
        f"string, got {quote(identifier)}"
    )
