"""How long ewokscore's loader and trio_wf's take to read a chain of nodes.

Usage: python benchmarks/ewoks_loader.py [--sizes 12 14 16 18 20 22]
       [--budget 30] [--ours 1000 10000]

Needs ``pip install 'trio-wf[ewoks]'``.  ``ewoks execute`` and
``ewoks.execute_graph`` read every graph with ewokscore's ``load_graph``
before any engine sees it, the ``trio`` engine included; its analysis of
which links are required grows exponentially along a chain.  This times that
loader on chains of ``method`` nodes (it imports no task), stopping after the
first size that takes longer than ``--budget`` seconds, beside trio_wf's own
``load_graph`` (what ``trio-wf run`` and `execute_graph` use) on the same
chains and on ``--ours`` nodes.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from trio_wf.workflow import load_graph


def chain(n: int) -> dict[str, Any]:
    nodes = [
        {"id": f"n{i}", "task_type": "method", "task_identifier": "builtins.int"}
        for i in range(n)
    ]
    links = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(n - 1)]
    return {"graph": {"id": "chain"}, "nodes": nodes, "links": links}


def seconds(job: Any) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 14, 16, 18, 20])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--ours", type=int, nargs="+", default=[1000, 10000])
    options = parser.parse_args()
    # Imported here: the module's docstring is readable without ewokscore.
    from ewokscore import load_graph as ewoks_load_graph

    logging.getLogger("ewokscore").setLevel(logging.ERROR)
    print(f"{'nodes':>6} {'ewokscore load_graph':>22} {'trio_wf load_graph':>20}")
    for n in options.sizes:
        theirs = seconds(lambda n=n: ewoks_load_graph(chain(n)))
        ours = seconds(lambda n=n: load_graph(chain(n)))
        print(f"{n:>6} {theirs:>20.3f} s {ours * 1e3:>17.2f} ms")
        if theirs > options.budget:
            print(f"(stopped: ewokscore took more than {options.budget} s)")
            break
    for n in options.ours:
        ours = seconds(lambda n=n: load_graph(chain(n)))
        print(f"{n:>6} {'':>22} {ours * 1e3:>17.2f} ms")


if __name__ == "__main__":
    main()
