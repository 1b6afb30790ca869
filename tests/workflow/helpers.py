"""Helpers of the workflow tests: an in-process backend, graph builders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

import trio

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class InProcess:
    """A `trio_wf.SupportsRunSync` backend running each task in this process.

    Every call first sleeps ``delay`` seconds of Trio time (virtual time under
    ``autojump_clock``), then calls the function: walker tests can see which
    nodes overlap without depending on the machine.  It records the peak number
    of calls in flight and whether calls asked to be killed on cancellation.
    Like a `trio_wf.WorkerContext`, it calls ``on_start`` once it holds a
    ``limiter`` token.
    """

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self.running = 0
        self.peak = 0
        self.calls = 0
        self.kill_on_cancel: set[bool] = set()

    async def run_sync(
        self,
        sync_fn: Callable[[Unpack[Ts]], R],
        *args: Unpack[Ts],
        kill_on_cancel: bool = False,
        limiter: trio.CapacityLimiter | None = None,
        on_start: Callable[[int], object] | None = None,
    ) -> R:
        self.kill_on_cancel.add(kill_on_cancel)
        gate: AbstractAsyncContextManager[Any] = (
            nullcontext() if limiter is None else limiter
        )
        async with gate:
            if on_start is not None:
                on_start(os.getpid())
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await trio.sleep(self.delay)
                return sync_fn(*args)
            finally:
                self.running -= 1

    def statistics(self) -> tuple[int, int]:
        return self.running, self.peak


def method(node_id: Any, task: str, **attributes: Any) -> dict[str, Any]:
    """A ``method`` node running ``tests.workflow.tasks.<task>``."""
    node = {
        "id": node_id,
        "task_type": "method",
        "task_identifier": f"tests.workflow.tasks.{task}",
    }
    inputs = attributes.pop("inputs", None)
    if inputs:
        node["default_inputs"] = [
            {"name": name, "value": value} for name, value in inputs.items()
        ]
    node.update(attributes)
    return node


def link(source: Any, target: Any, *pairs: tuple[Any, Any], **attributes: Any) -> Any:
    """A link mapping ``(source_output, target_input)`` pairs."""
    item: dict[str, Any] = {"source": source, "target": target}
    if pairs:
        item["data_mapping"] = [
            {"source_output": output, "target_input": name} for output, name in pairs
        ]
    item.update(attributes)
    return item


def graph(nodes: list[Any], links: list[Any] | None = None, **attributes: Any) -> Any:
    """A graph document with id "test"."""
    return {"graph": {"id": "test", **attributes}, "nodes": nodes, "links": links or []}


#: The installed ``trio-wf`` console script, beside the Python running the tests.
TRIO_WF = str(Path(sys.executable).with_name("trio-wf"))
ROOT = Path(__file__).parents[2]


def run_cli(
    *arguments: str,
    cwd: Path = ROOT,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``trio-wf`` command in a subprocess and capture its output.

    From the checkout (the default ``cwd``), ``tests.workflow.tasks`` is
    importable: the command makes its current directory importable.  The
    ``TRIO_WF_*`` settings of the test run are left out, and ``env`` added.
    """
    return subprocess.run(
        [TRIO_WF, *arguments],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_environment(env),
        timeout=timeout,
        check=False,
    )


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without the test run's ``TRIO_WF_*`` settings, plus
    ``extra``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TRIO_WF_")
    }
    environment.update(extra or {})
    return environment


def local_task_graph(
    directory: Path, source: str, function: str, **node: Any
) -> dict[str, Any]:
    """A one-node graph whose task is ``function`` of a module written, from
    ``source``, into ``directory`` (importable from there, as the current
    directory)."""
    (directory / "localtasks.py").write_text(source)
    item = {
        "id": "a",
        "task_type": "method",
        "task_identifier": f"localtasks.{function}",
    }
    item.update(node)
    return {"graph": {"id": "local"}, "nodes": [item]}
