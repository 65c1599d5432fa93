"""`callpulse replay` — being built."""

import sys

HELP = "(being built)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse replay: not built yet", file=sys.stderr)
    return 2
