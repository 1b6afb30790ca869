"""Results: one `Cell` per (scenario, contender), the statistics, the table, JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from typing import Any

BASELINE = "trio-parallel"


@dataclasses.dataclass
class Cell:
    """One scenario for one contender: the per-round values, or why there are none.

    ``value`` is what the table shows: by default the median of the per-round
    values; latency rows set it to the median of per-round medians and keep every
    sample in ``samples`` for the pooled p99 (row 6 keeps its walls there).
    """

    scenario: str
    contender: str
    unit: str
    higher_is_better: bool
    rounds: list[float] = dataclasses.field(default_factory=list)
    samples: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None
    spinners: bool = False
    # Anything else the JSON should carry (e.g. row 6's in-process job times).
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def value(self) -> float | None:
        if self.error is not None or not self.rounds:
            return None
        return statistics.median(self.rounds)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def p99_cell(cell: Cell, scenario: str) -> Cell:
    """A derived cell holding the pooled p99 of ``cell``'s samples."""
    derived = Cell(
        scenario=scenario,
        contender=cell.contender,
        unit=cell.unit,
        higher_is_better=False,
        error=cell.error,
        spinners=cell.spinners,
    )
    if cell.error is None and cell.samples:
        derived.rounds = [percentile(cell.samples, 0.99)]
    return derived


def _format_value(value: float, unit: str) -> str:
    if unit == "efficiency":
        return f"{value:.3f}"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(cells: list[Cell]) -> str:
    """The plain-text table, plus footnotes for every n/a."""
    by_key = {(cell.scenario, cell.contender): cell for cell in cells}
    notes: list[str] = []
    rows = [("scenario", "contender", "value", "unit", "ratio vs trio-parallel")]
    previous = ""
    for cell in cells:
        scenario = cell.scenario if cell.scenario != previous else ""
        previous = cell.scenario
        value = cell.value
        if value is None:
            reason = cell.error or "no measurement"
            if reason not in notes:
                notes.append(reason)
            shown = f"n/a [{notes.index(reason) + 1}]"
            ratio = ""
        else:
            shown = _format_value(value, cell.unit)
            base = by_key.get((cell.scenario, BASELINE))
            base_value = base.value if base is not None else None
            ratio = f"{value / base_value:.2f}x" if base_value else "n/a"
        rows.append((scenario, cell.contender, shown, cell.unit, ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        left = [row[i].ljust(widths[i]) for i in (0, 1)]
        right = [row[2].rjust(widths[2]), row[3].ljust(widths[3]), row[4]]
        lines.append(" | ".join([*left, *right]).rstrip())
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    lines.append("")
    lines.append(
        "ratio = value / trio-parallel's value in the same scenario; lower is better "
        "for us and ms, higher for calls/s, MiB/s and efficiency."
    )
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    return "\n".join(lines)


def to_json(cells: list[Cell], meta: dict[str, Any]) -> str:
    """Every cell's raw numbers (rounds, samples) plus the run's metadata."""
    payload = {
        "meta": meta,
        "cells": [
            {
                "scenario": cell.scenario,
                "contender": cell.contender,
                "unit": cell.unit,
                "higher_is_better": cell.higher_is_better,
                "spinners": cell.spinners,
                "value": cell.value,
                "error": cell.error,
                "rounds": cell.rounds,
                "samples": cell.samples,
                **cell.extra,
            }
            for cell in cells
        ],
    }
    return json.dumps(payload, indent=1)
