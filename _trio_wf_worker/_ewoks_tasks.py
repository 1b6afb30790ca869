"""ewokscore ``Task`` nodes, run in a worker the way ewokscore's own engines run them.

ewoksppf and ewoksdask do, per node and in the worker::

    task = instantiate_task(node_id, node_attrs, inputs=..., varinfo=..., ...)
    task.execute()
    return task.get_output_transfer_data()

and so does this module, with ewokscore's own code: its ``Task`` checks the
inputs, its ``Variable``\\ s hash them, its persistence stores the outputs
under ``varinfo["root_uri"]`` and skips a task whose outputs are stored.  The
outputs travel as ewokscore's *transfer data* (``Variable`` or ``DataUri``
objects when hashing or persistence is on, plain values otherwise), so the
next node's hashes, and so its file names, come from this node's hashes.

ewokscore is imported only when a node needs it: a ``class`` node whose class
turns out to be a ``Task`` (its module imported ewokscore), or any node of a
run with ewoks settings (`aexecute_graph`'s ``varinfo``, ``task_options`` or
``output_tasks``).
Standard library only otherwise, like the rest of this package.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from ._tasks import check_task_class, is_ewoks_task_class, load_task, run_class_task

#: What the parent sends along with an ewoks node: ``(varinfo, execinfo,
#: task_options, output_task)``, or None when the run has no ewoks settings.
Settings = tuple[Any, Any, Any, bool]


def run_class_node(
    identifier: str,
    inputs: dict[Any, Any],
    node_id: Any,
    node_attrs: dict[str, Any],
    settings: Settings | None,
) -> tuple[int, dict[Any, Any], Any, tuple[float, float]]:
    """Run a ``class`` node: return ``(pid, outputs, task or None, span)``,
    ``span`` as `run_task` gives it.

    An ewokscore ``Task`` subclass runs as ewokscore runs it (see
    `run_ewoks_node`); any other class follows trio_wf's own class protocol
    (`run_class_task`), with plain input values.
    """
    cls = load_task(identifier)
    if is_ewoks_task_class(cls):
        registered = cls.class_registry_name()
        if registered is None:
            msg = (
                f"ewokscore task class {identifier!r} was declared with "
                f"register=False: ewokscore cannot instantiate it by name"
            )
            raise TypeError(msg)
        if registered != identifier:
            # A file task ("/path/file.py::Class") is loaded under a private
            # module name, and registered by ewokscore under that qualname;
            # ewokscore looks classes up by registered name.
            node_attrs = {**node_attrs, "task_identifier": registered}
        return run_ewoks_node(node_id, node_attrs, inputs, settings)
    check_task_class(cls, identifier)
    positional = [name for name in inputs if not isinstance(name, str)]
    if positional:
        msg = (
            f"task class {identifier!r} got positional inputs {positional}: "
            f"trio_wf's class protocol takes keyword inputs only"
        )
        raise TypeError(msg)
    if settings is not None:
        inputs = dict(plain_values(inputs))
    began = time.time()
    pid, outputs = run_class_task(identifier, inputs)
    return pid, outputs, None, (began, time.time())


def run_ewoks_node(
    node_id: Any,
    node_attrs: dict[str, Any],
    inputs: dict[Any, Any],
    settings: Settings | None,
) -> tuple[int, dict[Any, Any], Any, tuple[float, float]]:
    """Instantiate and execute the node's ewokscore task; return
    ``(pid, output transfer data, the task if asked for else None, span)``,
    ``span`` as `run_task` gives it.

    ``inputs`` are the node's default inputs updated with what its links
    carried (transfer data).  A failed task raises its own exception, not
    ewokscore's ``TaskExecutionError`` wrapper: trio_wf names the node itself.
    """
    from ewokscore.inittask import instantiate_task

    varinfo, execinfo, task_options, output_task = settings or (None, None, None, False)
    began = time.time()
    task = instantiate_task(
        node_id,
        node_attrs,
        inputs=inputs,
        varinfo=varinfo,
        execinfo=execinfo,
        task_options=task_options,
    )
    task.execute(raise_on_error=False)
    if task.failed:
        raise task.exception
    outputs = task.get_output_transfer_data()
    span = (began, time.time())
    if output_task:
        _make_tasks_picklable()
        return os.getpid(), outputs, task, span
    return os.getpid(), outputs, None, span


def plain_values(values: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """``values`` with ewokscore transfer data (``Variable``, ``DataUri``...)
    replaced by the values they hold (read from their files if persisted)."""
    if "ewokscore.variable" not in sys.modules:  # none can be there
        return values
    from ewokscore.hashing import HasUhash, UniversalHash
    from ewokscore.persistence.proxy import DataProxy
    from ewokscore.variable import value_from_transfer

    kinds = (HasUhash, UniversalHash, DataProxy)
    if not any(isinstance(value, kinds) for value in values.values()):
        return values
    return {name: value_from_transfer(value) for name, value in values.items()}


_picklable = False


def _make_tasks_picklable() -> None:
    """Let an executed ``Task`` travel back to the parent (``output_tasks``).

    A task's ``inputs``/``outputs`` namespaces forward every attribute lookup
    to their container, ``__setstate__`` included, so unpickling one recurses
    forever; rebuilding them from their container is all they need.
    """
    global _picklable
    if _picklable:
        return
    import copyreg

    from ewokscore import variable

    for cls in (
        variable.ReadOnlyVariableContainerNamespace,
        variable.VariableContainerNamespace,
        variable.VariableContainerMissingNamespace,
    ):
        copyreg.pickle(cls, _namespace_reducer(cls))
    _picklable = True


def _namespace_reducer(cls: type) -> Any:
    def reduce(namespace: Any) -> tuple[Any, ...]:
        return cls, (namespace._container,)

    return reduce
