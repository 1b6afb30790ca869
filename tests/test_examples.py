"""Example tests: run each script in examples/ as a user would, and check its output.

The docs include these scripts verbatim, so a script that stops working, or whose
output changes, fails here before it misleads a reader.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
README = EXAMPLES.parent / "README.md"

# The whole stdout of each example, line by line: a string must equal its line, a
# pattern must match all of it (for lines with timings).
EXPECTED_STDOUT: dict[str, list[str | re.Pattern[str]]] = {
    "context.py": [
        "init ran in every worker: True",
        "6 calls, retired after 2 jobs each: True",
        "cancelled: True, result: None",
        "still usable after the kill: initialised",
    ],
    "fanout.py": [
        "primes in [0, 75000): 7393",
        "primes in [75000, 150000): 6455",
        "primes in [150000, 225000): 6172",
        "primes in [225000, 300000): 5977",
        "primes in [300000, 375000): 5907",
        "primes in [375000, 450000): 5802",
        "primes in [450000, 525000): 5736",
        "primes in [525000, 600000): 5656",
        "total: 49098 primes below 600000",
        # Timings on a shared 2-core CI machine are noise: check the form only.
        re.compile(
            r"speed-up: \d+\.\dx on \d+ CPUs "
            r"\(sequential \d+\.\d\d s, parallel \d+\.\d\d s\)"
        ),
    ],
}


def run_script(path: Path) -> str:
    """Run a Python script as a user would; it must exit 0 with an empty stderr."""
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_every_example_has_expected_output() -> None:
    """Every script in examples/ has its expected output listed here."""
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED_STDOUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_STDOUT))
def test_example(name: str) -> None:
    """The example exits 0, prints its expected lines and nothing on stderr."""
    stdout = run_script(EXAMPLES / name)
    lines = stdout.splitlines()
    expected = EXPECTED_STDOUT[name]
    assert len(lines) == len(expected), stdout
    for line, want in zip(lines, expected, strict=True):
        if isinstance(want, str):
            assert line == want
        else:
            assert want.fullmatch(line), f"{line!r} does not match {want.pattern!r}"


@pytest.mark.slow
def test_readme_snippet_prints_what_its_comment_says(tmp_path: Path) -> None:
    """The README's first Python block runs and prints the value its comment shows."""
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert code is not None
    printed = re.search(r"print\(.*\)  # (.*)", code[1])
    assert printed is not None, "the snippet no longer shows what it prints"
    script = tmp_path / "snippet.py"
    script.write_text(code[1])
    assert run_script(script) == printed[1] + "\n"
