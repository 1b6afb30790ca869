"""The four Dask fault figures: how fast trio_wf gives control back.

Usage::

    python benchmarks/dask_faults.py [--repeat 5] [--workers 2]

(in a venv with ``trio-wf[dask]`` installed, such as ``.nox/tests-3-11``).  It
starts a ``LocalCluster`` of ``--workers`` process workers of one thread on
loopback, and measures, ``--repeat`` times each (median and worst):

1. **kill_on_cancel**: a ``run_sync(time.sleep, 60, kill_on_cancel=True)`` is
   cancelled once its task runs on a worker; the time from ``cancel()`` to the
   call returning.  Goal: <= 0.5 s.  The worker was killed by then, its
   replacement starts in the background.
2. **Ctrl+C**: ``trio-wf run GRAPH --scheduler ADDRESS``, on a one-node graph
   whose task sleeps, gets SIGINT once the task runs; the time from the signal
   to the command's exit.  Goal: <= 1 s, and nothing left running on the
   cluster (checked: no task is processing once the command has exited).
3. **--timeout 2**: the same command with ``--timeout 2``; the time from the
   node's start to the exit.  Goal: <= 2 s + 1 s.  The wall time of the whole
   command (Python, trio_wf and Dask start-up included) is shown beside it.
4. **unreachable scheduler**: ``open_dask_context`` on a loopback port where
   nothing listens, and on one where a socket listens but never answers
   (``connect_timeout`` elapses), then ``trio-wf run --scheduler`` on the
   first; the time to the error.  Goal: <= 5 s, the message naming the address.

"Once the task runs" is seen from the cluster (a call stack on a worker), so the
figures are from the moment the work is really running.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import distributed
import trio

import trio_wf

TRIO_WF = str(Path(sys.executable).parent / "trio-wf")
GOALS = {
    "kill_on_cancel -> return": 0.5,
    "Ctrl+C -> exit": 1.0,
    "--timeout 2 -> exit": 3.0,
    "unreachable -> error": 5.0,
}


def wait_running(client: Any, timeout: float = 60) -> None:
    """Return once a worker executes a task (it has a call stack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(client.call_stack().values()):
            return
        time.sleep(0.005)
    msg = f"no task ran within {timeout} s"
    raise TimeoutError(msg)


def wait_idle(client: Any, workers: int, timeout: float = 60) -> None:
    """Return once nothing is processing and every worker is back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(client.processing().values()):
            break
        time.sleep(0.01)
    else:
        msg = f"tasks still processing after {timeout} s: {client.processing()}"
        raise AssertionError(msg)
    client.wait_for_workers(workers, timeout=timeout)


async def kill_on_cancel(address: str, client: Any) -> float:
    async with trio_wf.open_dask_context(address) as ctx:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: ctx.run_sync(time.sleep, 60, kill_on_cancel=True)
                )
                await trio.to_thread.run_sync(wait_running, client)
                start = time.perf_counter()
                scope.cancel()
        return time.perf_counter() - start


def sleeping_graph(directory: str) -> str:
    node = {
        "id": "sleep",
        "task_type": "method",
        "task_identifier": "time.sleep",
        "default_inputs": [{"name": 0, "value": 60}],
    }
    path = os.path.join(directory, "sleep.json")
    with open(path, "w") as file:
        json.dump({"graph": {"id": "sleepy"}, "nodes": [node]}, file)
    return path


def cli(
    graph: str, address: str, client: Any, *options: str
) -> tuple[float, float, str]:
    """Run the command; SIGINT once the node runs unless it has a --timeout.

    Returns the time from the node's start (or the signal) to the exit, the
    wall time of the command, and its standard error.
    """
    began = time.perf_counter()
    proc = subprocess.Popen(
        [TRIO_WF, "run", graph, "--scheduler", address, *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_running(client)
        start = time.perf_counter()
        if "--timeout" not in options:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    end = time.perf_counter()
    return end - start, end - began, err.strip()


async def unreachable(address: str, **options: Any) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        async with trio_wf.open_dask_context(address, **options):
            pass
    except OSError as exc:
        return time.perf_counter() - start, str(exc)
    msg = f"connected to {address}"
    raise AssertionError(msg)


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def report(name: str, samples: list[float], note: str = "") -> None:
    goal = GOALS.get(name)
    verdict = "" if goal is None else ("ok" if max(samples) <= goal else "MISSED")
    print(
        f"{name:28}{statistics.median(samples):>9.3f}{max(samples):>9.3f}"
        f"{'' if goal is None else f'{goal:>8.1f}':>8}  {verdict:6} {note}",
        flush=True,
    )


def repeat(n: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(n)]


def main(repeats: int, workers: int) -> None:
    # Every kill here is followed by a replacement from the worker's nanny; a
    # LocalCluster would otherwise close a nanny whose worker was away when
    # an earlier departure's lost-worker timer fired (trio_wf's private
    # cluster is immune).  Read when a worker leaves: set for the whole run.
    dask.config.set({"distributed.deploy.lost-worker-timeout": "1 day"})
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=int(os.environ.get("BENCH_LOG", "50")),
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        tempfile.TemporaryDirectory() as directory,
    ):
        address = cluster.scheduler_address
        graph = sleeping_graph(directory)
        print(
            f"LocalCluster of {workers} workers, {os.cpu_count()} CPUs, load ", end=""
        )
        print(" ".join(f"{x:.1f}" for x in os.getloadavg()))
        print(f"{'':28}{'median s':>9}{'worst s':>9}{'goal s':>8}")

        def killed() -> float:
            took = trio.run(kill_on_cancel, address, client)
            wait_idle(client, workers)
            return took

        report("kill_on_cancel -> return", repeat(repeats, killed))

        walls: list[float] = []

        def interrupted() -> float:
            took, wall, err = cli(graph, address, client)
            assert err == "trio-wf: interrupted", err
            wait_idle(client, workers)  # nothing left running for the run
            walls.append(wall)
            return took

        report("Ctrl+C -> exit", repeat(repeats, interrupted))
        walls.clear()

        def timed_out() -> float:
            took, wall, err = cli(graph, address, client, "--timeout", "2")
            assert "did not finish within 2.0 s" in err, err
            wait_idle(client, workers)
            walls.append(wall)
            return took

        report("--timeout 2 -> exit", repeat(repeats, timed_out), "(from the start")
        report("  the whole command", walls, "of the node)")

        def refused() -> float:
            took, message = trio.run(unreachable, closed_port())
            assert "cannot reach the dask scheduler at tcp://127.0.0.1:" in message
            return took

        report("unreachable -> error", repeat(repeats, refused), "(refused)")
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            port = silent.getsockname()[1]
            took, message = trio.run(unreachable, f"tcp://127.0.0.1:{port}")
        report("unreachable -> error", [took], "(never answers)")
        print(f"  {message}")

        def command() -> float:
            start = time.perf_counter()
            proc = subprocess.run(
                [TRIO_WF, "run", graph, "--scheduler", closed_port()],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 2, proc.stderr
            return time.perf_counter() - start

        report("unreachable -> error", repeat(repeats, command), "(trio-wf run)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    main(options.repeat, options.workers)
