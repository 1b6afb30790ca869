"""A run trace: every node's wait for a worker and its run, in Chrome's
trace-event format, which Perfetto (ui.perfetto.dev) and ``chrome://tracing``
open.

`TraceRecorder` is an event consumer (an ``on_event`` callback): it keeps the
times of each node's events, and writes them out once the run is over, with
what the run report (``trio-wf report``) draws besides: the graph, and each
node's final status and error.  ``aexecute_graph(..., trace=path)`` and
``trio-wf run --trace path`` use one.

The file is a JSON object (the trace-event "JSON object format"):

* ``traceEvents``: a complete event (``"ph": "X"``) for each run of a node on
  its worker, with ``pid`` the worker's process id and ``tid`` its lane (one
  per task running at once in the process: always 0 for worker processes);
  an async pair (``"b"``/``"e"``, category ``queued``) for each wait for a
  worker, in the parent process; metadata naming processes and lanes.  Times
  are in microseconds from the run's first event.
* ``trio_wf``: the graph (nodes with their label, task and place in the
  drawing; links) and, per node, its status, its runs (when each was queued,
  started and ended, in seconds from the start; on which worker and lane; how
  it ended; its error) and the traceback of its last failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

from ._events import EventCallback, NodeEvent, NodeStatus
from ._graph import Graph, display_id
from ._picture import layers, link_label
from ._tracebacks import format_user_traceback

#: The ``trio_wf.format`` of the traces written here.
TRACE_FORMAT = 1


class TraceRecorder:
    """Keeps a run's node events; `write` turns them into a trace file."""

    def __init__(self) -> None:
        self._origin: float | None = None
        self._runs: dict[str, list[dict[str, Any]]] = {}
        self._errors: dict[str, str] = {}
        self._open: dict[tuple[str, int], dict[str, Any]] = {}

    def __call__(self, event: NodeEvent) -> None:
        """Record one event (the ``on_event`` callback)."""
        node = display_id(event.node_id)
        key = (node, event.iteration)
        if self._origin is None:
            self._origin = event.time
        fresh: dict[str, Any] = {
            "node": node,
            "label": event.label,
            "iteration": event.iteration,
        }
        if event.kind == "queued":
            self._open[key] = {**fresh, "queued": event.time}
        elif event.kind == "start":
            run = self._open.setdefault(key, {**fresh, "queued": event.time})
            run["start"] = event.time
            run["pid"] = os.getpid() if event.worker_pid is None else event.worker_pid
        elif event.kind in ("end", "error", "cached"):
            run = self._open.pop(key, {}) or fresh
            if "start" not in run or (
                event.worker_pid is not None and run["pid"] != event.worker_pid
            ):
                # No start, or one reported before the task reached its worker
                # (Dask): the run lasted its duration up to this event, whose
                # times are then the ones its worker measured.
                run["start"] = event.time - (event.duration or 0.0)
            run.setdefault("queued", run["start"] - (event.queued or 0.0))
            run["end"] = event.time
            run["outcome"] = {"end": "succeeded", "error": "failed"}.get(
                event.kind, "cached"
            )
            if event.worker_pid is not None:
                run["pid"] = event.worker_pid
            if event.error is not None:
                error = event.error
                self._errors[node] = format_user_traceback(error)
                run["error"] = f"{type(error).__name__}: {error}"
            self._runs.setdefault(node, []).append(run)

    def chain(self, on_event: EventCallback | None) -> EventCallback:
        """An ``on_event`` callback that records, then calls ``on_event``."""
        if on_event is None:
            return self
        then = on_event

        def both(event: NodeEvent) -> None:
            self(event)
            then(event)

        return both

    def document(
        self, graph: Graph, statuses: Sequence[NodeStatus] | None
    ) -> dict[str, Any]:
        """The trace as a JSON-ready dict; runs still open end now.

        ``statuses`` are the nodes' final ones, in the graph's order (``None``:
        the run never started, so every node is pending)."""
        now = time.time()
        origin = now if self._origin is None else self._origin
        runs = {node: list(items) for node, items in self._runs.items()}
        for run in self._open.values():
            run.setdefault("start", None)
            run["end"] = now
            run["outcome"] = "stopped" if run["start"] is not None else "waiting"
            runs.setdefault(run["node"], []).append(run)
        parent = os.getpid()
        events: list[dict[str, Any]] = [
            _metadata("process_name", parent, 0, "trio-wf (waiting for a worker)")
        ]
        lanes: set[tuple[int, int]] = set()
        every_run = [run for items in runs.values() for run in items]
        _assign_lanes(every_run, parent)
        for number, run in enumerate(every_run):
            args = {"node": run["node"], "outcome": run["outcome"]}
            if "error" in run:
                args["error"] = run["error"]
            start = run["start"] if run["start"] is not None else run["end"]
            if "queued" in run and start > run["queued"]:
                wait = {"name": run["label"], "cat": "queued", "id": number}
                wait.update(pid=parent, tid=0, args=args)
                events.append({**wait, "ph": "b", "ts": _us(run["queued"], origin)})
                events.append({**wait, "ph": "e", "ts": _us(start, origin)})
            if run["start"] is None:
                continue
            pid, lane = run.get("pid") or parent, run["lane"]
            lanes.add((pid, lane))
            events.append(
                {
                    "name": run["label"],
                    "cat": run["outcome"],
                    "ph": "X",
                    "ts": _us(run["start"], origin),
                    "dur": _us(run["end"], origin) - _us(run["start"], origin),
                    "pid": pid,
                    "tid": lane,
                    "args": args,
                }
            )
        for pid, lane in sorted(lanes):
            name = "trio-wf (this process)" if pid == parent else f"worker {pid}"
            events.append(_metadata("process_name", pid, 0, name))
            events.append(_metadata("thread_name", pid, lane, f"lane {lane}"))
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "trio_wf": {
                "format": TRACE_FORMAT,
                "graph": _graph_summary(graph),
                "started": origin,
                "duration": now - origin,
                "parent_pid": parent,
                "nodes": {
                    display_id(node_id): {
                        "status": status.value,
                        "runs": [
                            _relative(run, origin)
                            for run in runs.get(display_id(node_id), [])
                        ],
                        "traceback": self._errors.get(display_id(node_id)),
                    }
                    for node_id, status in zip(
                        graph.nodes,
                        statuses or [NodeStatus.PENDING] * len(graph.nodes),
                        strict=True,
                    )
                },
            },
        }

    def write(
        self,
        path: str | os.PathLike[str],
        graph: Graph,
        statuses: Sequence[NodeStatus] | None,
    ) -> None:
        """Write the trace to ``path`` (replacing it)."""
        document = self.document(graph, statuses)
        with open(path, "w", encoding="utf-8") as file:
            json.dump(document, file, default=repr)
            file.write("\n")


def _assign_lanes(runs: list[dict[str, Any]], parent: int) -> None:
    """Give each run that started the first ``lane`` of its process (the
    parent's, if it has no ``pid``) free from its start on: a process that runs
    several tasks at once (threads) gets one lane per task."""
    ends: dict[int, list[float]] = {}
    started = [run for run in runs if run.get("start") is not None]
    for run in sorted(started, key=lambda run: run["start"]):
        lanes = ends.setdefault(run.get("pid") or parent, [])
        free = [n for n, end in enumerate(lanes) if end <= run["start"]]
        run["lane"] = free[0] if free else len(lanes)
        if free:
            lanes[run["lane"]] = run["end"]
        else:
            lanes.append(run["end"])


def _graph_summary(graph: Graph) -> dict[str, Any]:
    columns = {
        node_id: (column, row)
        for column, ids in enumerate(layers(graph))
        for row, node_id in enumerate(ids)
    }
    return {
        "name": graph.display_name.strip("'"),
        "nodes": [
            {
                "id": display_id(node.id),
                "label": node.display_label,
                "task": node.task_identifier or node.task_type,
                "column": columns[node.id][0],
                "row": columns[node.id][1],
            }
            for node in graph.nodes.values()
        ],
        "links": [
            {
                "source": display_id(link.source),
                "target": display_id(link.target),
                "label": link_label(link),
                "on_error": link.on_error,
            }
            for link in graph.links
        ],
    }


def _relative(run: dict[str, Any], origin: float) -> dict[str, Any]:
    """A run as the report reads it: times in seconds from the run's start."""
    moments = ("queued", "start", "end")
    summary = {
        name: None if run.get(name) is None else round(run[name] - origin, 6)
        for name in moments
    }
    summary.update(
        (name, value)
        for name, value in run.items()
        if name not in (*moments, "node", "label")
    )
    return summary


def _metadata(name: str, pid: int, tid: int, value: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": {"name": value}}


def _us(moment: float, origin: float) -> int:
    return round((moment - origin) * 1e6)
