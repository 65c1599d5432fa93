"""`callpulse ingest` — being built."""

import sys

HELP = "(being built)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse ingest: not built yet", file=sys.stderr)
    return 2
