"""`callpulse bench` — not built yet (issue #4)."""

import sys

HELP = "The benchmark harness. (not built yet: issue #4)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse bench: not built yet (issue #4)", file=sys.stderr)
    return 2
