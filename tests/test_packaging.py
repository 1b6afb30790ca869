"""Contract tests of the distribution the suite runs against: what the wheel holds."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

import _trio_wf_worker
import trio_wf

CHECKOUT = Path(__file__).resolve().parent.parent


def _distribution() -> importlib.metadata.Distribution:
    dist = importlib.metadata.distribution("trio-wf")
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        pytest.skip("an editable install has no wheel to inspect (nox installs one)")
    return dist


def test_wheel_holds_the_two_packages_only() -> None:
    """The wheel installs trio_wf and the trio-free worker package, nothing else
    (its console script aside), with both licence texts."""
    dist = _distribution()
    files = [str(path) for path in dist.files or ()]
    tops = {path.split("/")[0] for path in files if not path.startswith("..")}
    info = f"trio_wf-{dist.version}.dist-info"
    assert tops == {"trio_wf", "_trio_wf_worker", info}
    licences = {Path(p).name for p in files if p.startswith(f"{info}/licenses/")}
    assert licences == {"LICENSE-APACHE", "LICENSE-MIT"}


def test_tests_import_the_installed_packages() -> None:
    """Both packages come from the installed distribution, not from the checkout
    whose top level holds the same directories."""
    dist = _distribution()
    for package in (trio_wf, _trio_wf_worker):
        where = Path(str(package.__file__)).resolve().parent
        assert where == Path(str(dist.locate_file(package.__name__))).resolve()
        assert where.parent != CHECKOUT
