"""Reading a graph document: from a dict, JSON text, or a JSON or YAML file.

A ``str`` is JSON text only when its first character, after whitespace, is
``{``; any other ``str`` is a path, like an `os.PathLike`.  (A path such as
``run{1}.json`` is a path; pass a ``pathlib.Path`` for one that starts with
``{``.)  Only regular files are read, so that a FIFO or a device named as a
(sub-)graph cannot block the load; every file read for one graph is read once,
and counts once towards `MAX_GRAPH_BYTES`.

Whatever its form, a document is then measured (`measure`) against the limits
of `._limits` before anything else reads it.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from typing import Any

from .._util import quote
from . import _limits
from ._errors import GraphValidationError
from ._serialized import load_yaml

# The whitespace JSON allows before a value (str.isspace() takes more).
_JSON_TEXT = re.compile(r"[ \t\n\r]*\{")


def read_source(
    source: Mapping[str, Any] | str | os.PathLike[str], reader: FileReader
) -> tuple[Any, str | None, int]:
    """The graph document, the directory relative paths start from (None: the
    current one), and how many values it holds.

    Raises:
        GraphValidationError: the text or file is too big, too deep, not
            valid JSON or YAML, or not a regular file.
        TypeError: ``source`` is not a dict, a str or a path.
        OSError: the file cannot be read (`FileNotFoundError` if it does not
            exist); the message quotes the path, cut if it is long.
    """
    if isinstance(source, Mapping):
        return source, None, measure(source, "the graph")
    if isinstance(source, str) and _JSON_TEXT.match(source):
        document = parse_text(source, "json", "graph JSON string")
        return document, None, measure(document, "graph JSON string")
    checked: object = source  # callers may pass anything
    if not isinstance(checked, (str, os.PathLike)):
        msg = (
            f"a graph must be a dict, a JSON string or a file path, "
            f"got {type(checked).__name__}"
        )
        raise TypeError(msg)
    return reader(os.fspath(source))


class FileReader:
    """Reads the graph files of one load: each once, all of them together
    no more than `MAX_GRAPH_BYTES`."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.documents: dict[str, tuple[Any, str, int]] = {}

    def __call__(self, path: str) -> tuple[Any, str, int]:
        """A file's document, its directory and how many values it holds."""
        if path not in self.documents:
            self.documents[path] = self._read(path)
        return self.documents[path]

    def _read(self, path: str) -> tuple[Any, str, int]:
        what = f"graph file {quote(path)}"
        data = self._bytes(path, what)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            msg = f"{what} is not UTF-8 text: {exc}"
            raise GraphValidationError(msg) from exc
        base_dir = os.path.dirname(os.path.abspath(path))
        extension = os.path.splitext(path)[1].lower()
        if extension == ".json":
            document = parse_text(text, "json", what)
        elif extension in (".yml", ".yaml"):
            document = parse_text(text, "yaml", what)
        else:
            try:
                document = parse_text(text, "json", what)
            except GraphValidationError:
                document = parse_text(text, "yaml", what)
        return document, base_dir, measure(document, what)

    def _bytes(self, path: str, what: str) -> bytes:
        try:
            # Non-blocking: opening a FIFO for reading would otherwise wait
            # for a writer.  What was opened is checked, not what the path
            # named a moment before.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            # The OSError's own message would repeat the whole path.
            raise type(exc)(exc.errno, f"{exc.strerror}: {what}") from None
        with open(fd, "rb") as file:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                msg = f"{what} is not a regular file"
                raise GraphValidationError(msg)
            limit = _limits.MAX_GRAPH_BYTES
            if info.st_size > limit:
                msg = f"{what} is {info.st_size} bytes, more than {limit}"
                raise GraphValidationError(msg)
            data = file.read(limit + 1)
        self.read_bytes += len(data)
        if self.read_bytes > limit:
            msg = (
                f"{what}: the graph and its sub-graph files are more than "
                f"{limit} bytes together"
            )
            raise GraphValidationError(msg)
        return data


def parse_text(text: str, kind: str, what: str) -> Any:
    """Parse JSON or YAML text into plain data."""
    if len(text) > _limits.MAX_GRAPH_BYTES:
        msg = f"{what} is longer than {_limits.MAX_GRAPH_BYTES} characters"
        raise GraphValidationError(msg)
    try:
        if kind == "json":
            return json.loads(text)
        # Plain data and tuples only, never objects named by tags.
        return load_yaml(text)
    except RecursionError:
        msg = f"{what} is nested more than {_limits.MAX_GRAPH_DEPTH} levels deep"
        raise GraphValidationError(msg) from None
    except ValueError as exc:  # json.JSONDecodeError, an int of 5000 digits
        msg = f"{what} is not valid JSON: {exc}"
        raise GraphValidationError(msg) from exc
    except Exception as exc:  # yaml.YAMLError
        msg = f"{what} is not valid YAML: {exc}"
        raise GraphValidationError(msg) from exc


def measure(document: Any, what: str) -> int:
    """How many values ``document`` holds, each shared one counted every time
    it appears; refuse it if it nests too deep or holds too many.

    YAML aliases, and objects a dict shares, let a small document stand for a
    huge one (an "alias bomb").  Each container's count is worked out once
    and reused wherever it appears again, so measuring costs the document's
    size, not what it stands for.  A container inside itself nests without
    end: it is refused as too deep.  Iterative: no recursion limit applies.

    Raises:
        GraphValidationError: lists and dicts nest deeper than
            `MAX_GRAPH_DEPTH`, or there are more than `MAX_GRAPH_VALUES`.
    """
    depth_limit, value_limit = _limits.MAX_GRAPH_DEPTH, _limits.MAX_GRAPH_VALUES
    too_many = (
        f"{what} holds more than {value_limit} values once its aliases (or "
        f"shared objects) are expanded"
    )
    root = _children(document)
    if root is None:
        return 1
    counted: dict[int, int] = {}  # id of a container measured whole: its count
    # One frame per open container: [container, its values, count so far].
    # Counts only grow towards the root, so any count over the limit is too many.
    stack: list[list[Any]] = [[document, root, 1]]
    while True:
        frame = stack[-1]
        opened = None
        for child in frame[1]:
            children = _children(child)
            if children is None:
                frame[2] += 1
            elif id(child) in counted:
                frame[2] += counted[id(child)]
            elif len(stack) >= depth_limit:
                msg = f"{what} is nested more than {depth_limit} levels deep"
                raise GraphValidationError(msg)
            else:
                opened = [child, children, 1]
                break
            if frame[2] > value_limit:
                raise GraphValidationError(too_many)
        if opened is not None:
            stack.append(opened)
            continue
        stack.pop()
        count: int = frame[2]
        if not stack:
            return count
        # A container inside itself is still open: it is never counted, and
        # opens again until it is too deep.
        counted[id(frame[0])] = count
        stack[-1][2] += count
        if stack[-1][2] > value_limit:
            raise GraphValidationError(too_many)


def _children(value: Any) -> Any:
    """An iterator over a container's values, or None for a leaf."""
    if isinstance(value, dict):
        return iter(value.values())
    if isinstance(value, (list, tuple)):
        return iter(value)
    return None
