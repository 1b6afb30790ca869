"""``class`` tasks named by a short name that ewokscore registered.

ewokscore registers every ``Task`` subclass when its module is imported, under
its qualified name or the ``registry_name`` it declares, and finds a class by
that name or by its last part (``"SumTask"`` for ``pkg.tasks.SumTask``, if
only one registered class ends so).  What a short name means thus depends on
the classes the process has imported: only a trusted graph may use one.  It
is resolved when the graph is loaded, in this process, from ewokscore's
registry alone (nothing is imported but ewokscore), and the node then names
the class by its qualified name, which the allow-list checks and the worker
imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .._util import quote, quote_items
from ._errors import GraphValidationError
from ._graph import Node
from ._identifiers import is_short_name


def resolve_short_names(nodes: Iterable[Node], trusted: bool) -> list[Node]:
    """``nodes``, each ``class`` node named by a short name renamed to its
    class's qualified name.

    Raises:
        GraphValidationError: a short name in an untrusted graph, or one no
            registered class answers to.
    """
    nodes = list(nodes)
    short = [
        i
        for i, node in enumerate(nodes)
        if node.task_type == "class" and is_short_name(node.task_identifier)
    ]
    if not short:
        return nodes
    if not trusted:
        node = nodes[short[0]]
        msg = (
            f"{_named(node)} is a short name of an ewokscore task class, "
            f"which only the classes imported so far can answer to: load the "
            f"graph trusted (load_graph(..., trusted=True), trio-wf run "
            f"--trusted) to look it up in ewokscore's registry, or name the "
            f"class in full ('package.module.Class')"
        )
        raise GraphValidationError(msg, node_id=node.id)
    task = _task_class(nodes[short[0]])
    for i in short:
        node = nodes[i]
        assert node.task_identifier is not None
        cls = _registered(task, node)
        # Where ewokscore's own qualname() says the class is.
        nodes[i] = attrs.evolve(
            node, task_identifier=f"{cls.__module__}.{cls.__name__}"
        )
    return nodes


def _named(node: Node) -> str:
    return f"node {quote(node.id)}: task_identifier {quote(node.task_identifier)}"


def _task_class(node: Node) -> Any:
    try:
        from ewokscore import Task
    except ImportError as exc:
        msg = (
            f"{_named(node)} is a short name of an ewokscore task class; "
            f"resolving it needs ewokscore: pip install 'trio-wf[ewoks]'"
        )
        raise GraphValidationError(msg, node_id=node.id) from exc
    return Task


def _registered(task: Any, node: Node) -> Any:
    """The class registered under ``node``'s short name, as ewokscore's
    ``Task.get_subclass`` finds it, without its import of last resort."""
    name = node.task_identifier
    assert name is not None
    names = task.get_subclass_names()
    candidates = (
        [name] if name in names else [n for n in names if n.endswith(f".{name}")]
    )
    if len(candidates) == 1:
        return task.get_subclass(candidates[0])
    if candidates:
        found = (
            f"several registered classes end with it: {quote_items(sorted(candidates))}"
        )
    else:
        found = (
            "no registered class has that name (a class is registered when its "
            "module is imported: import it before loading the graph)"
        )
    msg = f"{_named(node)} is a short name, and {found}"
    raise GraphValidationError(msg, node_id=node.id)
