"""`callpulse` — the one command-line entry point (SPEC §5).

Each command lives in ``callpulse/commands/<name>.py`` and exposes
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules keep heavy imports (bytewax, uvicorn) inside ``run`` so that
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.compiled import fallback_warning
from flows.redis_connect import RedisUrlError

COMMANDS = ["demo", "simulate", "ingest", "flow", "api", "replay", "keys", "orgs", "webhooks", "bench"]

REDIS_HELP = "Every command honours CALLPULSE_REDIS_URL (default redis://localhost:6379/0)."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callpulse",
        description="Streaming real-time metrics for outbound contact campaigns.",
        epilog=REDIS_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"callpulse.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=REDIS_HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warning = fallback_warning()  # the engine runs as pure Python without being asked to (engine/compiled.py)
    if warning:
        print(warning, file=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `callpulse simulate | head`
        return 0
    except RedisUrlError as exc:  # e.g. a database other than 0 on a Redis Cluster: one line, not a traceback
        print(f"callpulse {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
