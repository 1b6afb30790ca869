"""The ewoks settings of a run: ewokscore persistence (``varinfo``), ewoks events
(``execinfo``), task options, and the executed ``Task`` objects
(``output_tasks``).

With any of them, every ``method``, ``ppfmethod``, ``ppfport`` and ``class``
node runs as ewokscore's engines run it, in a worker (see
`_trio_wf_worker._ewoks_tasks`), so ewokscore's own code hashes the inputs,
stores the outputs and skips what is stored.  Without them, only ``class``
nodes whose class is an ewokscore ``Task`` touch ewokscore, and nothing here
imports it: ``import trio_wf`` and graphs of other tasks never do.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, final

import attrs

from _trio_wf_worker._ewoks_tasks import Settings

from ._graph import Graph, Node

#: The task types that run as ewokscore tasks when a run has ewoks settings.
EWOKS_TASK_TYPES = ("method", "ppfmethod", "ppfport", "class")


@final
@attrs.frozen
class EwoksSettings:
    """What every ewokscore task of a run is given."""

    varinfo: Mapping[str, Any] | None = None
    task_options: Mapping[str, Any] | None = None
    output_tasks: bool = False
    execinfo: Mapping[str, Any] | None = None

    def for_worker(self) -> Settings:
        """The settings as the worker takes them: plain data only."""
        varinfo = None if self.varinfo is None else dict(self.varinfo)
        options = None if self.task_options is None else dict(self.task_options)
        execinfo = None if self.execinfo is None else dict(self.execinfo)
        return varinfo, execinfo, options, self.output_tasks


def ewoks_settings(
    graph: Graph,
    varinfo: Mapping[str, Any] | None,
    task_options: Mapping[str, Any] | None,
    output_tasks: bool,
    execinfo: Mapping[str, Any] | str | bool | None = None,
) -> EwoksSettings | None:
    """The run's ewoks settings, or None if it has none (no ewokscore needed).

    A ``varinfo`` whose only entries are a ``scheme`` and an empty
    ``root_uri`` (what ``ewoks execute`` passes without ``--data-root-uri``)
    asks for nothing.  ``execinfo`` is ewokscore's: a dict, a job id, or
    true for events with no handler but the ``ewokscore.events`` logger.

    Raises:
        TypeError: ``varinfo``, ``task_options`` or ``execinfo`` is not a
            dict, or the ``root_uri`` not a path.
        ImportError: ewokscore is not installed.
    """
    varinfo = _checked_varinfo(varinfo)
    checked: object = task_options
    if checked is not None and not isinstance(checked, Mapping):
        msg = f"task_options must be a dict, got {type(checked).__name__}"
        raise TypeError(msg)
    events = _checked_execinfo(execinfo)
    per_node = any("varinfo" in node.extra for node in graph.nodes.values())
    if (
        varinfo is None
        and events is None
        and not task_options
        and not output_tasks
        and not per_node
    ):
        return None
    if importlib.util.find_spec("ewokscore") is None:
        msg = (
            "varinfo, execinfo, task_options and output_tasks run the graph's "
            "tasks with "
            "ewokscore, which is not installed: pip install 'trio-wf[ewoks]'"
        )
        raise ImportError(msg, name="ewokscore")
    return EwoksSettings(
        varinfo=varinfo,
        task_options=task_options or None,
        output_tasks=bool(output_tasks),
        execinfo=events,
    )


def _checked_execinfo(
    execinfo: Mapping[str, Any] | str | bool | None,
) -> dict[str, Any] | None:
    if execinfo is None or execinfo is False:
        return None
    if execinfo is True:
        return {}
    if isinstance(execinfo, str):
        return {"job_id": execinfo}
    checked: object = execinfo  # callers may pass anything
    if not isinstance(checked, Mapping):
        msg = f"execinfo must be a dict, a job id or a bool, got {execinfo!r}"
        raise TypeError(msg)
    return dict(execinfo)


@contextmanager
def ewoks_events(
    settings: EwoksSettings | None, graph: Graph
) -> Iterator[EwoksSettings | None]:
    """Send ewoks' job and workflow start and end events around a run, as
    ewokscore's engines do; the settings it yields carry the workflow's
    ``execinfo``, with which each task sends its node events from its worker.

    An exception leaving the block is the end events' error.
    """
    if settings is None or settings.execinfo is None:
        yield settings
        return
    from ewokscore import events

    workflow = graph.id if graph.id is not None else "notspecified"
    with (
        events.job_context(settings.execinfo, engine="trio") as execinfo,
        events.workflow_context(execinfo, workflow=str(workflow)) as execinfo,
    ):
        yield attrs.evolve(settings, execinfo=execinfo)


def _checked_varinfo(varinfo: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``varinfo`` with ``root_uri`` as a str; None if it asks for nothing."""
    if varinfo is None:
        return None
    checked: object = varinfo  # callers may pass anything
    if not isinstance(checked, Mapping):
        msg = f"varinfo must be a dict, got {type(checked).__name__}"
        raise TypeError(msg)
    result = dict(varinfo)
    root_uri = result.get("root_uri")
    if root_uri is not None and not isinstance(root_uri, (str, os.PathLike)):
        msg = f"varinfo['root_uri'] must be a directory path, got {root_uri!r}"
        raise TypeError(msg)
    if root_uri:
        result["root_uri"] = os.fspath(root_uri)
    if not any(value for key, value in result.items() if key != "scheme"):
        return None
    return result


def node_attrs(node: Node) -> dict[str, Any]:
    """The node attributes ewokscore's ``instantiate_task`` reads.

    Default inputs are left out: the walker merges them with what the links
    carry (``inputs=`` overrides included), and sends the result as the
    task's inputs, where ewokscore would merge them itself.
    """
    result: dict[str, Any] = {"id": node.id, "task_type": node.task_type}
    if node.label is not None:
        result["label"] = node.label
    if node.task_type != "ppfport":
        result["task_identifier"] = node.task_identifier
    varinfo = node.extra.get("varinfo")
    if varinfo:
        result["varinfo"] = varinfo
    return result
