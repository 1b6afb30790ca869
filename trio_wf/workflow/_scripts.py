"""``script`` tasks: run a program as argv, never through a shell.

A graph file is code, and a script task runs any program: script tasks run only
when the caller passes ``allow_scripts=True``.  The program runs from the
calling process (``trio.run_process``), so a timeout or a cancellation kills it;
its environment is explicit: a few variables of the caller's (`BASE_ENV`) plus
the task's ``_env`` input, never the whole environment.
The argv itself is worked out when the graph is read
(`._identifiers.script_argv`); the interpreter of a script file, and the
arguments, as ewokscore's ``ScriptExecutorTask`` works them out, when it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from .._util import quote, quote_items
from ._errors import TaskInputError
from ._graph import InputName, Node

#: The variables of the caller's environment a script inherits (if set).
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
#: Inputs that configure the run instead of becoming arguments: ewokscore's
#: (``_script`` is the program there), then trio_wf's.
OPTIONS = (
    "_script",
    "_capture_output",
    "_merge_err",
    "_raise_on_error",
    "_env",
    "_timeout",
)


def arguments(inputs: Mapping[InputName, Any]) -> list[str]:
    """Inputs as command-line arguments, as ewokscore builds them.

    Named inputs first, in their order: a one-letter name ``k`` becomes
    ``-k value``, a longer one ``--name value``, with the value as ``str()``
    writes it; a value written as ``""`` leaves a bare flag.  Then the
    positional inputs (int names), in order.
    """
    argv: list[str] = []
    for name, value in inputs.items():
        if isinstance(name, int) or name in OPTIONS:
            continue
        argv.append(f"-{name}" if len(name) == 1 else f"--{name}")
        text = str(value)
        if text:
            argv.append(text)
    positions = sorted(name for name in inputs if isinstance(name, int))
    argv.extend(str(inputs[position]) for position in positions)
    return argv


def program(argv: Sequence[str]) -> list[str]:
    """``argv``, with the interpreter of its program if it is a script file.

    A file path (one with a ``/``) that starts with ``#!`` runs as the system
    runs it, with the interpreter it names; without one, a ``.py`` file runs
    with this Python, a binary (a NUL in its first block) as it is, and any
    other file, a shell script, with ``bash``, as in ewokscore.  A command
    looked up in ``PATH`` runs as it is.
    """
    path = argv[0]
    if "/" not in path or not os.path.isfile(path):
        return list(argv)
    try:
        with open(path, "rb") as file:
            start = file.read(512)
    except OSError:
        return list(argv)  # running it says what is wrong
    if start.startswith(b"#!") or b"\0" in start:
        return list(argv)
    interpreter = sys.executable if path.endswith(".py") else "bash"
    return [interpreter, *argv]


def _flag(
    node: Node, inputs: Mapping[InputName, Any], name: str, default: bool
) -> bool:
    value = inputs.get(name, default)
    if value is None or isinstance(value, bool):
        return bool(value)
    msg = (
        f"node {quote(node.id)}: input {name!r} must be true or false, "
        f"got {quote(value)}"
    )
    raise TaskInputError(msg)


async def run_script(
    node: Node,
    inputs: Mapping[InputName, Any],
    limiter: trio.CapacityLimiter | None,
    on_start: Callable[[int | None], object],
) -> dict[str, Any]:
    """Run a script node; outputs ``return_code``, ``out`` and ``err``.

    ``out`` is the standard output as text if ``_capture_output`` (true by
    default), else None; ``err`` the standard error, or None if it was not
    captured or ``_merge_err`` sent it to ``out``.  ``on_start`` is called
    once a ``limiter`` token is held, as the program starts.
    """
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
    capture = _flag(node, inputs, "_capture_output", True)
    merge = capture and _flag(node, inputs, "_merge_err", False)
    check = _flag(node, inputs, "_raise_on_error", True)
    argv = [*program(node.argv), *arguments(inputs)]
    # Not captured: the program writes where this process does.
    streams: dict[str, Any] = {"capture_stdout": capture}
    if merge:
        streams["stderr"] = subprocess.STDOUT
    else:
        streams["capture_stderr"] = capture
    if limiter is None:
        limiter = trio.CapacityLimiter(1)
    async with limiter:
        on_start(None)
        try:
            with trio.fail_after(float("inf") if timeout is None else timeout):
                done = await trio.run_process(
                    argv,
                    stdin=subprocess.DEVNULL,
                    check=False,
                    **streams,
                    env=env,
                )
        except trio.TooSlowError:
            msg = (
                f"script {quote_items(argv)} did not finish within {timeout} s "
                f"(_timeout)"
            )
            raise TimeoutError(msg) from None
    # trio types them as bytes; they are None when not captured.
    stdout: bytes | None = done.stdout
    stderr: bytes | None = done.stderr
    out = None if stdout is None else stdout.decode("utf-8", "replace")
    err = None if stderr is None else stderr.decode("utf-8", "replace")
    if done.returncode and check:
        raise subprocess.CalledProcessError(done.returncode, argv, out, err)
    return {"return_code": done.returncode, "out": out, "err": err}
