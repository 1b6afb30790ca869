"""``trio-wf report run.json -o report.html``: a run trace as a page to read.

One self-contained HTML file: the graph drawn with each node's state, the
timeline with one lane per worker, and a table of every node's status, worker,
wait, run time and error (its traceback folded).  Styles and drawings are
inline and nothing is loaded from the network, so the page opens offline, from
a mail attachment or a CI artefact.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from html import escape
from typing import Any

from .._util import quote
from ._report_svg import graph_svg, timeline_svg
from ._trace import TRACE_FORMAT

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.summary { color: #444; } .summary b { color: #1d1d1f; }
.scroll { overflow-x: auto; border: 1px solid #ddd; border-radius: 6px;
  padding: 8px; background: #fcfcfc; }
svg text { font: 12px system-ui, sans-serif; }
.node rect { stroke: #555; stroke-width: 1.2; fill: #fff; }
.node .label { text-anchor: middle; font-weight: 600; }
.node .detail { text-anchor: middle; fill: #444; font-size: 11px; }
.status-succeeded rect { fill: #d9f2dc; stroke: #2e7d32; }
.status-failed rect { fill: #fbdada; stroke: #c62828; stroke-width: 2; }
.status-running rect { fill: #fff4cc; stroke: #b28704; }
.status-skipped-ancestor-failed rect, .status-not-triggered rect {
  fill: #eee; stroke: #999; stroke-dasharray: 4 3; }
.link path { fill: none; stroke: #555; stroke-width: 1.3; }
.error-link path { stroke: #c62828; stroke-dasharray: 5 4; }
.link-label { text-anchor: middle; fill: #555; font-size: 11px; }
.lane-band { fill: #f2f2f2; }
.lane-name { text-anchor: end; fill: #333; }
.tick { stroke: #ddd; }
.tick-label { text-anchor: middle; fill: #777; font-size: 11px; }
.run rect { fill: #4c8bf5; } .outcome-failed rect { fill: #d93025; }
.outcome-cached rect { fill: #7fb3d5; } .outcome-stopped rect { fill: #f9ab00; }
.wait rect { fill: #c8c8c8; } .bar-label { fill: #fff; font-size: 11px; }
.wait .bar-label { fill: #333; }
table { border-collapse: collapse; margin-top: 4px; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e4e4e4;
  vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff3f3; }
pre { margin: 6px 0 0; font-size: 12px; white-space: pre-wrap; }
"""


class ReportError(ValueError):
    """The file is not a trace that ``trio-wf run --trace`` wrote."""


def read_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The trace in ``path``, checked to be one of ours.

    Raises:
        ReportError: it is not JSON, or not a trio_wf trace of a known format.
        OSError: it cannot be read.
    """
    with open(path, encoding="utf-8") as file:
        try:
            document: object = json.load(file)
        except ValueError as exc:
            msg = f"{quote(os.fspath(path))} is not JSON: {exc}"
            raise ReportError(msg) from None
    ours = document.get("trio_wf") if isinstance(document, dict) else None
    if not isinstance(ours, dict) or ours.get("format") != TRACE_FORMAT:
        msg = (
            f"{quote(os.fspath(path))} is not a trace written by trio-wf run --trace "
            f"(format {TRACE_FORMAT})"
        )
        raise ReportError(msg)
    assert isinstance(document, dict)
    return document


def report_html(trace: Mapping[str, Any]) -> str:
    """The report page of a trace, as one HTML document."""
    ours = trace["trio_wf"]
    graph, nodes = ours["graph"], ours["nodes"]
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    counts: dict[str, int] = {}
    for info in nodes.values():
        counts[info["status"]] = counts.get(info["status"], 0) + 1
    started = datetime.datetime.fromtimestamp(ours["started"], datetime.timezone.utc)
    workers = {run.get("pid") for info in nodes.values() for run in info["runs"]} - {
        None
    }
    summary = ", ".join(
        f"<b>{count}</b> {escape(status.replace('-', ' '))}"
        for status, count in sorted(counts.items())
    )
    title = f"trio-wf run of {graph['name']}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="summary">Started {started:%Y-%m-%d %H:%M:%S} UTC, ran '
            f"<b>{ours['duration']:.2f} s</b> on <b>{len(workers)}</b> "
            f"worker(s): {summary} node(s).</p>",
            "<h2>The graph</h2>",
            f'<div class="scroll">{graph_svg(graph, nodes)}</div>',
            "<h2>The timeline</h2>",
            '<div class="scroll">',
            timeline_svg(nodes, labels, ours["duration"], ours["parent_pid"]),
            "</div><h2>The nodes</h2>",
            _table(graph, nodes),
            "</body></html>\n",
        ]
    )


def _table(graph: Mapping[str, Any], nodes: Mapping[str, Any]) -> str:
    rows = [
        '<table class="nodes"><thead><tr><th>node</th><th>label</th><th>task</th>'
        "<th>status</th><th>worker</th><th>waited (s)</th><th>ran (s)</th>"
        "<th>error</th></tr></thead><tbody>"
    ]
    for node in graph["nodes"]:
        info = nodes[node["id"]]
        runs = info["runs"]
        waited = sum(
            (run["start"] if run["start"] is not None else run["end"]) - run["queued"]
            for run in runs
            if run.get("queued") is not None
        )
        ran = sum(run["end"] - run["start"] for run in runs if run["start"] is not None)
        pids = sorted({str(run["pid"]) for run in runs if run.get("pid") is not None})
        errors = [run["error"] for run in runs if run.get("error")]
        error = escape(errors[-1]) if errors else ""
        if info.get("traceback"):
            error = (
                f"<details><summary>{error}</summary>"
                f"<pre>{escape(info['traceback'])}</pre></details>"
            )
        status = info["status"]
        rows.append(
            f'<tr class="{escape(status)}" data-node="{escape(node["id"])}">'
            f"<td>{escape(node['id'])}</td><td>{escape(node['label'])}</td>"
            f"<td>{escape(node['task'])}</td>"
            f"<td>{escape(status.replace('-', ' '))}</td>"
            f"<td>{', '.join(pids)}</td>"
            f'<td class="number">{waited:.3f}</td>'
            f'<td class="number">{ran:.3f}</td><td>{error}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "".join(rows)
