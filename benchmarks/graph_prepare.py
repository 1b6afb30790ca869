"""How soon a timeout or Ctrl+C is obeyed while a large graph is being prepared.

`aexecute_graph` reads, checks and analyses its graph in a thread, under its
timeout, so that Trio's thread stays free.  This builds a chain of ``--nodes``
nodes as JSON text and reports, as the median and the worst of ``--runs`` runs:

* how long preparing it takes (`load_graph`): how long a load in Trio's own
  thread would keep a timeout or Ctrl+C waiting;
* the timeout's latency: ``aexecute_graph(text, timeout=0.05)``, from the
  deadline to `TimeoutError`;
* Ctrl+C's latency: SIGINT raised 0.05 s into ``execute_graph(text)``, from the
  signal to `KeyboardInterrupt`.

Issue 15 asks for both latencies to stay under 0.5 s for 10,000 nodes.  Run it
in a venv where trio_wf is installed::

    python benchmarks/graph_prepare.py [--nodes 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import threading
import time
from typing import Any

import trio

from trio_wf.workflow import aexecute_graph, execute_graph, load_graph

DELAY = 0.05


def chain(n: int) -> str:
    """A chain of ``n`` nodes adding 1 to what the one before returned."""
    inputs = [{"name": 0, "value": 0}, {"name": 1, "value": 1}]
    nodes = [
        {
            "id": i,
            "task_type": "method",
            "task_identifier": "operator.add",
            "default_inputs": inputs,
        }
        for i in range(n)
    ]
    mapping = [{"source_output": "return_value", "target_input": 0}]
    links = [
        {"source": i, "target": i + 1, "data_mapping": mapping} for i in range(n - 1)
    ]
    return json.dumps({"graph": {"id": "chain"}, "nodes": nodes, "links": links})


def prepare_s(text: str) -> float:
    start = time.perf_counter()
    load_graph(text)
    return time.perf_counter() - start


def timeout_latency_s(text: str) -> float:
    async def run() -> float:
        deadline = time.perf_counter() + DELAY
        try:
            await aexecute_graph(text, timeout=DELAY, worker_type="sequential")
        except TimeoutError:
            return time.perf_counter() - deadline
        raise AssertionError("the run ended before its timeout")

    return trio.run(run)


def interrupt_latency_s(text: str) -> float:
    raised: list[float] = []

    def interrupt() -> None:
        raised.append(time.perf_counter())
        signal.raise_signal(signal.SIGINT)

    timer = threading.Timer(DELAY, interrupt)
    timer.start()
    try:
        execute_graph(text, worker_type="sequential")
    except KeyboardInterrupt:
        return time.perf_counter() - raised[0]
    finally:
        timer.join()
    raise AssertionError("the run ended before Ctrl+C")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = chain(args.nodes)
    rows: dict[str, list[float]] = {
        "prepare (load_graph), s": [],
        "timeout latency, s": [],
        "Ctrl+C latency, s": [],
    }
    measures: list[Any] = [prepare_s, timeout_latency_s, interrupt_latency_s]
    for _ in range(args.runs):
        for (_, values), measure in zip(rows.items(), measures, strict=True):
            values.append(measure(text))
            # An abandoned load goes on in its thread: let it end, so that
            # runs do not overlap.
            time.sleep(max(rows["prepare (load_graph), s"]))
    print(f"{args.nodes} nodes, {len(text)} bytes of JSON, {args.runs} runs")
    print(f"{'what':<28} {'median':>8} {'worst':>8}")
    for label, values in rows.items():
        print(f"{label:<28} {statistics.median(values):>8.3f} {max(values):>8.3f}")


if __name__ == "__main__":
    main()
