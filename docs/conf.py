"""Sphinx configuration for the trio_wf documentation."""

from __future__ import annotations

import inspect
import re
import sys
from typing import TYPE_CHECKING

import trio_wf

if TYPE_CHECKING:
    from sphinx.application import Sphinx

project = "trio_wf"
author = "trio_wf developers"
copyright = "trio_wf developers"  # noqa: A001  (Sphinx reads this name)
release = trio_wf.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxcontrib_trio",  # shows async functions as `await`, `async with` for CMs
]

exclude_patterns = ["_build"]
# Single backticks are cross-references, as in the docstrings (and trio's docs).
default_role = "py:obj"
nitpicky = True
# No intersphinx: CI reaches only the package registries.  References to the
# standard library, Trio and tricycle cannot resolve, so they are ignored, by module.
# (Sphinx already lets references to builtins such as `TypeError` through.)
_UNLINKED_MODULES = (
    "atexit",
    "collections.abc",
    "functools",
    "multiprocessing",
    "os",
    "pickle",
    "select",
    "signal",
    "subprocess",
    "sys",
    "trio",
    "tricycle",
)
_UNLINKED = "|".join(re.escape(module) for module in _UNLINKED_MODULES)
nitpick_ignore_regex = [
    (r"py:.*", rf"({_UNLINKED})(\..+)?"),
    # The library's own type variables, as they appear in signatures.
    ("py:class", r"(trio_wf(\._\w+)+\.)?(R|T|Ts)"),
]

# sphinxcontrib-trio extends the class-based autodoc; Sphinx 9's rewrite bypasses
# part of it (defaults then render as ``<class 'bool'>``), so ask for the old one.
autodoc_use_legacy_class_based = True
autodoc_member_order = "bysource"
# Show defaults as written (``init=bool``), not as reprs (``<class 'bool'>``).
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"trio_wf {release}"


def _defining_module(app: Sphinx, modname: str, attribute: str) -> str | None:
    """Point viewcode's [source] links at the private module defining a name.

    `trio_wf` (and `trio_wf._dask`) re-export their names and rewrite their
    ``__module__``, so viewcode would look for them in the ``__init__.py`` and
    find nothing.
    """
    if modname not in ("trio_wf", "trio_wf._dask"):
        return None
    name = attribute.split(".")[0]
    obj = getattr(sys.modules[modname], name, None)
    for candidate, module in sorted(sys.modules.items()):
        if (
            candidate.startswith(("trio_wf.", "_trio_wf_worker."))
            and getattr(module, name, None) is obj
            and re.search(
                rf"^(async )?(def|class) {name}\b",
                inspect.getsource(module),
                re.MULTILINE,
            )
        ):
            return candidate
    return None


def setup(app: Sphinx) -> None:
    app.connect("viewcode-follow-imported", _defining_module)
