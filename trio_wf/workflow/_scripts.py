"""``script`` tasks: run a program as argv, never through a shell.

A graph file is code, and a script task runs any program: script tasks run only
when the caller passes ``allow_scripts=True``.  The program runs from the
calling process (``trio.run_process``), so a timeout or a cancellation kills it;
its environment is explicit: a few variables of the caller's (`BASE_ENV`) plus
the task's ``_env`` input, never the whole environment.
The argv itself is worked out when the graph is read
(`._identifiers.script_argv`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import trio

from .._util import quote, quote_items
from ._errors import TaskInputError
from ._graph import InputName, Node

#: The variables of the caller's environment a script inherits (if set).
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
#: Inputs that configure the run instead of becoming arguments.
OPTIONS = ("_env", "_timeout", "_raise_on_error")


def arguments(node: Node, inputs: Mapping[InputName, Any]) -> list[str]:
    """Inputs as command-line arguments, as ewokscore does it.

    Positional inputs (int names) come first, in order; a one-letter name ``k``
    becomes ``-k value``, a longer one ``--name value``; ``True`` or ``""`` is a
    bare flag, ``False`` and ``None`` are left out.
    """
    positions = sorted(name for name in inputs if isinstance(name, int))
    argv = [str(inputs[position]) for position in positions]
    for name, value in inputs.items():
        if isinstance(name, int) or name in OPTIONS:
            continue
        if value is None or value is False:
            continue
        argv.append(f"-{name}" if len(name) == 1 else f"--{name}")
        if value is not True and value != "":
            argv.append(str(value))
    return argv


async def run_script(
    node: Node,
    inputs: Mapping[InputName, Any],
    limiter: trio.CapacityLimiter | None,
    on_start: Callable[[int | None], object],
) -> dict[str, Any]:
    """Run a script node; outputs ``return_code``, ``out`` and ``err``.

    ``on_start`` is called once a ``limiter`` token is held, as the program
    starts."""
    assert node.argv is not None  # set on load
    env = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
    extra = inputs.get("_env") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        msg = f"node {quote(node.id)}: input '_env' must map names to strings"
        raise TaskInputError(msg)
    env.update(extra)
    timeout = inputs.get("_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
        msg = (
            f"node {quote(node.id)}: input '_timeout' must be seconds, "
            f"got {quote(timeout)}"
        )
        raise TaskInputError(msg)
    argv = [*node.argv, *arguments(node, inputs)]
    if limiter is None:
        limiter = trio.CapacityLimiter(1)
    async with limiter:
        on_start(None)
        try:
            with trio.fail_after(float("inf") if timeout is None else timeout):
                done = await trio.run_process(
                    argv,
                    stdin=subprocess.DEVNULL,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=env,
                )
        except trio.TooSlowError:
            msg = (
                f"script {quote_items(argv)} did not finish within {timeout} s "
                f"(_timeout)"
            )
            raise TimeoutError(msg) from None
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode and inputs.get("_raise_on_error", True):
        raise subprocess.CalledProcessError(done.returncode, argv, out, err)
    return {"return_code": done.returncode, "out": out, "err": err}
