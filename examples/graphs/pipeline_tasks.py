"""The tasks of ``pipeline.json``: a small image-processing pipeline in pure Python.

An "image" is a list of rows of ints (0-255).  ``make_image`` draws a noisy
gradient from a seed; each ``smooth_band`` task smooths one horizontal band of
it (a CPU-bound 3x3 box filter, run ``passes`` times); ``assemble`` joins the
bands; ``refine`` smooths the whole image once more per loop iteration until its
roughness falls below a threshold; ``summarize`` reports the result.

The bands overlap by ``passes`` rows, so the assembled image is exactly the
image smoothed as a whole: the result does not depend on the number of bands.
The graph names these functions as ``pipeline_tasks.py::name``, a path relative
to the graph file, so this module is loaded by the workers, by path.
"""

from __future__ import annotations

import itertools
import random
import zlib
from typing import Any

Image = list[list[int]]


def make_image(seed: int, width: int, height: int) -> Image:
    """A diagonal gradient with uniform noise of amplitude 64."""
    rng = random.Random(seed)
    scale = 191 / max(width + height - 2, 1)
    return [
        [int((x + y) * scale) + rng.randrange(64) for x in range(width)]
        for y in range(height)
    ]


def smooth_band(image: Image, index: int, bands: int, passes: int) -> Image:
    """Rows ``[start, stop)`` of ``image`` smoothed ``passes`` times.

    Each pass moves information one row, so the band is filtered with
    ``passes`` extra rows on each side, then cut out.
    """
    height = len(image)
    start, stop = height * index // bands, height * (index + 1) // bands
    top, bottom = max(start - passes, 0), min(stop + passes, height)
    rows = image[top:bottom]
    for _ in range(passes):
        rows = _box_filter(rows)
    return rows[start - top : stop - top]


def assemble(*bands: Image) -> Image:
    """The bands, top to bottom, as one image."""
    return [row for band in bands for row in band]


def refine(
    image: Image, threshold: float, iteration: int = 0, **_: Any
) -> dict[str, Any]:
    """One more smoothing pass; ``smooth`` once roughness < ``threshold``."""
    image = _box_filter(image)
    value = roughness(image)
    return {
        "image": image,
        "roughness": value,
        "iteration": iteration + 1,
        "smooth": value < threshold,
    }


def summarize(image: Image, roughness: float, iteration: int) -> dict[str, Any]:
    """What the pipeline prints: size, loop count, roughness, mean, checksum."""
    pixels = [value for row in image for value in row]
    return {
        "size": f"{len(image[0])}x{len(image)}",
        "refinements": iteration,
        "roughness": round(roughness, 4),
        "mean": round(sum(pixels) / len(pixels), 4),
        "crc32": f"{zlib.crc32(bytes(pixels)):08x}",
    }


def roughness(image: Image) -> float:
    """Mean absolute difference between horizontal and vertical neighbours."""
    total = 0
    for above, below in itertools.pairwise(image):
        total += sum(abs(a - b) for a, b in zip(above, below, strict=True))
    for row in image:
        total += sum(abs(a - b) for a, b in itertools.pairwise(row))
    height, width = len(image), len(image[0])
    return total / ((height - 1) * width + height * (width - 1))


def _box_filter(rows: Image) -> Image:
    """The mean of each 3x3 neighbourhood, edge pixels repeated outwards.

    Inside an image the first and last rows of a band are only context: they
    come out approximate, and smooth_band cuts them off.
    """
    height = len(rows)
    out = []
    for y in range(height):
        up = rows[y - 1] if y > 0 else rows[0]
        down = rows[y + 1] if y < height - 1 else rows[-1]
        columns = [a + b + c for a, b, c in zip(up, rows[y], down, strict=True)]
        padded = [columns[0], *columns, columns[-1]]
        out.append(
            [
                (left + middle + right) // 9
                for left, middle, right in zip(
                    padded, padded[1:], padded[2:], strict=False
                )
            ]
        )
    return out
