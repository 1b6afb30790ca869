"""What importing costs: the parent's ``import trio_wf`` and a spawned worker's own.

Each figure is the median wall time of fresh interpreters (``python -X importtime``
sums, so the interpreter's own start-up is left out), beside the floors they sit on:
``import trio`` for the parent, nothing for the worker.  Run it in a venv where
trio_wf is installed::

    python benchmarks/import_time.py [--runs 15]

A spawned worker runs the bootstrap of ``trio_wf._proc`` (it imports
``_trio_wf_worker._main``, never trio); its import time is part of every cold start.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

CASES = {
    "import trio (floor)": "import trio",
    "import trio_wf": "import trio_wf",
    "import trio_wf.workflow": "import trio_wf.workflow",
    "worker: import _trio_wf_worker._main": "import _trio_wf_worker._main",
}
_TOP = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$")


def import_us(code: str) -> int:
    """Microseconds spent importing in one fresh interpreter (top-level modules)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        # Top-level entries (no indentation before the name) hold their children.
        match = _TOP.match(line)
        if match:
            total += int(match[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"{'what':<40} {'median ms':>10} {'min ms':>8}")
    for label, code in CASES.items():
        times = [import_us(code) / 1000 for _ in range(args.runs)]
        print(f"{label:<40} {statistics.median(times):>10.1f} {min(times):>8.1f}")


if __name__ == "__main__":
    main()
