"""Contract tests: node events are honest on real backends (real workers).

A node is "started" when its task reaches a worker, its duration is its run
time, and the wait for a worker is reported apart, as ``queued``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

from trio_wf.workflow import NodeEvent, open_graph_run

from .helpers import graph, method

NAP = 0.5


@pytest.mark.parametrize("worker_type", ["spawn", "thread", "sequential"])
async def test_started_means_on_a_worker(worker_type: str) -> None:
    """Four 0.5 s nodes on two workers (one for sequential): never more nodes
    started than workers, each ran about 0.5 s, and those that waited say so."""
    workers = 1 if worker_type == "sequential" else 2
    nodes = [method(n, "sleep", inputs={"seconds": NAP}) for n in "abcd"]
    events: list[NodeEvent] = []
    on_worker: set[Any] = set()
    most = 0
    with trio.fail_after(60):
        async with open_graph_run(
            graph(nodes), worker_type=worker_type, max_workers=workers
        ) as run:
            async for event in run.events:
                events.append(event)
                if event.kind == "start":
                    on_worker.add(event.node_id)
                    most = max(most, len(on_worker))
                elif event.kind in ("end", "error"):
                    on_worker.discard(event.node_id)
        run.result  # raises what the run raised
    assert most == workers
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) == 4
    # Spawning a worker counts as waiting for it, not as running.
    assert all(NAP <= (e.duration or 0) < NAP + 0.4 for e in ends), ends
    waited = sorted(e.queued or 0 for e in ends)
    assert waited[-1] >= NAP * (4 // workers - 1) - 0.05
    starts = {e.node_id: e.worker_pid for e in events if e.kind == "start"}
    assert starts == {e.node_id: e.worker_pid for e in ends}
    if worker_type == "spawn":
        assert os.getpid() not in starts.values()
        assert len(set(starts.values())) == 2
    else:
        assert set(starts.values()) == {os.getpid()}
