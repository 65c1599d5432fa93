"""`callpulse bench SUITE [ARGS...]` — run the benchmark scripts in benchmarks/.

Each suite is a script ``benchmarks/bench_<suite>.py``: ``flow`` (end-to-end
`callpulse flow` throughput vs the raw read ceiling and a naive SQLite peer),
``engine`` (the fold's update path), ``validation`` (decode + validate), ``cluster`` (standalone Redis vs a
local Redis Cluster side by side: ingest, 2-process flow, event -> stored body).
``all`` runs every suite with its defaults. Anything after the suite name is
passed to the script (``callpulse bench flow --quick``); markdown results go
to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HELP = "Run the benchmarks (benchmarks/bench_*.py): callpulse bench flow|engine|validation|all [ARGS...]."

BENCH_DIR = Path(__file__).resolve().parent.parent.parent / "benchmarks"


def suites() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in BENCH_DIR.glob("bench_*.py"))


def add_arguments(parser) -> None:
    parser.add_argument("suite", metavar="SUITE",
                        help=f"one of: {', '.join(suites() + ['all', 'list'])}")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark script")


def run(args) -> int:
    known = suites()
    if not known:
        print(f"callpulse bench: no benchmarks found in {BENCH_DIR} (run from a source checkout)", file=sys.stderr)
        return 2
    if args.suite == "list":
        print("\n".join(known))
        return 0
    if args.suite == "all":
        if args.args:
            print("callpulse bench all: takes no arguments (each suite runs with its defaults)", file=sys.stderr)
            return 2
        chosen = known
    elif args.suite in known:
        chosen = [args.suite]
    else:
        print(f"callpulse bench: unknown suite {args.suite!r}; one of: {', '.join(known + ['all', 'list'])}",
              file=sys.stderr)
        return 2
    rc = 0
    for name in chosen:
        script = BENCH_DIR / f"bench_{name}.py"
        print(f"callpulse bench: {name} ({script})", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(script), *args.args], cwd=BENCH_DIR.parent)
        rc = rc or result.returncode
    return rc
