"""Task types: how a node's inputs become a call in a worker, and its result outputs.

``method`` calls ``function(*positional, **keyword)`` and outputs
``{"return_value": result}``; ``ppfmethod`` calls ``function(**inputs)`` (with the
``_ppfdict`` input unpacked into them) and outputs ``{"_ppfdict": inputs updated
with the returned dict}``; ``ppfport`` is the identity on ``_ppfdict``; ``class``
runs a task class (trio_wf's protocol, or an ewokscore ``Task``: see
`run_class_node`) and outputs what it set; ``script``
runs a program from the parent (see ``_scripts``).  Functions and classes are
imported in the worker, never in the parent (unless the graph is trusted and
`load_graph` checks its identifiers).  ``graph`` nodes never get here: they are
flattened on load.  With ewoks settings (see ``_ewoks``), every task type but
``script`` runs as ewokscore runs it.

This is the one place that knows what each task type does: `TaskRunner` runs
one, `resolve_here` imports one for a trusted load.  How a task is written (its
type and identifier) is checked when the graph is read, by `._identifiers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import trio

import trio_wf
from _trio_wf_worker._ewoks_tasks import plain_values, run_class_node, run_ewoks_node
from _trio_wf_worker._tasks import check_task_class, load_task, run_task

from .._util import quote, quote_items
from ._backends import reports_start
from ._errors import TaskInputError
from ._ewoks import EWOKS_TASK_TYPES, EwoksSettings, node_attrs
from ._graph import InputName, Node, NodeId
from ._scripts import run_script

PPFDICT = "_ppfdict"

#: What running a node's task gives: its outputs, the pid of the worker that
#: ran it (None if unknown), and, where the backend cannot tell when a task
#: reached its worker, the wall-clock ``(began, ended)`` of its run there, as
#: the worker measured it (None otherwise).
Ran = tuple[dict[str, Any], int | None, tuple[float, float] | None]


def resolve_here(node: Node) -> object:
    """Import the task in this process (trusted graphs only), as a worker would."""
    assert node.task_identifier is not None
    if node.task_type == "class":
        task = load_task(node.task_identifier)
        check_task_class(task, node.task_identifier)
        return task
    return run_task(node.task_identifier, (), {}, call=False)


# Pickled by reference: it lives in the trio-free worker package.
EXECUTOR = run_task


def split_method_inputs(
    node: Node, inputs: Mapping[InputName, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional (int names, which must be 0..n-1) and keyword arguments.

    Linear in the number of inputs, whatever the positions: the first gap is
    found among them, never by counting up to the largest.
    """
    positions = sorted(name for name in inputs if isinstance(name, int))
    gap = next((i for i, p in enumerate(positions) if p != i), None)
    if gap is not None:
        msg = (
            f"node {quote(node.id)} has positional inputs {quote_items(positions)} "
            f"but not "
            f"{gap}: positional inputs must be numbered from 0 without gaps"
        )
        raise TaskInputError(msg)
    args = tuple(inputs[position] for position in positions)
    kwargs = {name: value for name, value in inputs.items() if isinstance(name, str)}
    return args, kwargs


def keyword_inputs(node: Node, inputs: Mapping[InputName, Any]) -> dict[str, Any]:
    """The inputs of a task that takes keyword inputs only."""
    positional = [name for name in inputs if isinstance(name, int)]
    if positional:
        msg = (
            f"node {quote(node.id)} ({node.task_type}) got positional inputs "
            f"{quote_items(positional)}: its task takes keyword inputs only"
        )
        raise TaskInputError(msg)
    return dict(inputs)  # type: ignore[arg-type]


def ppf_inputs(node: Node, inputs: Mapping[InputName, Any]) -> dict[str, Any]:
    """All inputs as keywords, with the ``_ppfdict`` input unpacked into them."""
    kwargs = keyword_inputs(node, inputs)
    ppfdict = kwargs.pop(PPFDICT, None)
    if ppfdict:
        if not isinstance(ppfdict, Mapping):
            msg = (
                f"node {quote(node.id)}: input {PPFDICT!r} must be a dict, "
                f"got {type(ppfdict).__name__}"
            )
            raise TaskInputError(msg)
        kwargs.update(ppfdict)
    return kwargs


class TaskRunner:
    """Runs the task of a node on a backend: the walker's one way out."""

    def __init__(
        self,
        backend: trio_wf.SupportsRunSync,
        limiter: trio.CapacityLimiter | None,
        *,
        allow_scripts: bool = False,
        ewoks: EwoksSettings | None = None,
    ) -> None:
        self.backend = backend
        self.limiter = limiter
        self.allow_scripts = allow_scripts
        self.ewoks = ewoks
        self._settings = None if ewoks is None else ewoks.for_worker()
        #: With ``output_tasks``: the ewokscore task each node last executed.
        self.tasks: dict[NodeId, Any] = {}
        self._reports_start = reports_start(backend)

    async def run(
        self,
        node: Node,
        inputs: Mapping[InputName, Any],
        on_start: Callable[[int | None], object],
    ) -> Ran:
        """Run ``node``'s task; return its outputs, the worker's pid, its span.

        ``on_start`` is called when the task reaches its worker, with the
        worker's pid (``None`` for tasks that run in this process).  A backend
        that cannot tell (a Dask cluster, a backend of the caller's) is
        considered to have reached its worker when the task is handed to it.
        Cancellation kills the worker running the task.
        """
        if node.task_type == "class" or (
            self.ewoks is not None and node.task_type in EWOKS_TASK_TYPES
        ):
            return await self._run_ewoks(node, inputs, on_start)
        if node.task_type == "ppfport":
            await trio.lowlevel.checkpoint()
            on_start(None)
            return {PPFDICT: ppf_inputs(node, inputs)}, None, None
        assert node.task_identifier is not None  # checked on load
        if node.task_type == "script":
            assert self.allow_scripts  # checked before the run
            if self.ewoks is not None:
                inputs = plain_values(inputs)
            return await run_script(node, inputs, self.limiter, on_start), None, None
        # method: f(*positional, **keywords); ppfmethod: f(**all inputs).
        if node.task_type == "method":
            args, kwargs = split_method_inputs(node, inputs)
        else:
            args, kwargs = (), ppf_inputs(node, inputs)
        pid, result, span = await self._call(
            on_start, EXECUTOR, node.task_identifier, args, kwargs
        )
        if self._reports_start:
            span = None  # the parent saw the task start: its own times hold
        if node.task_type == "method":
            return {"return_value": result}, pid, span
        if not isinstance(result, Mapping):
            msg = (
                f"ppfmethod task {quote(node.task_identifier)} of node "
                f"{quote(node.id)} must return a dict, got {type(result).__name__}"
            )
            raise TypeError(msg)
        return {PPFDICT: {**kwargs, **result}}, pid, span

    async def _call(self, on_start: Callable[[int | None], object], *job: Any) -> Any:
        """``job`` on the backend, killed on cancellation, with ``on_start``
        called when it reaches its worker (or now, if the backend cannot say)."""
        if self._reports_start:
            return await self.backend.run_sync(  # type: ignore[call-arg]
                *job, kill_on_cancel=True, limiter=self.limiter, on_start=on_start
            )
        on_start(None)
        return await self.backend.run_sync(
            *job, kill_on_cancel=True, limiter=self.limiter
        )

    async def _run_ewoks(
        self,
        node: Node,
        inputs: Mapping[InputName, Any],
        on_start: Callable[[int | None], object],
    ) -> Ran:
        """A class node (the worker tells an ewokscore Task from trio_wf's
        protocol), or any node of a run with ewoks settings."""
        attrs = node_attrs(node)
        if node.task_type == "class":
            assert node.task_identifier is not None  # checked on load
            pid, outputs, task, span = await self._call(
                on_start,
                run_class_node,
                node.task_identifier,
                dict(inputs),
                node.id,
                attrs,
                self._settings,
            )
        else:
            pid, outputs, task, span = await self._call(
                on_start, run_ewoks_node, node.id, attrs, dict(inputs), self._settings
            )
        if task is not None:
            self.tasks[node.id] = task
        return outputs, pid, None if self._reports_start else span
