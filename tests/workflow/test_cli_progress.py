"""Contract tests: the live progress of ``trio-wf run``, in a pseudo-terminal
(the real command in a subprocess, real workers)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from ..helpers import read_terminal
from .helpers import ROOT, TRIO_WF, cli_environment, graph, method, run_cli

ESCAPE = "\x1b["


def sleepers(tmp_path: Path) -> str:
    nodes = [method(n, "sleep", inputs={"seconds": 0.5}) for n in "abc"]
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph(nodes)))
    return str(path)


def in_a_terminal(*arguments: str) -> tuple[int, str]:
    """Run trio-wf with a pseudo-terminal for standard input, output and error;
    return its exit status and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    environment = cli_environment({"TERM": "xterm-256color"})
    for name in ("NO_COLOR", "CI"):  # either would turn rich's colours off
        environment.pop(name, None)
    with subprocess.Popen(
        [TRIO_WF, *arguments],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=environment,
    ) as process:
        os.close(slave)
        output = read_terminal(master)
        status = process.wait(timeout=30)
    return status, output


def test_a_terminal_shows_live_progress_then_one_summary(tmp_path: Path) -> None:
    """Counts, elapsed time and the running nodes with their worker, redrawn;
    then one summary line, and the results."""
    status, output = in_a_terminal("run", sleepers(tmp_path), "-n", "2")
    assert status == 0, output
    assert ESCAPE in output
    assert re.search(r"\d+ running", output)
    assert re.search(r"\d+ queued", output)
    assert re.search(r"  [abc]\s+\S*worker \d+", output), output
    lines = output.replace("\r\n", "\n").split("\n")
    summaries = [line for line in lines if "node(s):" in line]
    assert len(summaries) == 1
    assert re.search(r"trio-wf: 3 node\(s\): 3 done in \d+\.\d s$", summaries[0])
    assert lines[-2:] == ["return_value: 0.5", ""]


def test_json_output_is_unchanged_under_the_display(tmp_path: Path) -> None:
    """--json on a terminal: the JSON follows the summary line, intact."""
    status, output = in_a_terminal("run", sleepers(tmp_path), "--json")
    assert status == 0, output
    after = output.replace("\r\n", "\n").split(" done in ", 1)[1]
    text = after.split("\n", 1)[1]
    assert json.loads(text) == {"return_value": 0.5}


def test_quiet_or_not_a_terminal_shows_no_animation(tmp_path: Path) -> None:
    """-q on a terminal, or output to pipes: no escape sequence, no summary."""
    status, output = in_a_terminal("run", sleepers(tmp_path), "-q")
    assert (status, output) == (0, "return_value: 0.5\r\n")
    result = run_cli("run", sleepers(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "return_value: 0.5\n",
        "",
    )


def test_rich_is_imported_only_to_draw(tmp_path: Path) -> None:
    """import trio_wf, and the command's own modules, leave rich unimported."""
    code = (
        "import sys, trio_wf, trio_wf.workflow, trio_wf.workflow._cli; "
        "print('rich' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # not the checkout, whose trio_wf/ would shadow the wheel's
    )
    assert result.stdout == "False\n"
