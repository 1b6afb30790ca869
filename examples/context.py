"""A private worker context: per-worker set-up, retirement, and kill on cancel."""

from __future__ import annotations

import os
import time

import trio

import trio_wf

JOBS_PER_WORKER = 2
CALLS = 6


def init() -> None:
    """Runs once in each new worker, before its first job."""
    os.environ["EXAMPLE_WORKER_STATE"] = "initialised"


def whoami() -> tuple[int, str]:
    """Report which worker ran the job, and what ``init`` left there."""
    return os.getpid(), os.environ.get("EXAMPLE_WORKER_STATE", "missing")


def stuck(seconds: float) -> str:
    """Stands in for a call that takes far too long (a hung library, say)."""
    time.sleep(seconds)
    return "finished"


async def main() -> None:
    async with trio_wf.open_worker_context(
        init=init, retire=trio_wf.retire_policy(max_jobs=JOBS_PER_WORKER)
    ) as ctx:
        calls = [await ctx.run_sync(whoami) for _ in range(CALLS)]
        pids = {pid for pid, _ in calls}
        print(f"init ran in every worker: {all(s == 'initialised' for _, s in calls)}")
        # Each worker retires after its second job, so the calls need three workers.
        enough = len(pids) >= CALLS // JOBS_PER_WORKER
        print(f"{CALLS} calls, retired after {JOBS_PER_WORKER} jobs each: {enough}")

        result: str | None = None
        with trio.move_on_after(0.5) as scope:
            # kill_on_cancel: the timeout SIGKILLs the worker instead of waiting
            # the full minute for the job to finish.
            result = await ctx.run_sync(stuck, 60, kill_on_cancel=True)
        print(f"cancelled: {scope.cancelled_caught}, result: {result}")

        # The killed worker is gone; the next call simply gets a fresh one.
        _, state = await ctx.run_sync(whoami)
        print(f"still usable after the kill: {state}")


if __name__ == "__main__":
    trio.run(main)
