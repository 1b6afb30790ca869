"""Whole-process tests: each scenario runs a script in a subprocess, with a timeout."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trio_wf

from .helpers import assert_all_gone

WORKER_TYPES = [t.value for t in trio_wf.WorkerType]


def run_script(
    tmp_path: Path, code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("worker_type", WORKER_TYPES)
def test_main_functions_without_main_guard(tmp_path: Path, worker_type: str) -> None:
    """__main__ functions work under every worker type, with no main guard."""
    result = run_script(
        tmp_path,
        """
        import sys, trio, trio_wf

        def double(x):
            return 2 * x

        class Box:
            def __init__(self, v):
                self.v = v

        def unbox(box):
            return box.v

        trio_wf.configure_default_context(worker_type=sys.argv[1])
        print(trio.run(trio_wf.run_sync, double, 21))
        print(trio.run(trio_wf.run_sync, unbox, Box("boxed")))
        print(trio.run(trio_wf.run_sync, lambda: "lambda"))
        """,
        worker_type,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "boxed", "lambda"]
    assert result.stderr == ""


@pytest.mark.parametrize("worker_type", WORKER_TYPES)
def test_interpreter_exit_shuts_workers_down(tmp_path: Path, worker_type: str) -> None:
    """At exit, cached workers exit cleanly, quietly and promptly."""
    result = run_script(
        tmp_path,
        """
        import os, sys, trio, trio_wf

        trio_wf.configure_default_context(worker_type=sys.argv[1], grace_period=5)

        async def main():
            async with trio_wf.open_worker_context(worker_type=sys.argv[1]) as ctx:
                print(await ctx.run_sync(os.getpid))
            print(await trio_wf.run_sync(os.getpid))

        trio.run(main)
        """,
        worker_type,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_all_gone([int(pid) for pid in result.stdout.split()])


def test_trio_parallel_program_runs_unchanged(tmp_path: Path) -> None:
    """A program written for trio-parallel runs with trio_wf imported in its place."""
    result = run_script(
        tmp_path,
        """
        import functools, os, trio
        import trio_wf as trio_parallel

        def work(x, y=1):
            return x * y

        async def main():
            limiter = trio_parallel.current_default_worker_limiter()
            assert limiter.total_tokens == os.cpu_count()
            print(await trio_parallel.run_sync(work, 6, kill_on_cancel=True))
            print(await trio_parallel.run_sync(functools.partial(work, 6, y=7)))
            async with trio_parallel.open_worker_context(
                idle_timeout=1.0, init=bool, retire=bool, grace_period=5.0,
                worker_type=trio_parallel.WorkerType.FORKSERVER,
            ) as ctx:
                print(await ctx.run_sync(work, 2, limiter=trio.CapacityLimiter(1)))
                stats = ctx.statistics()
                print(stats.idle_workers, stats.running_workers)
                try:
                    await ctx.run_sync(os._exit, 3)
                except trio_parallel.BrokenWorkerError as exc:
                    print("exitcode", exc.args[-1].exitcode)
            spawn = trio_parallel.WorkerType.SPAWN
            async with trio_parallel.cache_scope(worker_type=spawn):
                print(await trio_parallel.run_sync(work, 5))
            print(trio_parallel.default_context_statistics().idle_workers)

        if __name__ == "__main__":
            trio_parallel.configure_default_context(idle_timeout=30)
            trio.run(main)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [
        "6",
        "42",
        "2",
        "1 0",
        "exitcode 3",
        "5",
        "1",
        "",
    ]
