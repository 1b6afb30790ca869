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


def handler(node_id: Any, exception: BaseException, traceback: str) -> dict[str, Any]:
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
