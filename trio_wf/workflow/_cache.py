"""Persistence of node outputs, so that a re-run executes only what did not succeed.

Each successful node's outputs are pickled into ``<cache_dir>/<key>.pickle``,
where the key is a SHA-256 over the task (type and identifier) and its inputs:
values given in the graph or with ``inputs=`` count by value, values received
over a link by the key of the node that produced them (as ewokscore's uhash),
so a key is cheap to compute however large the data.  A node whose key has a
file is not run again; its outputs are read back.

Pickle files run code when read: the directory must be the caller's own, which
`ResultCache.open` checks (owner, and not writable by others) where POSIX allows.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

import trio

from .._util import quote
from ._graph import InputName, Node

# Changes whenever the key's recipe or the file format changes.
_VERSION = b"trio_wf-cache-1\0"
_SUFFIX = ".pickle"

#: Where an input's value came from: ``("value", value)``, or a link's
#: ``("link", upstream key, source output or None for the whole dict)``.
Provenance = tuple[Any, ...]


class ResultCache:
    """A directory of pickled node outputs, keyed by task and inputs."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> ResultCache:
        """Create the directory (mode 0700) if needed, and check that it is ours."""
        path = os.path.abspath(os.fspath(directory))
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
        if not stat.S_ISDIR(info.st_mode):  # pragma: no cover, makedirs raised
            msg = f"cache_dir {quote(path)} is not a directory"
            raise NotADirectoryError(msg)
        if hasattr(os, "getuid"):
            if info.st_uid != os.getuid():
                msg = (
                    f"cache_dir {quote(path)} belongs to another user: its pickle "
                    f"files could run their code as you; use a directory of yours"
                )
                raise PermissionError(msg)
            if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                msg = (
                    f"cache_dir {quote(path)} is writable by other users, who could "
                    f"plant pickle files that run code as you; chmod go-w it"
                )
                raise PermissionError(msg)
        return cls(path)

    def key(self, node: Node, provenance: Mapping[InputName, Provenance]) -> str | None:
        """The node's key, or None if an input value cannot be pickled."""
        digest = hashlib.sha256(_VERSION)
        # repr, not pickle, for names and keys: pickle's output depends on
        # which equal strings are one object, and a key must not.
        digest.update(repr((node.task_type, node.task_identifier)).encode())
        # Sorted by name, ints (positions) first: insertion order must not count.
        for name, source in sorted(
            provenance.items(),
            key=lambda item: (isinstance(item[0], str), str(item[0])),
        ):
            if source[0] == "link":
                part = repr((name, *source))
            else:
                try:
                    data = pickle.dumps(source[1], protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # an unpicklable value: this node is not cached
                    return None
                part = repr((name, "value", hashlib.sha256(data).hexdigest()))
            digest.update(b"\0" + part.encode())
        return digest.hexdigest()

    async def load(self, key: str) -> dict[str, Any] | None:
        """The stored outputs for ``key``, or None."""
        return await trio.to_thread.run_sync(self._load, key)

    async def store(self, key: str, outputs: Mapping[str, Any]) -> None:
        """Store ``outputs`` under ``key``, atomically; unpicklable ones are not."""
        await trio.to_thread.run_sync(self._store, key, outputs)

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key + _SUFFIX)

    def _load(self, key: str) -> dict[str, Any] | None:
        try:
            file = open(self._path(key), "rb")  # noqa: SIM115, closed below
        except OSError:  # missing, or unreadable: the node runs again
            return None
        with file:
            if hasattr(os, "getuid") and os.fstat(file.fileno()).st_uid != os.getuid():
                return None  # not written by us: never unpickle it
            try:
                outputs = pickle.load(file)
            except Exception:  # truncated by a crash of an older writer: rerun
                return None
        return outputs if isinstance(outputs, dict) else None

    def _store(self, key: str, outputs: Mapping[str, Any]) -> None:
        try:
            data = pickle.dumps(dict(outputs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a lock, a generator...: the node will run again
            return
        # mkstemp creates the file with mode 0600; os.replace makes it appear
        # whole or not at all, even if two runs store the same key at once.
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
