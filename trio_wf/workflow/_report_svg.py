"""The two drawings of the run report, as inline SVG: the graph with each node's
state, and the timeline with one lane per worker.

Drawn here, from the trace, rather than by a script in the page: the report
must open offline, and an SVG needs nothing but the browser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

NODE_WIDTH, NODE_HEIGHT = 156, 46
COLUMN_GAP, ROW_GAP = 80, 22
LANE_HEIGHT, LANE_GAP = 26, 6
LABEL_WIDTH, TIMELINE_WIDTH = 170, 860


def graph_svg(graph: Mapping[str, Any], nodes: Mapping[str, Any]) -> str:
    """The graph, left to right, each node coloured by its final status."""
    places: dict[str, tuple[float, float]] = {}
    for node in graph["nodes"]:
        x = 10 + node["column"] * (NODE_WIDTH + COLUMN_GAP)
        y = 10 + node["row"] * (NODE_HEIGHT + ROW_GAP)
        places[node["id"]] = (x, y)
    width = max((x for x, _ in places.values()), default=0) + NODE_WIDTH + 20
    height = max((y for _, y in places.values()), default=0) + NODE_HEIGHT + 40
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="the graph">',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    parts.extend(_link(link, places) for link in graph["links"])
    for node in graph["nodes"]:
        x, y = places[node["id"]]
        info = nodes.get(node["id"], {})
        status = info.get("status", "pending")
        runs = info.get("runs", [])
        time = sum(_run_time(run) for run in runs)
        detail = f"{_status_word(status)}" + (f", {time:.2f} s" if runs else "")
        if len(runs) > 1:
            detail += f", {len(runs)} runs"
        tip = f"{node['label']} ({node['id']}): task {node['task']}; {detail}"
        parts.append(
            f'<g class="node status-{escape(status)}" data-node="{escape(node["id"])}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" '
            'rx="8"/>'
            f'<text x="{x + NODE_WIDTH / 2}" y="{y + 19}" class="label">'
            f"{escape(_clip(node['label'], 22))}</text>"
            f'<text x="{x + NODE_WIDTH / 2}" y="{y + 36}" class="detail">'
            f"{escape(detail)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _link(link: Mapping[str, Any], places: Mapping[str, tuple[float, float]]) -> str:
    sx, sy = places[link["source"]]
    tx, ty = places[link["target"]]
    x1, y1 = sx + NODE_WIDTH, sy + NODE_HEIGHT / 2
    x2, y2 = tx, ty + NODE_HEIGHT / 2
    if x2 > x1:
        bend = (x2 - x1) / 2
        path = f"M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2} {y2}"
        middle = ((x1 + x2) / 2, (y1 + y2) / 2)
    elif link["source"] == link["target"]:  # a loop of one node: below it
        x1, x2, y1 = sx + NODE_WIDTH * 0.35, sx + NODE_WIDTH * 0.65, sy + NODE_HEIGHT
        y2, low = y1, y1 + ROW_GAP + 6
        path = f"M {x1} {y1} C {x1 - 12} {low}, {x2 + 12} {low}, {x2} {y2}"
        middle = ((x1 + x2) / 2, low + 12)
    else:  # back to an earlier column (a loop): around, below the nodes
        low = max(sy, ty) + NODE_HEIGHT + ROW_GAP
        x1, y1 = sx + NODE_WIDTH / 2, sy + NODE_HEIGHT
        x2, y2 = tx + NODE_WIDTH / 2, ty + NODE_HEIGHT
        path = f"M {x1} {y1} C {x1} {low}, {x2} {low}, {x2} {y2}"
        middle = ((x1 + x2) / 2, low - 4)
    kind = "link error-link" if link["on_error"] else "link"
    label = ""
    if link["label"]:
        label = (
            f'<text x="{middle[0]}" y="{middle[1] - 4}" class="link-label">'
            f"{escape(_clip(link['label'], 18))}</text>"
        )
    return f'<g class="{kind}"><path d="{path}" marker-end="url(#arrow)"/>{label}</g>'


def timeline_svg(
    nodes: Mapping[str, Any], labels: Mapping[str, str], duration: float, parent: int
) -> str:
    """One lane per worker (and per task at once in the calling process), the
    runs on it; below, the waits for a worker, packed into as few rows as fit."""
    runs = [(node, run) for node, info in nodes.items() for run in info["runs"]]
    lanes = sorted(
        {_lane(run, parent) for _, run in runs if run.get("start") is not None}
    )
    span = max(duration, max((run["end"] for _, run in runs), default=0.0), 1e-3)
    # Waits too short to see at this scale would only be hairlines.
    shortest = max(0.0005, span / 500)
    waits = [
        (node, run)
        for node, run in runs
        if run.get("queued") is not None and _begin(run) - run["queued"] > shortest
    ]
    wait_rows = _pack((run["queued"], _begin(run)) for _, run in waits)
    scale = TIMELINE_WIDTH / span
    rows = len(lanes) + max(wait_rows.values(), default=-1) + 1
    height = 30 + rows * (LANE_HEIGHT + LANE_GAP) + 10
    width = LABEL_WIDTH + TIMELINE_WIDTH + 20
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="the timeline">'
    ]
    for tick in _ticks(span):
        x = LABEL_WIDTH + tick * scale
        parts.append(
            f'<line class="tick" x1="{x}" y1="18" x2="{x}" y2="{height - 6}"/>'
            f'<text class="tick-label" x="{x}" y="12">{tick:g} s</text>'
        )
    row_of = {lane: number for number, lane in enumerate(lanes)}
    for (pid, lane), number in row_of.items():
        y = 24 + number * (LANE_HEIGHT + LANE_GAP)
        name = f"worker {pid}" if pid != parent else f"this process, lane {lane}"
        parts.append(
            f'<g class="lane" data-pid="{pid}" data-lane="{lane}">'
            f'<rect class="lane-band" x="{LABEL_WIDTH}" y="{y}" '
            f'width="{TIMELINE_WIDTH}" height="{LANE_HEIGHT}"/>'
            f'<text class="lane-name" x="{LABEL_WIDTH - 8}" y="{y + 17}">'
            f"{escape(name)}</text></g>"
        )
    for node, run in runs:
        if run.get("start") is not None:
            y = 24 + row_of[_lane(run, parent)] * (LANE_HEIGHT + LANE_GAP)
            parts.append(_bar("run", node, labels[node], run, y, scale))
    for number, (node, run) in enumerate(waits):
        y = 24 + (len(lanes) + wait_rows[number]) * (LANE_HEIGHT + LANE_GAP)
        parts.append(_bar("wait", node, labels[node], run, y, scale))
    if waits:
        y = 24 + len(lanes) * (LANE_HEIGHT + LANE_GAP)
        parts.append(
            f'<text class="lane-name" x="{LABEL_WIDTH - 8}" y="{y + 17}">'
            "waiting for a worker</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _lane(run: Mapping[str, Any], parent: int) -> tuple[int, int]:
    return run.get("pid") or parent, run.get("lane", 0)


def _bar(
    kind: str, node: str, label: str, run: Mapping[str, Any], y: float, scale: float
) -> str:
    start, end = (
        (run["queued"], _begin(run))
        if kind == "wait"
        else (
            run["start"],
            run["end"],
        )
    )
    x = LABEL_WIDTH + start * scale
    width = max((end - start) * scale, 1.5)
    if kind == "wait":
        tip = f"{label}: waited {end - start:.3f} s for a worker"
    else:
        tip = f"{label}: ran {end - start:.3f} s in process {run.get('pid')}, "
        tip += run["outcome"] + (f": {run['error']}" if run.get("error") else "")
    text = ""
    if width > 40:
        text = (
            f'<text x="{x + 4:.1f}" y="{y + 17}" class="bar-label">'
            f"{escape(_clip(label, max(int(width / 7), 3)))}</text>"
        )
    return (
        f'<g class="{kind} outcome-{escape(run["outcome"])}" '
        f'data-node="{escape(node)}"><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{LANE_HEIGHT}" '
        f'rx="3"/>{text}</g>'
    )


def _begin(run: Mapping[str, Any]) -> float:
    start = run.get("start")
    return float(run["end"] if start is None else start)


def _pack(intervals: Iterable[tuple[float, float]]) -> dict[int, int]:
    """Interval number to row: each on the first row free at its start."""
    ends: list[float] = []
    rows: dict[int, int] = {}
    for number, (start, end) in sorted(enumerate(intervals), key=lambda item: item[1]):
        row = next((r for r, last in enumerate(ends) if last <= start), len(ends))
        if row == len(ends):
            ends.append(end)
        else:
            ends[row] = end
        rows[number] = row
    return rows


def _ticks(span: float) -> list[float]:
    step = 10 ** math.floor(math.log10(span / 5))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= 8:
            step *= factor
            break
    return [round(i * step, 6) for i in range(int(span / step) + 1)]


def _run_time(run: Mapping[str, Any]) -> float:
    return 0.0 if run.get("start") is None else float(run["end"] - run["start"])


def _status_word(status: str) -> str:
    return status.replace("-", " ")


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: max(size - 1, 1)] + "…"
