"""The live progress of ``trio-wf run`` on a terminal, drawn with rich.

How many nodes are done, running, waiting for a worker, failed and read from
the cache, the time since the start, and the nodes running now with their
worker; redrawn a few times a second on standard error, and replaced by one
summary line when the run ends.  rich is imported only once a display is
drawn: ``import trio_wf``, and a run without one, stay as cheap as they were.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from ._events import NodeEvent
from ._graph import Graph, NodeId

if TYPE_CHECKING:
    from rich.console import Group

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

#: How many running nodes are listed under the counts; the rest are counted.
SHOWN_RUNNING = 6


class RunCounts:
    """What the run's events have said so far, node by node."""

    def __init__(self, graph: Graph) -> None:
        self.total = len(graph.nodes)
        self.started = time.monotonic()
        self.queued: set[NodeId] = set()
        # Node id to (label, worker pid, when it started on the worker).
        self.running: dict[NodeId, tuple[str, int | None, float]] = {}
        self.done: set[NodeId] = set()
        self.failed: set[NodeId] = set()
        self.cached: set[NodeId] = set()

    def __call__(self, event: NodeEvent) -> None:
        """Take one event into account (the run's ``on_event``)."""
        node = event.node_id
        if event.kind == "queued":
            self.queued.add(node)
        elif event.kind == "start":
            self.queued.discard(node)
            self.running[node] = (event.label, event.worker_pid, time.monotonic())
        else:
            self.queued.discard(node)
            self.running.pop(node, None)
            if event.kind == "error":
                self.failed.add(node)
                self.done.discard(node)
            elif event.kind == "cached":
                self.cached.add(node)
            else:
                self.done.add(node)
                self.failed.discard(node)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def summary(self) -> str:
        """The run in one line."""
        parts = [f"{len(self.done)} done"]
        if self.cached:
            parts.append(f"{len(self.cached)} read from the cache")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        left = self.total - len(self.done | self.cached | self.failed)
        if left:
            parts.append(f"{left} not run")
        return f"{self.total} node(s): {', '.join(parts)} in {self.elapsed():.1f} s"


class _Display:
    """What the screen shows, built afresh at each refresh (rich's thread)."""

    def __init__(self, counts: RunCounts, name: str) -> None:
        self.counts = counts
        self.name = name

    def __rich__(self) -> Group:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        counts = self.counts
        # Copies first: the events change these sets in the Trio thread.
        running = dict(counts.running)
        finished = len(counts.done) + len(counts.failed) + len(counts.cached)
        counts_line = Text.assemble(
            (f"{len(counts.done)} done", "green"),
            "  ",
            (f"{len(running)} running", "yellow"),
            "  ",
            (f"{len(counts.queued)} queued", "cyan"),
            "  ",
            (f"{len(counts.failed)} failed", "red" if counts.failed else "dim"),
            "  ",
            (f"{len(counts.cached)} cached", "blue" if counts.cached else "dim"),
        )
        top = Table.grid(padding=(0, 2))
        top.add_row(Text(self.name, "bold"), Text(f"{counts.elapsed():.1f} s", "dim"))
        bar = ProgressBar(total=max(counts.total, 1), completed=finished, width=30)
        middle = Table.grid(padding=(0, 2))
        middle.add_row(bar, f"{finished}/{counts.total}", counts_line)
        rows = Table.grid(padding=(0, 2))
        now = time.monotonic()
        by_age = sorted(running.values(), key=lambda item: item[2])
        for label, pid, since in by_age[:SHOWN_RUNNING]:
            worker = "this process" if pid is None else f"worker {pid}"
            rows.add_row(f"  {label}", Text(worker, "dim"), f"{now - since:5.1f} s")
        if len(by_age) > SHOWN_RUNNING:
            rows.add_row(f"  and {len(by_age) - SHOWN_RUNNING} more", "", "")
        return Group(top, middle, rows)


class LiveProgress:
    """The live display of a run, as an event consumer and a context manager."""

    def __init__(self, graph: Graph, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.counts = RunCounts(graph)
        self._console = Console(file=stream or sys.stderr, stderr=stream is None)
        name = graph.display_name.strip("'")
        self._live = Live(
            _Display(self.counts, name),
            console=self._console,
            refresh_per_second=8,
            transient=True,
        )

    def __call__(self, event: NodeEvent) -> None:
        """Take one event into account (the run's ``on_event``)."""
        self.counts(event)

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Transient: the live lines go, and the summary takes their place.
        self._live.stop()
