"""Small helpers shared by the public modules."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


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
