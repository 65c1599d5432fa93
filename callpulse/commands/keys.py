"""`callpulse keys` — not built yet (issue #5)."""

import sys

HELP = "Create, list and revoke API keys. (not built yet: issue #5)"


def add_arguments(parser):
    parser.add_argument("rest", nargs="*", help="reserved")


def run(args) -> int:
    print("callpulse keys: not built yet (issue #5)", file=sys.stderr)
    return 2
