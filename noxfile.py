"""The one entry point for checks: ``nox`` runs tests, lint, typing and docs.

``nox -s tests-3.12 -- -k cancel`` passes what follows ``--`` to pytest, and
``nox -s bench -- ARGS`` to ``benchmarks/run.py``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
# Every Python the classifiers claim must run in CI (CI=true): a missing one fails
# the run there.  On a contributor's machine, missing ones are skipped.  Never
# download an interpreter: CI reaches only the package registries.
nox.options.error_on_missing_interpreters = "CI" in os.environ
nox.options.download_python = "never"

ROOT = pathlib.Path(__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The Pythons we support are the ones the classifiers name, so they cannot drift.
PYTHONS = [
    classifier.rsplit(" ", 1)[-1]
    for classifier in PYPROJECT["project"]["classifiers"]
    if classifier.startswith("Programming Language :: Python :: 3.")
]
# Tool versions that can break the build are pinned; bump them on purpose.
RUFF = "ruff==0.17.6"
LINT_PATHS = [
    "trio_wf",
    "_trio_wf_worker",
    "tests",
    "examples",
    "benchmarks",
    "docs",
    "noxfile.py",
]
# mypy reads what to check, and how strictly, from [tool.mypy]; stub packages for
# dependencies that ship no types go here too.
TYPING_DEPS = ["mypy>=1.11,<2.5", "typing_extensions>=4.6"]
# Warnings fail the build (-W), all of them are shown (--keep-going), and so are
# references that resolve to nothing (-n).
SPHINX_BUILD = [
    "sphinx-build",
    "-W",
    "--keep-going",
    "-n",
    "-b",
    "html",
    "docs",
    "docs/_build/html",
]
# What the benchmarks compare trio_wf with (bench-only, never runtime deps):
# trio-parallel pinned to the 1.3 series the targets in issue 5 are quoted against,
# anyio for to_process under trio, loky for its reusable executor, and numpy for
# the optional numpy payload row.
BENCH_DEPS = ["trio-parallel==1.3.*", "anyio>=4.0", "loky>=3.4", "numpy"]

# The stress session: the fault rows where a race would show (crashes, kills,
# dead workers, cancellation), each repeated 50 times in a row, in file order.
STRESS_DEPS = ["pytest-repeat>=0.9"]
STRESS_ARGS = [
    "-p",
    "no:randomly",
    "tests/test_faults.py",
    "tests/test_run_sync.py",
    "-k",
    "crash or cancel or dead or kill",
    "--count=50",
    "--repeat-scope=function",
    "-q",
]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install(".[test]")

    # tests/conftest.py refuses to run against the checkout's trio_wf/ when this
    # is set: the suite must exercise the wheel that was just installed.
    session.run("pytest", *session.posargs, env={"TRIO_WF_TEST_INSTALLED": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install(RUFF)
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def typing(session: nox.Session) -> None:
    # With the Dask extra: trio_wf/_dask.py is checked against distributed's types.
    session.install(".[dask]", *TYPING_DEPS)

    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    shutil.rmtree(ROOT / "docs" / "_build", ignore_errors=True)
    # With the Dask extra: autodoc imports open_dask_context for the Scaling page.
    session.install(".[docs,dask]")

    session.run(*SPHINX_BUILD)


@nox.session(default=False)
def stress(session: nox.Session) -> None:
    """The crash and cancel rows of the fault matrix, 50 times over.

    Not part of the default sessions (it takes several minutes); a nightly job
    runs it, and none of its runs may fail.  ``-- --count=5`` runs fewer rounds.
    """
    session.install(".[test]", *STRESS_DEPS)

    session.run("pytest", *STRESS_ARGS, *session.posargs)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """The hostile-graph property test with 20,000 random examples, not 300.

    Not a default session (it takes minutes); hypothesis keeps the failing
    examples it finds in ``.hypothesis/`` and tries them first next time.
    ``-- --hypothesis-seed=N`` repeats a run.
    """
    session.install(".[test]")

    session.run(
        "pytest",
        "tests/workflow/test_hostile_graphs.py",
        # One test of many minutes: no per-test timeout, no stack dumps.
        "--timeout=0",
        "-o",
        "faulthandler_timeout=0",
        *session.posargs,
        env={"TRIO_WF_HYPOTHESIS_PROFILE": "fuzz", "TRIO_WF_TEST_INSTALLED": "1"},
    )


# What benchmarks/dask_workflow_bench.py compares trio_wf with, bench-only too.
DASK_BENCH_DEPS = ["ewoksdask>=3.0"]


@nox.session(default=False)
def dask_bench(session: nox.Session) -> None:
    """Workflows on a Dask cluster: trio_wf's node throughput beside ewoksdask's."""
    session.install(".[dask]", *DASK_BENCH_DEPS)
    # From the benchmarks directory: the cluster's workers import the graphs'
    # task module from there.
    session.chdir(ROOT / "benchmarks")
    session.run("python", "dask_workflow_bench.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    script = ROOT / "benchmarks" / "run.py"
    session.install(".", *BENCH_DEPS)

    session.run("python", str(script), *session.posargs)
