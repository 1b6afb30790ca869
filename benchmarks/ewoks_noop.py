"""The no-op ewokscore task of ``ewoks_bench.py`` (workers import it by name)."""

from __future__ import annotations

from ewokscore import Task


class Noop(Task):
    """Does nothing: its cost is ewokscore's cost of a task."""

    def run(self) -> None:
        pass
