"""The benchmark driver behind ``run.py``: options, phases, the table, the JSON."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from importlib import metadata
from typing import Any

import trio
from _contenders import CONTENDERS, cpu_count, open_contenders
from _report import Cell, format_table, to_json
from _rounds import FULL, QUICK, Settings
from _scenarios import FULL_ONLY_ROWS, LATENCY_ROWS, ROWS
from _spinners import spinners, spinners_alive


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="trio_wf against its peers, in one process, interleaved rounds.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="full",
        action="store_false",
        help="fewer rounds and calls: under 2 minutes on 2 cores (the default)",
    )
    mode.add_argument(
        "--full", action="store_true", help="more rounds: under 10 minutes"
    )
    parser.add_argument(
        "--spinners",
        nargs="?",
        const="on",
        default="both",
        choices=("off", "on", "both"),
        help=(
            "one SCHED_IDLE busy loop per CPU keeps idle vCPUs awake. 'on' (the "
            "bare flag): every row with spinners; 'off': none; 'both' (the "
            "default): every row as the machine is, then rows "
            f"{', '.join(LATENCY_ROWS)} again with spinners"
        ),
    )
    parser.add_argument(
        "--rows",
        default=None,
        help=(
            "comma-separated rows to run (default: all, "
            f"{','.join(ROWS)}; --quick leaves out {','.join(FULL_ONLY_ROWS)})"
        ),
    )
    parser.add_argument(
        "--contenders",
        default=None,
        help=(
            "comma-separated contenders (default: all: "
            f"{', '.join(cls.name for cls in CONTENDERS)})"
        ),
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw numbers")
    parser.set_defaults(full=False)
    args = parser.parse_args(argv)
    if args.rows is None:
        skipped = () if args.full else FULL_ONLY_ROWS
        args.rows = ",".join(row for row in ROWS if row not in skipped)
    unknown_rows = set(args.rows.split(",")) - set(ROWS)
    if unknown_rows:
        parser.error(f"unknown rows: {', '.join(sorted(unknown_rows))}")
    if args.contenders is not None:
        known = {cls.name for cls in CONTENDERS}
        unknown = set(args.contenders.split(",")) - known
        if unknown:
            parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    return args


def phases(spinner_mode: str, rows: list[str]) -> list[tuple[bool, list[str]]]:
    """(spinners on?, rows) for each phase of the run."""
    if spinner_mode == "on":
        return [(True, rows)]
    if spinner_mode == "off":
        return [(False, rows)]
    again = [row for row in rows if row in LATENCY_ROWS]
    return [(False, rows), (True, again)] if again else [(False, rows)]


async def bench(
    settings: Settings, plan: list[tuple[bool, list[str]]], names: list[str] | None
) -> list[Cell]:
    """Run the plan; SIGTERM or SIGHUP cancel it, so every finally block runs."""
    cells: list[Cell] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_signal, nursery.cancel_scope)
        cells = await _run_plan(settings, plan, names)
        nursery.cancel_scope.cancel()
    if nursery.cancel_scope.cancelled_caught and not cells:
        raise SystemExit(128 + signal.SIGTERM)
    return cells


async def _cancel_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            print(f"{name}: stopping, cleaning up", file=sys.stderr, flush=True)
            scope.cancel()
            return


async def _run_plan(
    settings: Settings, plan: list[tuple[bool, list[str]]], names: list[str] | None
) -> list[Cell]:
    cells: list[Cell] = []
    async with open_contenders(names) as contenders:
        for spin, rows in plan:
            with spinners(spin) as pids:
                for row in rows:
                    started = time.perf_counter()
                    cells.extend(await ROWS[row](contenders, settings, spin))
                    label = " with spinners" if spin else ""
                    print(
                        f"row {row}{label}: {time.perf_counter() - started:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            leaked = spinners_alive(pids)
            if leaked:
                msg = f"spinners {leaked} survived their block"
                raise RuntimeError(msg)
    return cells


def _order(cell: Cell) -> tuple[str, bool, bool]:
    # Group each row's variants: median, then p99; as is, then with spinners.
    row = cell.scenario.split(" ", 1)[0]
    return row, "p99" in cell.scenario, cell.spinners


def _only(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind``, or an exception group of nothing else."""
    inner = getattr(exc, "exceptions", None)
    if inner is None:
        return isinstance(exc, kind)
    return all(_only(each, kind) for each in inner)


def _versions() -> dict[str, str]:
    versions = {}
    for dist in ("trio-wf", "trio-parallel", "anyio", "loky", "trio", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = FULL if args.full else QUICK
    rows = [row for row in ROWS if row in args.rows.split(",")]
    names = args.contenders.split(",") if args.contenders else None
    plan = phases(args.spinners, rows)
    versions = _versions()
    print(
        f"{'full' if args.full else 'quick'} mode, {cpu_count()} CPUs, Python "
        f"{platform.python_version()}, "
        + ", ".join(f"{dist} {version}" for dist, version in versions.items()),
        flush=True,
    )
    load_before = os.getloadavg()
    start = time.perf_counter()
    try:
        cells = trio.run(bench, settings, plan, names)
    except BaseException as exc:
        if _only(exc, KeyboardInterrupt):
            print("interrupted; everything started was stopped", file=sys.stderr)
            return 130
        raise
    elapsed = time.perf_counter() - start
    cells.sort(key=_order)
    print()
    print(format_table(cells))
    load_after = os.getloadavg()
    print(f"\ntotal run time: {elapsed:.1f} s")
    # Others' work skews everything (the efficiency rows most): say how busy it was.
    print(
        f"1-minute load average: {load_before[0]:.2f} before, {load_after[0]:.2f} "
        "after (this run's own processes count in the second)"
    )
    if args.json:
        meta: dict[str, Any] = {
            "mode": "full" if args.full else "quick",
            "settings": vars(settings),
            "spinners": args.spinners,
            "rows": rows,
            "cpus": cpu_count(),
            "os_cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": versions,
            "seconds": elapsed,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "argv": sys.argv[1:] if argv is None else argv,
        }
        with open(args.json, "w") as file:
            file.write(to_json(cells, meta))
    return 0
