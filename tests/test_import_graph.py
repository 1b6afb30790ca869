"""Static tests of the module structure: no import cycles in the installed packages.

Neither contract nor collaboration: nothing runs.  Every module of ``trio_wf`` and
``_trio_wf_worker`` is parsed with `ast`, and each import of one of their modules
becomes an edge, wherever it is written: a function-level import made to dodge a
cycle is still a cycle.  Imports under ``if TYPE_CHECKING:`` are left out of the
run-time graph (they never run), but not of the stricter typing graph, which
keeps two modules from depending on each other's names even for annotations.
Importing a module also runs its parent packages' ``__init__``; those implicit
edges are left out, as every import tool does, since each would close a cycle
with the package's own re-exports.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import _trio_wf_worker
import trio_wf

PACKAGES = (trio_wf, _trio_wf_worker)

ImportGraph = dict[str, set[str]]


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """The dotted name of every module under the package directory ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    # `TYPE_CHECKING`, `typing.TYPE_CHECKING` or `_typing.TYPE_CHECKING`.
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def _imports(tree: ast.AST, *, type_checking: bool) -> Iterator[ast.stmt]:
    """Every import statement in ``tree``, at any depth."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif (
            isinstance(child, ast.If)
            and _is_type_checking(child.test)
            and not type_checking
        ):
            for statement in child.orelse:
                yield from _imports(statement, type_checking=type_checking)
        else:
            yield from _imports(child, type_checking=type_checking)


def _targets(
    statement: ast.stmt, module: str, is_package: bool, modules: Mapping[str, Path]
) -> Iterator[str]:
    """The modules of ``modules`` an import statement imports."""
    if isinstance(statement, ast.Import):
        yield from (alias.name for alias in statement.names if alias.name in modules)
        return
    assert isinstance(statement, ast.ImportFrom)
    if statement.level:
        # `from . import x` in a package's __init__ is relative to the package
        # itself; in a plain module, to the package containing it.
        parts = module.split(".")
        keep = len(parts) - statement.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([statement.module] if statement.module else []))
    else:
        base = statement.module or ""
    for alias in statement.names:
        # `from pkg import name` imports the module pkg.name if there is one,
        # else a name of pkg.
        if f"{base}.{alias.name}" in modules:
            yield f"{base}.{alias.name}"
        elif base in modules:
            yield base


def import_graph(modules: Mapping[str, Path], *, type_checking: bool) -> ImportGraph:
    """Module name to the names of the modules (of ``modules``) it imports."""
    graph: ImportGraph = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges = graph.setdefault(module, set())
        for statement in _imports(tree, type_checking=type_checking):
            edges.update(_targets(statement, module, is_package, modules))
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """A cycle of the graph, its first module repeated at the end, or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        # graphlib lists it the way dependencies run: a <- b <- a.
        return list(reversed(error.args[1]))
    return None


def installed_modules() -> dict[str, Path]:
    """Every module of the installed trio_wf and _trio_wf_worker."""
    modules = {}
    for package in PACKAGES:
        assert package.__file__ is not None
        root = Path(package.__file__).parent
        modules.update(package_modules(root, package.__name__))
    return modules


@pytest.mark.parametrize("type_checking", [False, True], ids=["runtime", "typing"])
def test_the_packages_have_no_import_cycle(type_checking: bool) -> None:
    """No module imports, even indirectly, a module that imports it back."""
    modules = installed_modules()
    assert "trio_wf.workflow._graph" in modules  # the walk found the package
    cycle = find_cycle(import_graph(modules, type_checking=type_checking))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def write_package(root: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package_modules(root / "pkg", "pkg")


def test_a_function_level_import_closes_a_cycle(tmp_path: Path) -> None:
    """An import inside a function counts: it only delays the cycle."""
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "from ._a import f\n",
            "_a.py": "def f():\n    from . import _b\n",
            "_b.py": "from ._a import f\n",
        },
    )
    cycle = find_cycle(import_graph(modules, type_checking=False))
    assert cycle is not None
    assert cycle in (["pkg._a", "pkg._b", "pkg._a"], ["pkg._b", "pkg._a", "pkg._b"])


def test_absolute_and_subpackage_imports_close_a_cycle(tmp_path: Path) -> None:
    """``import pkg.sub._x`` and ``from .. import _y`` are edges like any other."""
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "_y.py": "import pkg.sub._x\n",
            "sub/__init__.py": "",
            "sub/_x.py": "from .. import _y\n",
        },
    )
    graph = import_graph(modules, type_checking=False)
    assert graph["pkg._y"] == {"pkg.sub._x"}
    assert graph["pkg.sub._x"] == {"pkg._y"}
    assert find_cycle(graph) is not None


def test_a_type_checking_import_breaks_only_the_runtime_cycle(tmp_path: Path) -> None:
    """An annotation-only import never runs, but still ties the two modules."""
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "_a.py": "from ._b import B\n",
            "_b.py": (
                "import typing\n"
                "if typing.TYPE_CHECKING:\n"
                "    from ._a import A\n"
                "else:\n"
                "    import json\n"
            ),
        },
    )
    assert find_cycle(import_graph(modules, type_checking=False)) is None
    assert find_cycle(import_graph(modules, type_checking=True)) is not None


def test_the_parent_package_is_not_an_edge_of_from_imports(tmp_path: Path) -> None:
    """``from . import _b`` depends on ``_b``, not on the package re-exporting it."""
    modules = write_package(
        tmp_path,
        {
            "__init__.py": "from ._a import A\n",
            "_a.py": "from . import _b\nA = 1\n",
            "_b.py": "",
        },
    )
    graph = import_graph(modules, type_checking=True)
    assert graph == {"pkg": {"pkg._a"}, "pkg._a": {"pkg._b"}, "pkg._b": set()}
