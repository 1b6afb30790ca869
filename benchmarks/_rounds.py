"""How rows are measured: settings, cells, warm-up, and interleaved rounds.

A round measures every contender once, in an order rotated by one per round, so
that drift in the machine (other tenants, CPU frequency) lands on everyone alike.
Each contender is warmed up before a row; nothing outside the call is timed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import trio
from _contenders import Contender, describe_error
from _report import Cell

Contenders = dict[str, Contender | str]
# A measurement returns the round's value and the raw samples behind it.
Measure = Callable[[str], Awaitable[tuple[float, list[float]]]]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure: ``QUICK`` (< 2 min on 2 cores) or ``FULL`` (< 10)."""

    latency_rounds: int
    latency_calls: int
    throughput_rounds: int
    payload_rounds: int
    payload_reps: int
    kill_rounds: int
    cold_rounds: int
    cpu_rounds: int
    throughput_calls: int = 2000
    cpu_job_seconds: float = 0.1
    # Per measurement; a hung contender becomes an n/a instead of a hung run.
    timeout: float = 120.0


QUICK = Settings(
    latency_rounds=5,
    latency_calls=400,
    throughput_rounds=3,
    payload_rounds=3,
    payload_reps=3,
    kill_rounds=5,
    cold_rounds=5,
    cpu_rounds=5,
)
FULL = Settings(
    latency_rounds=15,
    latency_calls=2000,
    throughput_rounds=9,
    payload_rounds=7,
    payload_reps=5,
    kill_rounds=9,
    cold_rounds=9,
    cpu_rounds=7,
)


def make_cells(
    contenders: Contenders,
    row: str,
    scenario: str,
    unit: str,
    *,
    higher_is_better: bool,
    spinners: bool,
) -> dict[str, Cell]:
    """One cell per contender; unavailable or unsupported ones get their reason."""
    cells = {}
    for name, contender in contenders.items():
        cell = Cell(scenario, name, unit, higher_is_better, spinners=spinners)
        if isinstance(contender, str):
            cell.error = contender
        elif row in contender.unsupported:
            cell.error = contender.unsupported[row]
        cells[name] = cell
    return cells


async def warm_up(contenders: Contenders, cells: dict[str, Cell]) -> None:
    """Warm up every contender with a working cell; a failure marks the cell."""
    for name, cell in cells.items():
        contender = contenders[name]
        if cell.error is None and isinstance(contender, Contender):
            try:
                with trio.fail_after(60):
                    await contender.warm_up()
            except Exception as exc:
                cell.error = f"warm-up failed: {describe_error(exc)}"


async def interleave(
    cells: dict[str, Cell],
    rounds: int,
    measure: Measure,
    limit: float,
) -> None:
    """Measure every working cell once per round, rotating the order each round.

    A measurement taking over ``limit`` seconds, or failing, turns its cell into
    an n/a with the reason, and the cell is skipped from then on.
    """
    names = list(cells)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            cell = cells[name]
            if cell.error is not None:
                continue
            try:
                with trio.fail_after(limit):
                    value, samples = await measure(name)
            except Exception as exc:
                cell.error = describe_error(exc)
                continue
            cell.rounds.append(value)
            cell.samples.extend(samples)


def suffix(spinners: bool) -> str:
    """The scenario-name suffix of rows measured with spinners."""
    return " [spinners]" if spinners else ""
