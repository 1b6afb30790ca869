"""Contract tests: ``trio-wf report`` makes one self-contained page of a real
run's trace, which a real browser (headless Chromium) draws."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from .helpers import graph, link, method, run_cli

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a run on two workers: three nodes succeed, one fails, one
    is skipped."""
    tmp_path = tmp_path_factory.mktemp("report")
    nodes = [method(n, "sleep", inputs={"seconds": 0.3}) for n in "abc"]
    nodes += [method("bad", "fail", label="the failing one", inputs={"message": "no"})]
    nodes += [method("after", "add", inputs={"a": 1})]
    document = graph(nodes, [link("a", "bad"), link("bad", "after")])
    (tmp_path / "graph.json").write_text(json.dumps(document))
    trace = tmp_path / "run.json"
    result = run_cli(
        "run", str(tmp_path / "graph.json"), "-n", "2", "--trace", str(trace)
    )
    assert result.returncode == 1, result.stderr
    result = run_cli("report", str(trace), "-o", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "report.html"


class Elements(HTMLParser):
    """The start tags of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_class(self, tag: str, name: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for t, attrs in self.tags
            if t == tag and name in (attrs.get("class") or "").split()
        ]


def elements(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def test_the_page_is_self_contained(report: Path) -> None:
    """No script, stylesheet, image or font from anywhere: it opens offline."""
    page = elements(report.read_text())
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "img", "iframe"), (tag, attrs)
        for name in ("src", "href"):
            assert not (attrs.get(name) or "").startswith(("http", "//")), attrs
    assert "@import" not in report.read_text()
    assert "url(http" not in report.read_text()


def test_the_page_draws_nodes_lanes_and_errors(report: Path) -> None:
    """Every node with its state, a lane per worker, every run and the error."""
    page = elements(report.read_text())
    states = {a["data-node"]: a["class"] for a in page.with_class("g", "node")}
    assert states == {
        "a": "node status-succeeded",
        "b": "node status-succeeded",
        "c": "node status-succeeded",
        "bad": "node status-failed",
        "after": "node status-skipped-ancestor-failed",
    }
    assert len(page.with_class("g", "lane")) == 2
    runs = page.with_class("g", "run")
    assert sorted(r["data-node"] or "" for r in runs) == ["a", "b", "bad", "c"]
    assert "ValueError: no" in report.read_text()
    assert ", in fail\n" in report.read_text()


def test_a_file_that_is_not_a_trace_is_refused(tmp_path: Path) -> None:
    """report: exit 2 for a missing file, or JSON that is not one of our traces."""
    (tmp_path / "other.json").write_text('{"traceEvents": []}')
    result = run_cli("report", str(tmp_path / "other.json"))
    assert result.returncode == 2
    assert "is not a trace written by trio-wf run --trace" in result.stderr
    result = run_cli("report", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless browser: apt-get install chromium (.ci/run does)")


def run_browser(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[Any]:
    return subprocess.run(
        [
            browser(),
            *BROWSER_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            *arguments,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_a_browser_draws_the_report(report: Path, tmp_path: Path) -> None:
    """Headless Chromium, offline: its DOM has every node and lane, and its
    screenshot shows the states' colours (green, red) and the run bars (blue)."""
    from PIL import Image

    url = report.as_uri()
    dom = run_browser(tmp_path, "--dump-dom", url).stdout.decode()
    page = elements(dom)
    assert len(page.with_class("g", "node")) == 5
    assert len(page.with_class("g", "lane")) == 2
    assert len(page.with_class("g", "run")) == 4
    shot = tmp_path / "report.png"
    run_browser(tmp_path, f"--screenshot={shot}", "--window-size=1200,1000", url)
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        colours = {colour for _, colour in pixels.getcolors(1 << 20) or []}
        assert len(colours) > 20  # not blank
        assert (0xD9, 0xF2, 0xDC) in colours  # a succeeded node
        assert (0xFB, 0xDA, 0xDA) in colours  # the failed node
        assert (0x4C, 0x8B, 0xF5) in colours  # a run on a worker's lane
