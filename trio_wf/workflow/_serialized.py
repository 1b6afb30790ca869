"""Graphs as ewokscore writes them: serialized values, YAML tuples.

ewokscore writes YAML with ``yaml.dump``, which tags tuples (such as a path
into nested sub-graphs) ``!!python/tuple``, and reads it back with PyYAML's
unsafe loader, which builds any Python object a tag names.  `load_yaml` reads
plain data plus those tuples, and nothing else.

ewokscore 5 writes ``"__ewoks_serialize__": {"serializer": ...,
"serializer_version": "1.0.0"}`` at the top of a graph file.  With no
serializer, or ``"json"``, the values are plain JSON.  With ``"json_pickle"``
(or ``"hdf5_pickle"``), values that are not JSON types are encoded, some as
pickles, which decoding loads: decoding a graph can run any code its author
chose.  So those graphs load only when trusted, after the allow-list has
accepted their tasks, and are decoded by ewokscore's own decoder (imported
only then).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from .._util import quote
from ._errors import GraphValidationError

KEY = "__ewoks_serialize__"
#: Serializers whose values are plain data.
PLAIN = (None, "json")
#: Serializers whose values may be pickles.
PICKLING = ("json_pickle", "hdf5_pickle")


def pickling_serializer(document: Any, what: str) -> str | None:
    """The serializer of ``document`` if decoding its values may unpickle.

    Raises:
        GraphValidationError: ewokscore knows no such serializer.
    """
    if not isinstance(document, Mapping):
        return None  # the parser says what is wrong
    info = document.get(KEY)
    if info is None:
        return None
    serializer = info.get("serializer") if isinstance(info, Mapping) else info
    if serializer in PLAIN:
        return None
    if serializer in PICKLING:
        assert isinstance(serializer, str)
        return serializer
    known = ", ".join(repr(name) for name in PLAIN + PICKLING)
    msg = f"{what}: {KEY} names serializer {quote(serializer)}; ewokscore's are {known}"
    raise GraphValidationError(msg)


def refusal(what: str, serializer: str) -> GraphValidationError:
    """The error for an untrusted graph whose values may be pickles."""
    msg = (
        f"{what} was saved by ewokscore with the {quote(serializer)} serializer: its "
        f"values may be pickles, and loading a pickle can run any code, so it "
        f"is decoded only for a trusted graph.  If you trust where it comes "
        f"from, load it with load_graph(..., trusted=True) (trio-wf run "
        f"--trusted; the trio engine of ewoks loads graphs trusted)"
    )
    return GraphValidationError(msg)


def decoded(document: Mapping[str, Any], what: str) -> Any:
    """``document`` with its values decoded by ewokscore (pickles loaded).

    Only for a trusted graph whose tasks the allow-list accepted.  The
    document is not modified.
    """
    try:
        from ewokscore._serialization.common import post_deserialize
        from ewokscore.graph.serialize import _pop_serialize_info
    except ImportError as exc:
        msg = (
            f"{what} was saved by ewokscore with a serializer; decoding it needs "
            f"ewokscore: pip install 'trio-wf[ewoks]'"
        )
        raise GraphValidationError(msg) from exc
    try:
        return post_deserialize(document, pop_serialize_info=_pop_serialize_info)
    except Exception as exc:
        msg = f"{what}: ewokscore cannot decode it: {type(exc).__name__}: {exc}"
        raise GraphValidationError(msg) from exc


def load_yaml(text: str) -> Any:
    """YAML text as plain data (``safe_load``), tuples included."""
    return _yaml().load(text, Loader=_tuple_loader())


def _yaml() -> Any:
    # Imported when needed: JSON users need not pay for it.
    return importlib.import_module("yaml")


@functools.cache
def _tuple_loader() -> Any:
    """PyYAML's safe loader, which also builds ``!!python/tuple``."""
    yaml = _yaml()

    class TupleLoader(yaml.SafeLoader):  # type: ignore[misc, name-defined]
        pass

    def construct_tuple(loader: Any, node: Any) -> tuple[Any, ...]:
        return tuple(loader.construct_sequence(node))

    TupleLoader.add_constructor("tag:yaml.org,2002:python/tuple", construct_tuple)
    return TupleLoader
