"""`callpulse flow` — not built yet (issue #4)."""

import sys

HELP = "Run the Bytewax dataflow until SIGTERM/SIGINT. (not built yet: issue #4)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse flow: not built yet (issue #4)", file=sys.stderr)
    return 2
