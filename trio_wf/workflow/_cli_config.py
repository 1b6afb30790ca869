"""Defaults of ``trio-wf run`` from ``[tool.trio_wf]`` and ``TRIO_WF_*`` variables.

The nearest ``pyproject.toml`` found upward from the current directory may set
how a run is carried out (where tasks run, how many at once, the timeout, the
loop limit); so may the environment, which wins over the file; the command line
wins over both.  What widens trust (trusted graphs, scripts, the allow-list, the
cache whose pickles are read back, a remote scheduler) is never read from
either: a ``pyproject.toml`` can ship with the graph it would then unlock.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from .._util import quote
from ._backends import WORKER_TYPES


class ConfigError(ValueError):
    """A default in ``pyproject.toml`` or the environment is not valid."""


#: Options given on the command line only, with the reason said when a file
#: or the environment tries to set one.
TRUST_OPTIONS = (
    "trusted",
    "allow-scripts",
    "allow-task",
    "cache-dir",
    "scheduler",
    "insecure",
)


def read_defaults(
    parsers: Mapping[str, Callable[[str], Any]],
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``{dest: value}`` for the options a ``pyproject.toml`` or variable sets.

    Args:
        parsers: for each option (by its command-line name without ``--``), the
            function that turns its text into its value, as argparse would.
        cwd: where the search for ``pyproject.toml`` starts.
        environ: the environment.

    Raises:
        ConfigError: an unknown key, a trust option, or a value its parser refuses.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    found = _nearest_pyproject(Path.cwd() if cwd is None else cwd)
    if found is not None:
        path, table = found
        for key, raw in table.items():
            name = key.replace("_", "-")
            where = f"[tool.trio_wf] {key} in {path}"
            _check_known(name, where, parsers)
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
            values[name] = _parse(parsers[name], text, where)
    for name, parser in parsers.items():
        variable = "TRIO_WF_" + name.replace("-", "_").upper()
        if variable in environ:
            values[name] = _parse(parser, environ[variable], variable)
    for name in TRUST_OPTIONS:
        variable = "TRIO_WF_" + name.replace("-", "_").upper()
        if variable in environ:
            _check_known(name, variable, parsers)
    return {name.replace("-", "_"): value for name, value in values.items()}


def _check_known(name: str, where: str, parsers: Mapping[str, object]) -> None:
    if name in TRUST_OPTIONS:
        msg = (
            f"{where}: --{name} widens what the graph may do, so it is taken "
            "from the command line only"
        )
        raise ConfigError(msg)
    if name not in parsers:
        known = ", ".join(name.replace("-", "_") for name in parsers)
        msg = f"{where}: unknown setting; the settings are {known}"
        raise ConfigError(msg)


def _parse(parser: Callable[[str], Any], text: str, where: str) -> Any:
    try:
        return parser(text)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        msg = f"{where}: {exc}"
        raise ConfigError(msg) from None


def _nearest_pyproject(start: Path) -> tuple[Path, Mapping[str, Any]] | None:
    """The first ``pyproject.toml`` upward from ``start``, and its table.

    The search stops at the first file found, with or without a
    ``[tool.trio_wf]`` table: a project's settings never mix with its parent's.
    """
    for directory in (start, *start.parents):
        path = directory / "pyproject.toml"
        if not path.is_file():
            continue
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            # A dependency on Python 3.10 only, without type stubs there.
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            msg = f"cannot read {path}: {exc}"
            raise ConfigError(msg) from None
        table = document.get("tool", {}).get("trio_wf", {})
        if not isinstance(table, Mapping):
            msg = f"{path}: [tool.trio_wf] must be a table"
            raise ConfigError(msg)
        return path, table
    return None


def worker_type(text: str) -> str:
    """A ``--worker-type`` value, checked."""
    if text not in WORKER_TYPES:
        msg = f"must be one of {', '.join(WORKER_TYPES)}, got {quote(text)}"
        raise argparse.ArgumentTypeError(msg)
    return text


def workers(text: str) -> int | Literal["auto"]:
    """A ``--workers`` value: a positive count, or ``auto`` (one per CPU)."""
    if text == "auto":
        return "auto"
    return positive_int(text)


def positive_int(text: str) -> int:
    """A positive integer given as text."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, got {quote(text)}"
        raise argparse.ArgumentTypeError(msg)
    return value


def seconds(text: str) -> float:
    """A non-negative number of seconds given as text."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        msg = f"must be a non-negative number of seconds, got {quote(text)}"
        raise argparse.ArgumentTypeError(msg)
    return value
