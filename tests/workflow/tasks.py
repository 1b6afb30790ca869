"""Functions the test graphs name as tasks (``tests.workflow.tasks.<name>``).

This module is imported by workers, so it imports nothing heavy, and never trio.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def add(a: float, b: float = 0) -> float:
    return a + b


def identity(value: Any) -> Any:
    return value


def join(*parts: Any, sep: str = "") -> str:
    return sep.join(str(part) for part in parts)


def kwargs(**values: Any) -> dict[str, Any]:
    return values


def fail(message: str = "boom", **_: Any) -> None:
    raise ValueError(message)


def record(path: str, name: str, **_: Any) -> str:
    """Append ``name`` to the file at ``path``: a run counter across processes."""
    with open(path, "a") as file:
        file.write(name + "\n")
    return name


def handler(
    node_id: Any, exception: BaseException, traceback: str, **_: Any
) -> dict[str, Any]:
    return {
        "failed_node": node_id,
        "error_type": type(exception).__name__,
        "error_message": str(exception),
        "traceback_mentions_fail": "fail" in traceback,
    }


def pid() -> int:
    return os.getpid()


def trio_imported() -> list[str]:
    return sorted(name for name in ("trio", "trio_wf") if name in sys.modules)


def ewokscore_imported() -> bool:
    return "ewokscore" in sys.modules


def exit_now(code: int = 42) -> None:
    os._exit(code)


def wait_for(started: Any, release: Any, done: Any) -> None:
    """Set ``started``, block until ``release`` is set, then set ``done``."""
    started.set()
    release.wait()
    done.set()


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def ppf_increment(value: int, **_: Any) -> dict[str, Any]:
    return {"value": value + 1}


def ppf_classify(value: int, limit: int = 3, **_: Any) -> dict[str, Any]:
    return {"too_small": value < limit}


def ppf_none(**_: Any) -> None:
    return None


def not_a_function() -> None:
    """Stands in for a module attribute; see ``NOT_CALLABLE``."""


NOT_CALLABLE = 42


def ppf_step(value: int, limit: int, **_: Any) -> dict[str, Any]:
    return {"value": value + 1, "too_small": value + 1 < limit}


def ppf_fail_at(value: int, limit: int, at: int, **_: Any) -> dict[str, Any]:
    if value == at:
        raise ValueError(f"failed at {value}")
    return {"too_small": value < limit}


def ppf_below(value: int, limit: int, **_: Any) -> dict[str, Any]:
    return {"again": value < limit}


def total(*values: float) -> float:
    return sum(values)


def announce_and_sleep(fifo: str, seconds: float = 60) -> None:
    """Write this process's pid to ``fifo``, then sleep: a node to interrupt."""
    with open(fifo, "w") as file:
        file.write(f"{os.getpid()}\n")
    time.sleep(seconds)


def where() -> list[Any]:
    """This process's pid and this thread's name."""
    import threading

    return [os.getpid(), threading.current_thread().name]


class Accumulate:
    """A class task: adds ``step`` (default 1) to ``value`` until ``limit``."""

    input_names = ("value",)
    optional_input_names = ("step", "limit")
    output_names = ("value", "done")
    inputs: Any
    outputs: Any

    def run(self) -> None:
        self.outputs.value = self.inputs.value + self.inputs.get("step", 1)
        self.outputs["done"] = self.outputs.value >= self.inputs.get("limit", 3)


class Nap:
    """A class task: sleeps ``seconds``, outputs them."""

    input_names = ("seconds",)
    output_names = ("seconds",)
    inputs: Any
    outputs: Any

    def run(self) -> None:
        time.sleep(self.inputs.seconds)
        self.outputs.seconds = self.inputs.seconds


class ForgetsAnOutput(Accumulate):
    def run(self) -> None:
        self.outputs.value = 0


class SetsAnUndeclaredOutput(Accumulate):
    def run(self) -> None:
        self.outputs.other = 0


def record_unless_flag(path: str, name: str, flag: str, **_: Any) -> str:
    """Record ``name``, then fail unless the file ``flag`` exists (a fixable bug)."""
    record(path, name)
    if not os.path.exists(flag):
        msg = f"{flag} is missing"
        raise FileNotFoundError(msg)
    return name


def lock() -> Any:
    """An output that cannot be pickled."""
    import threading

    return threading.Lock()


class RecordedWhenUnpickled:
    """A value whose unpickling appends "unpickled" to the file at ``path``
    (and gives that word): proof of whether a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return record, (self.path, "unpickled")
