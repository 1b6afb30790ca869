"""Make the README's pictures: docs/progress.png and docs/report.png.

Runs the example pipeline (on a small image, two workers), snapshots the live
progress display in the middle of the run, and makes the report of its trace;
headless Chromium turns both into PNG files.  Needs chromium and pillow::

    python docs/make_screenshots.py
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops
from rich.console import Console

from trio_wf.workflow import NodeEvent, execute_graph, load_graph
from trio_wf.workflow._cli_progress import RunCounts, _Display
from trio_wf.workflow._report import read_trace, report_html

ROOT = Path(__file__).resolve().parents[1]
INPUTS = [
    {"id": "make_image", "name": "width", "value": 256},
    {"id": "make_image", "name": "height", "value": 256},
]


def screenshot(page: Path, png: Path, width: int, height: int) -> None:
    """Draw ``page`` in headless Chromium, and keep what is not background."""
    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        msg = "needs chromium (apt-get install chromium)"
        raise SystemExit(msg)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    with Image.open(png) as image:
        picture = image.convert("RGB")
    background = Image.new("RGB", picture.size, picture.getpixel((0, 0)))
    box = ImageChops.difference(picture, background).getbbox()
    if box is not None:
        left, top, right, bottom = box
        margin = 12
        picture = picture.crop(
            (
                max(left - margin, 0),
                max(top - margin, 0),
                min(right + margin, picture.width),
                min(bottom + margin, picture.height),
            )
        )
    picture.save(png, optimize=True)


def main() -> None:
    graph = load_graph(ROOT / "examples" / "graphs" / "pipeline.json", inputs=INPUTS)
    counts = RunCounts(graph)
    name = graph.display_name.strip("'")
    frames: list[str] = []

    def on_event(event: NodeEvent) -> None:
        counts(event)
        if not frames and len(counts.running) == 2 and len(counts.done) >= 3:
            console = Console(
                record=True, width=88, file=io.StringIO(), force_terminal=True
            )
            console.print(_Display(counts, name))
            title = "trio-wf run examples/graphs/pipeline.json -n 2"
            frames.append(console.export_svg(title=title))

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "run.json"
        options: dict[str, Any] = {"max_workers": 2, "on_event": on_event}
        execute_graph(graph, trace=trace, **options)
        progress = Path(tmp) / "progress.svg"
        progress.write_text(frames[0])
        screenshot(progress, ROOT / "docs" / "progress.png", 1000, 400)
        report = Path(tmp) / "report.html"
        report.write_text(report_html(read_trace(trace)))
        screenshot(report, ROOT / "docs" / "report.png", 1440, 1150)


if __name__ == "__main__":
    main()
