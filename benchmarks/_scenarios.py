"""The rows of the table (row 5, cold start, lives in `_cold`)."""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _jobs
import trio
from _cold import row_cold
from _contenders import Contender, describe_error
from _report import Cell, p99_cell
from _rounds import Contenders, Settings, interleave, make_cells, suffix, warm_up

MIB = 1 << 20
PAYLOAD_MIB = 16
LARGE_MIB = 100
HUGE_MIB = 1024
# Through a pipe, 1 GiB each way takes a minute per call: row 7 compares the rest.
HUGE_CONTENDERS = ("trio_wf", "trio.to_thread")
TOO_SLOW = "1 GiB through a pipe takes minutes: see row 7"


async def row_latency(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Row 1: sequential warm no-op calls (``int()``), microseconds per call."""
    scenario = f"1 warm no-op latency median{suffix(spinners)}"
    cells = make_cells(
        contenders,
        "latency",
        scenario,
        "us",
        higher_is_better=False,
        spinners=spinners,
    )
    await warm_up(contenders, cells)

    async def measure(name: str) -> tuple[float, list[float]]:
        run = contenders[name].run  # type: ignore[union-attr]
        samples = []
        clock = time.perf_counter_ns
        for _ in range(settings.latency_calls):
            start = clock()
            await run(int)
            samples.append((clock() - start) / 1e3)
        return statistics.median(samples), samples

    await interleave(cells, settings.latency_rounds, measure, settings.timeout)
    p99 = f"1 warm no-op latency p99{suffix(spinners)}"
    return [*cells.values(), *(p99_cell(cell, p99) for cell in cells.values())]


async def row_throughput(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Row 2: N no-op calls from one nursery through a CapacityLimiter(2)."""
    count = settings.throughput_calls
    scenario = f"2 throughput {count} no-op, limiter 2{suffix(spinners)}"
    cells = make_cells(
        contenders,
        "throughput",
        scenario,
        "calls/s",
        higher_is_better=True,
        spinners=spinners,
    )
    await warm_up(contenders, cells)

    async def measure(name: str) -> tuple[float, list[float]]:
        contender = contenders[name]
        assert isinstance(contender, Contender)
        call = functools.partial(contender.run, int, limiter=contender.limiter(2))
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(call)
        return count / (time.perf_counter() - start), []

    await interleave(cells, settings.throughput_rounds, measure, settings.timeout)
    return list(cells.values())


async def row_payload(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Rows 3a/3b: a 16 MiB argument echoed back; payload size / round trip."""
    return await _payload_rows(
        contenders,
        settings,
        settings.payload_rounds,
        settings.payload_reps,
        spinners,
        PAYLOAD_MIB,
        "3",
    )


async def row_large_payload(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Rows 7a/7b: the same with 100 MiB."""
    # Two rounds of one call each: at pipe speed a 100 MiB echo takes seconds.
    rounds = min(settings.payload_rounds, 2)
    return await _payload_rows(
        contenders, settings, rounds, 1, spinners, LARGE_MIB, "7"
    )


async def row_huge_payload(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Rows 8a/8b: the same with 1 GiB, for the contenders that share memory."""
    rounds = min(settings.payload_rounds, 2)
    return await _payload_rows(
        contenders, settings, rounds, 1, spinners, HUGE_MIB, "8", HUGE_CONTENDERS
    )


def _copy_speed_cell(mib: int, number: str, spinners: bool) -> Cell:
    # What four copies of the payload (in, out, and back) would allow: the
    # arena's lower bound, for numbers that move with the machine.
    cell = Cell(
        f"{number}c {mib} MiB: memcpy / 4{suffix(spinners)}",
        "memcpy",
        "MiB/s",
        True,
        spinners=spinners,
    )
    source = bytearray(_data(mib))
    target = bytearray(len(source))
    target[:] = source  # fault the pages in
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        target[:] = source
        rates.append(mib / (time.perf_counter() - start) / 4)
    cell.rounds = rates
    return cell


def _data(mib: int) -> bytes:
    # Random (incompressible) but quick to make even at 1 GiB.
    return os.urandom(MIB) * mib


async def _payload_rows(
    contenders: Contenders,
    settings: Settings,
    rounds: int,
    reps: int,
    spinners: bool,
    mib: int,
    number: str,
    only: tuple[str, ...] | None = None,
) -> list[Cell]:
    data = _data(mib)
    kinds: list[tuple[str, str, Any, Any, Callable[[Any], bool]]] = [
        ("payload", f"{number}a", data, None, lambda out: bytes(out) == data)
    ]
    try:
        import numpy as np
    except ImportError:
        array = None
    else:
        array = np.frombuffer(data, dtype=np.uint8).copy()
        kinds.append(
            (
                "numpy",
                f"{number}b",
                array,
                np.zeros(1, np.uint8),
                lambda out: bool(np.array_equal(out, array)),
            )
        )
    result: list[Cell] = []
    for row, label, payload, small, check in kinds:
        kind = "bytes" if row == "payload" else "numpy"
        scenario = f"{label} {mib} MiB {kind} round trip"
        firsts = make_cells(
            contenders,
            row,
            f"{scenario}, 1st call{suffix(spinners)}",
            "MiB/s",
            higher_is_better=True,
            spinners=spinners,
        )
        cells = make_cells(
            contenders,
            row,
            f"{scenario}, 2nd+ calls{suffix(spinners)}",
            "MiB/s",
            higher_is_better=True,
            spinners=spinners,
        )
        if only is not None:
            for name in set(cells) - set(only):
                firsts[name].error = cells[name].error = TOO_SLOW
        await warm_up(contenders, firsts)

        async def timed(
            name: str, count: int, payload: Any = payload, check: Any = check
        ) -> tuple[float, list[float]]:
            run = contenders[name].run  # type: ignore[union-attr]
            rates = []
            for _ in range(count):
                start = time.perf_counter()
                out = await run(_jobs.echo, payload)
                elapsed = time.perf_counter() - start
                if not check(out):
                    raise AssertionError("the payload came back changed")
                del out  # as a caller done with it would (its memory is reused)
                rates.append(mib / elapsed)
            return statistics.median(rates), rates

        await _first_calls(contenders, firsts, small, timed, settings.timeout)
        for name, first in firsts.items():
            cells[name].error = first.error
        await interleave(
            cells, rounds, functools.partial(timed, count=reps), settings.timeout
        )
        result.extend([*firsts.values(), *cells.values()])
    if array is None:
        result.append(Cell(f"{number}b {mib} MiB numpy", "*", "MiB/s", True))
        result[-1].error = "numpy is not installed (optional)"
    return [*result, _copy_speed_cell(mib, number, spinners)]


async def _first_calls(
    contenders: Contenders,
    cells: dict[str, Cell],
    small: Any,
    timed: Callable[[str, int], Awaitable[tuple[float, list[float]]]],
    limit: float,
) -> None:
    """Time each contender's first call with the payload, after both its workers
    have unpickled ``small``, a value of the same kind (so that numpy's import
    is not timed), if there is one."""
    for name, cell in cells.items():
        contender = contenders[name]
        if cell.error is not None or not isinstance(contender, Contender):
            continue
        try:
            with trio.fail_after(limit):
                if small is not None:
                    await _reach_both_workers(contender, small)
                value, samples = await timed(name, 1)
        except Exception as exc:
            cell.error = describe_error(exc)
            continue
        cell.rounds.append(value)
        cell.samples.extend(samples)


async def _reach_both_workers(contender: Contender, small: Any) -> None:
    limiter = contender.limiter(2)
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(
                functools.partial(
                    contender.run, _jobs.echo_after, small, 0.05, limiter=limiter
                )
            )


async def row_kill(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Row 4: cancel a running call with kill-on-cancel; cancel -> call returns."""
    scenario = f"4 kill_on_cancel: cancel->return{suffix(spinners)}"
    cells = make_cells(
        contenders, "kill", scenario, "ms", higher_is_better=False, spinners=spinners
    )
    await warm_up(contenders, cells)

    async def measure(name: str) -> tuple[float, list[float]]:
        contender = contenders[name]
        assert isinstance(contender, Contender)
        return await time_kill(contender.run, contender.run_kill_on_cancel), []

    await interleave(cells, settings.kill_rounds, measure, settings.timeout)
    return list(cells.values())


async def time_kill(
    run: Callable[..., Awaitable[Any]],
    run_kill_on_cancel: Callable[..., Awaitable[Any]],
) -> float:
    """Milliseconds from cancelling a kill-on-cancel call of a long sleep, 0.2 s
    after it started, to the call returning."""
    # An idle warm worker is ready (a killed one is replaced here, untimed).
    await run(int)
    scope = trio.CancelScope()
    returned_at = 0.0

    async def victim() -> None:
        nonlocal returned_at
        with scope:
            await run_kill_on_cancel(_jobs.sleep, 30.0)
        returned_at = time.perf_counter()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(victim)
        # Time enough for the job to reach a warm worker and start sleeping.
        await trio.sleep(0.2)
        cancelled_at = time.perf_counter()
        scope.cancel()
    if not scope.cancelled_caught:
        raise AssertionError("the call ended before it was cancelled")
    return (returned_at - cancelled_at) * 1e3


async def row_cpu(
    contenders: Contenders, settings: Settings, spinners: bool
) -> list[Cell]:
    """Row 6: 4 CPU-bound jobs on 2 workers, two ways of judging the overhead.

    6a (the issue's formula): efficiency = (4 * job / 2) / wall, with ``job`` timed
    in-process right before each measurement, on each CPU in turn (their mean), as
    vCPUs here differ in speed and drift by half within seconds.  6b: the jobs' own
    CPU time in the workers (``thread_time``, so threads waiting for the GIL count
    nothing) over 2 * wall: immune to both.
    """
    iterations = _jobs.calibrate_burn(settings.cpu_job_seconds)
    millis = round(_job_time_per_cpu(iterations) * 1e3)
    label = f"4x~{millis}ms CPU jobs on 2 workers"
    kinds = {
        "a": f"6a {label}{suffix(spinners)}",
        "b": f"6b {label}, worker CPU{suffix(spinners)}",
    }
    both = {
        kind: make_cells(
            contenders,
            "cpu",
            scenario,
            "efficiency",
            higher_is_better=True,
            spinners=spinners,
        )
        for kind, scenario in kinds.items()
    }
    cells = both["a"]
    await warm_up(contenders, cells)
    job_times: list[float] = []

    async def measure(name: str) -> tuple[float, list[float]]:
        contender = contenders[name]
        assert isinstance(contender, Contender)
        job_time = _job_time_per_cpu(iterations)
        job_times.append(job_time)
        cpu_times: list[float] = []

        async def one(limiter: Any) -> None:
            cpu_times.append(
                await contender.run(_jobs.burn_timed, iterations, limiter=limiter)
            )

        limiter = contender.limiter(2)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(one, limiter)
        wall = time.perf_counter() - start
        both["b"][name].rounds.append(sum(cpu_times) / (2 * wall))
        return (4 * job_time / 2) / wall, [wall]

    await interleave(cells, settings.cpu_rounds, measure, settings.timeout)
    for cell in cells.values():
        # For the JSON: samples are the walls; these are the in-process job times.
        cell.extra["job_seconds"] = job_times
        cell.extra["iterations"] = iterations
        both["b"][cell.contender].error = cell.error
    return [*cells.values(), *both["b"].values()]


def _job_time_per_cpu(iterations: int) -> float:
    """The mean in-process time of ``burn(iterations)`` over this thread's CPUs."""
    cpus = os.sched_getaffinity(0)
    times = []
    try:
        for cpu in sorted(cpus):
            os.sched_setaffinity(0, {cpu})  # this thread only
            start = time.perf_counter()
            _jobs.burn(iterations)
            times.append(time.perf_counter() - start)
    finally:
        os.sched_setaffinity(0, cpus)
    return statistics.fmean(times)


Row = Callable[[Contenders, Settings, bool], Awaitable[list[Cell]]]
ROWS: dict[str, Row] = {
    "1": row_latency,
    "2": row_throughput,
    "3": row_payload,
    "4": row_kill,
    "5": row_cold,
    "6": row_cpu,
    "7": row_large_payload,
    "8": row_huge_payload,
}
# 1 GiB each way: about two minutes on a loaded 2-core machine, and 7 GiB of memory.
FULL_ONLY_ROWS = ("8",)
# The rows whose numbers an idle vCPU's wake-up visibly moves.
LATENCY_ROWS = ("1", "2")
