"""`callpulse api` — not built yet (issue #5)."""

import sys

HELP = "Serve the HTTP API (REST + SSE). (not built yet: issue #5)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse api: not built yet (issue #5)", file=sys.stderr)
    return 2
