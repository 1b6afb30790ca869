"""The ``trio`` engine of ewoks: ``ewoks execute graph.json --engine trio``.

Registered under the ``ewoks.engines`` entry point group, so ewoks finds it by
name.  ewoks hands an engine a graph its own loader has read (an ewokscore
``TaskGraph``, sub-graphs flattened, default error links added); this engine
writes it out as a dict, loads that as trio_wf does any graph, and runs it
with `execute_graph`.  ewoksppf's and ewoksdask's option spellings are mapped
to trio_wf's where they mean the same, and refused with the reason otherwise
(`engine_options`; ewoksdask's go on to `execute_graph`, which maps them).
This module imports ewokscore: only ewoks loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ewokscore import load_graph as ewoks_load_graph
from ewokscore.engine_interface import WorkflowEngine

from ._execute import ExecuteOptions, execute_graph
from ._load import load_graph
from ._schedulers import START_METHODS

#: Engine options passed on to `execute_graph` as they are.
_OURS = (
    "worker_type",
    "max_workers",
    "timeout",
    "raise_on_error",
    "max_iterations",
    "allow_scripts",
    "output_tasks",
    "pool_type",
    # ewoksdask's, which execute_graph maps itself (a Dask address included).
    "scheduler",
    "scheduler_options",
)


class TrioWorkflowEngine(WorkflowEngine):  # type: ignore[misc]
    """ewokscore's ``WorkflowEngine`` interface, on trio_wf's workflow engine."""

    def execute_graph(
        self,
        graph: Any,
        *,
        inputs: list[dict[str, Any]] | None = None,
        load_options: dict[str, Any] | None = None,
        varinfo: dict[str, Any] | None = None,
        execinfo: Any = None,
        task_options: dict[str, Any] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        merge_outputs: bool | None = True,
        **execute_options: Any,
    ) -> dict[Any, Any]:
        """Run ``graph`` (a ``TaskGraph``, or what ewokscore's ``load_graph``
        reads) on trio_wf; the options are in the "Using trio_wf with ewoks" docs.
        """
        taskgraph = ewoks_load_graph(graph, **(load_options or {}))
        trusted = execute_options.pop("trusted", True)
        allowed_tasks = execute_options.pop("allowed_tasks", None)
        options = engine_options(execute_options)
        loaded = load_graph(
            taskgraph.dump(),
            trusted=bool(trusted),
            inputs=inputs,
            allowed_tasks=allowed_tasks,
        )
        options["varinfo"] = varinfo
        options["execinfo"] = execinfo
        options["task_options"] = task_options
        options["outputs"] = outputs
        options["merge_outputs"] = True if merge_outputs is None else merge_outputs
        return execute_graph(loaded, **options)


def engine_options(given: Mapping[str, Any]) -> ExecuteOptions:
    """Translate ewoksppf's engine options into ours.

    ewoksdask's ``scheduler`` and ``scheduler_options`` pass through as they
    are: `execute_graph` maps them (a Dask address or ``"cluster"`` included).

    Raises:
        ValueError: an option has no trio_wf equivalent (the message says why).
    """
    given = dict(given)
    options: dict[str, Any] = {key: given.pop(key) for key in _OURS if key in given}
    # ewoksppf: context is the start method of its process pool, given alone
    # or in pool_options, and so is max_workers.
    pool_options = dict(given.pop("pool_options", None) or {})
    context = given.pop("context", pool_options.pop("context", None))
    if "max_workers" in pool_options:
        options.setdefault("max_workers", pool_options.pop("max_workers"))
    if pool_options:
        _refuse(f"pool_options {sorted(pool_options)}", "only context and max_workers")
    if context is not None:
        if context not in START_METHODS:
            _refuse(f"context={context!r}", f"start methods are {START_METHODS}")
        if options.pop("pool_type", "process") != "process":
            _refuse(f"context={context!r}", "it is the start method of processes")
        options["worker_type"] = context
    if given.pop("scaling_workers", False):
        _refuse(
            "scaling_workers=True",
            "trio_wf reuses its workers (as scaling_workers=False does); a new "
            "process per task has no equivalent",
        )
    if given:
        accepted = sorted(
            {
                *_OURS,
                "trusted",
                "allowed_tasks",
                "context",
                "pool_options",
                "scaling_workers",
            }
        )
        msg = (
            f"engine options {sorted(given)} have no trio_wf equivalent; the "
            f"trio engine accepts {accepted}"
        )
        raise ValueError(msg)
    return options  # type: ignore[return-value]


def _refuse(option: str, reason: str) -> None:
    msg = f"engine option {option} has no trio_wf equivalent: {reason}"
    raise ValueError(msg)
