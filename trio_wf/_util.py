"""Small helpers shared by the public modules."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

#: How many characters of one value (a node id, a name...) a message quotes.
QUOTE_LIMIT = 200
#: How many items of a list of values a message names.
ITEMS_LIMIT = 10
#: The longest message of an error that quotes values it was given.
MESSAGE_LIMIT = 2000


class NoPublicConstructor(type):
    """Metaclass that hides a class's constructor behind a private ``_create``.

    ``SomeClass()`` raises `TypeError`; the library builds instances with
    ``SomeClass._create(...)``.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        msg = f"{cls.__module__}.{cls.__qualname__} has no public constructor"
        raise TypeError(msg)

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]


def is_int_at_least(value: object, minimum: int) -> bool:
    """Whether ``value`` is an ``int`` (not a ``bool``) of at least ``minimum``.

    For checking arguments at run time, whatever their annotations say.
    """
    return type(value) is not bool and isinstance(value, int) and value >= minimum


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Make public objects claim to live in ``module_name`` (for docs and pickle)."""
    seen: set[int] = set()

    def fix_one(qualname: str, name: str, obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        module = getattr(obj, "__module__", None)
        if module is not None and module.startswith(module_name + "."):
            obj.__module__ = module_name
            if hasattr(obj, "__name__") and "." not in obj.__name__:
                obj.__name__ = name
                obj.__qualname__ = qualname  # type: ignore[attr-defined]
            if isinstance(obj, type):
                for attr_name, attr_value in obj.__dict__.items():
                    fix_one(f"{qualname}.{attr_name}", attr_name, attr_value)

    for name, obj in namespace.items():
        if not name.startswith("_"):
            fix_one(name, name, obj)


class _BoundedRepr(reprlib.Repr):
    """`reprlib.Repr` that says how long a cut string is, and never fails on
    an int too long to convert (Python 3.11 refuses ints over 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxstring = self.maxother = QUOTE_LIMIT
        self.maxlong = 50
        self.maxtuple = self.maxlist = self.maxdict = ITEMS_LIMIT
        self.maxset = self.maxfrozenset = self.maxdeque = ITEMS_LIMIT

    def repr_str(self, x: str, level: int) -> str:
        if len(x) <= QUOTE_LIMIT:
            return repr(x)
        return f"{x[:QUOTE_LIMIT]!r}... ({len(x)} characters)"

    def repr_int(self, x: int, level: int) -> str:
        # About 3.3 bits a digit: anything under maxlong digits converts cheaply.
        if x.bit_length() <= self.maxlong * 3:
            return repr(x)
        return f"<an int of {x.bit_length()} bits>"


_repr = _BoundedRepr()


def quote(value: object) -> str:
    """A bounded `repr` of a value from a caller or a graph, for a message.

    A string longer than `QUOTE_LIMIT` shows its start, ``...`` and its full
    length; containers show their first `ITEMS_LIMIT` items, four levels
    deep; a huge int shows its size.  Linear at worst in the value's size,
    and it never raises, whatever the value.
    """
    try:
        return _repr.repr(value)
    except Exception:  # a value whose own __repr__ or __len__ fails
        return f"<{type(value).__name__} object>"


def quote_items(values: Iterable[object]) -> str:
    """``[a, b, ...]``: the first `ITEMS_LIMIT` values quoted, and how many
    there are in all if there are more."""
    values = list(values)
    shown = ", ".join(quote(value) for value in values[:ITEMS_LIMIT])
    if len(values) > ITEMS_LIMIT:
        shown += f", ... ({len(values)} in all)"
    return f"[{shown}]"


def shorten(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message``, or its start and end around ``...`` and its full length if
    it is longer than ``limit`` characters.

    A backstop for messages built around other messages (a sub-graph's error
    inside its parent's, a task's inside the run's): both ends say something.
    """
    if len(message) <= limit:
        return message
    keep = max(limit // 2 - 30, 1)
    return f"{message[:keep]} ... ({len(message)} characters) ... {message[-keep:]}"
