"""Benchmark trio_wf against trio-parallel, anyio, concurrent.futures, loky, threads
and a raw-pipe floor, in one process, in interleaved rounds.

Usage::

    nox -s bench -- --quick              # or: python benchmarks/run.py --quick
    python benchmarks/run.py --full --json bench.json

See benchmarks/README.md for what each row means.  This file stays import-light on
purpose: spawn-based pools (multiprocessing's, so trio-parallel's, cf's and loky's,
and anyio's) re-import the main script in every new worker, and a heavy one would
bill them for our imports.
"""

import sys

if __name__ == "__main__":
    from _main import main

    sys.exit(main())
