"""Contract tests of `open_map` on real worker processes."""

from __future__ import annotations

import functools
import os
import pty
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_wf
from trio_wf import WorkerType

from . import workers
from .helpers import read_terminal


async def test_ordered_results_match_map(worker_type: WorkerType) -> None:
    """Results come back in input order, equal to the builtin map's."""
    async with trio_wf.open_worker_context(worker_type=worker_type) as ctx:
        with trio.fail_after(30):
            async with trio_wf.open_map(workers.square, range(3000), context=ctx) as rs:
                results = [r async for r in rs]
    assert results == [x * x for x in range(3000)]


async def test_unordered_results_are_all_there() -> None:
    """ordered=False yields every result once, in completion order."""
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30):
            async with trio_wf.open_map(
                workers.square, range(500), context=ctx, ordered=False, chunksize=7
            ) as results:
                got = [r async for r in results]
    assert sorted(got) == [x * x for x in range(500)]


async def test_empty_input_yields_nothing() -> None:
    """An empty input gives an empty iteration, without starting a worker."""
    async with trio_wf.open_worker_context() as ctx:
        async with trio_wf.open_map(workers.square, [], context=ctx) as results:
            assert [r async for r in results] == []
        assert ctx.statistics().idle_workers == 0


async def collect(got: list[Any], *args: Any, **kwargs: Any) -> None:
    """Append every result of ``open_map(*args, **kwargs)`` to ``got``."""
    async with trio_wf.open_map(*args, **kwargs) as results:
        async for result in results:
            got.append(result)


async def test_error_comes_after_earlier_results() -> None:
    """fn's exception is raised when iteration reaches it, after earlier chunks."""
    got: list[int] = []
    fn = functools.partial(workers.fail_on, 5)
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30), pytest.raises(ValueError, match="bad item 5"):
            await collect(got, fn, range(10), context=ctx, chunksize=1)
    assert got == [0, 1, 2, 3, 4]


async def test_input_error_comes_after_started_items() -> None:
    """An input that fails raises, once the items read before it are yielded."""

    def items() -> Iterator[int]:
        yield from range(4)
        raise KeyError("input broke")

    got: list[int] = []
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30), pytest.raises(KeyError, match="input broke"):
            await collect(got, workers.square, items(), context=ctx, chunksize=1)
    assert got == [0, 1, 4, 9]


async def test_async_iterable_input() -> None:
    """Items may come from an async iterable."""

    async def items() -> AsyncIterator[int]:
        for i in range(20):
            await trio.lowlevel.checkpoint()
            yield i

    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30):
            async with trio_wf.open_map(workers.square, items(), context=ctx) as rs:
                assert [r async for r in rs] == [i * i for i in range(20)]


async def test_memory_is_bounded() -> None:
    """The input is read at most two chunks per token ahead of the consumer."""
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    limiter = trio.CapacityLimiter(2)
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30):
            async with trio_wf.open_map(
                workers.square, items(), context=ctx, limiter=limiter, chunksize=1
            ) as results:
                assert await results.__anext__() == 0
                for _ in range(10):  # let every chunk that may run, run
                    await trio.testing.wait_all_tasks_blocked()
                # 4 chunks in the window, the one consumed, one read ahead.
                assert pulled <= 2 * 2 + 2
                assert [r async for r in results][-1] == 999 * 999


async def test_leaving_early_kills_running_chunks() -> None:
    """Breaking out with kill_on_cancel=True does not wait for running jobs."""
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(20):
            async with trio_wf.open_map(
                workers.sleep_and_return,
                [0.0, 3600.0, 3600.0],
                context=ctx,
                chunksize=1,
                kill_on_cancel=True,
            ) as results:
                async for result in results:
                    assert result == 0.0
                    break
        assert ctx.statistics().running_workers == 0


@pytest.mark.parametrize("chunksize", [0, -1, 1.5, True])
async def test_chunksize_validation(chunksize: object) -> None:
    """A chunksize that is not a positive integer is refused, naming it."""
    with pytest.raises(ValueError, match="chunksize must be a positive integer"):
        async with trio_wf.open_map(workers.square, [1], chunksize=chunksize):  # type: ignore[arg-type]
            pass  # pragma: no cover


async def test_progress_callback_counts_every_item() -> None:
    """progress=f: f(done, total) after each chunk, up to every item."""
    calls: list[tuple[int, int | None]] = []
    async with trio_wf.open_worker_context() as ctx:
        with trio.fail_after(30):
            async with trio_wf.open_map(
                workers.square,
                range(500),
                context=ctx,
                progress=lambda *a: calls.append(a),
            ) as rs:
                results = [r async for r in rs]
    assert results == [x * x for x in range(500)]
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert done[-1] == 500
    assert {total for _, total in calls} == {500}


PROGRESS_SCRIPT = """
import trio, trio_wf
from tests import workers

async def main():
    async with trio_wf.open_map(workers.square, range(300), progress={progress}) as rs:
        print(sum([r async for r in rs]))

trio.run(main)
"""


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_on_a_terminal(progress: bool) -> None:
    """progress=True draws a bar (items done of the total) on standard error
    when it is a terminal; by default nothing is drawn."""
    root = Path(__file__).parents[1]
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    with tempfile.TemporaryDirectory() as cwd:
        code = f"import sys; sys.path.append({str(root)!r})\n"
        code += PROGRESS_SCRIPT.format(progress=progress)
        with subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=slave,
            cwd=cwd,
            env=env,
        ) as process:
            os.close(slave)
            text = read_terminal(master)
            out = process.stdout.read() if process.stdout else b""
            assert process.wait(timeout=60) == 0, text
    assert out.decode() == f"{sum(x * x for x in range(300))}\n"
    if progress:
        assert "300/300" in text
        assert "open_map" in text
    else:
        assert text == ""
