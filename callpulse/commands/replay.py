"""`callpulse replay FILE [--campaign ID]` — offline fold of an NDJSON file through the engine.

Replay mode: the watermark moves only with events, so the same file always
gives the same bodies. No Redis. Rejected lines are reported on stderr.
"""

from __future__ import annotations

import sys

import orjson

HELP = "Fold an event file (NDJSON or a JSON array) through the engine offline; print the /stats bodies as JSON."


def add_arguments(parser):
    parser.add_argument("file", help="event file (NDJSON or one JSON array), or - for stdin")
    parser.add_argument("--campaign", help="print only this campaign's body (a single JSON object)")
    parser.add_argument("--org", help="with --campaign: the campaign's org, when ids repeat across orgs")
    parser.add_argument("--alerts", metavar="FILE", help="also write the alert records, one JSON per line")
    parser.add_argument("--lateness-ms", type=int, default=30_000, help="lateness bound (default 30000)")
    parser.add_argument("--min-sample", type=int, default=50, help="alert min_sample (default 50)")
    parser.add_argument("--quiet", action="store_true", help="do not list rejected lines on stderr")


def run(args) -> int:
    from callpulse.event_files import iter_events
    from engine.state.fold import Fold
    from engine.validation.events import EventRejected

    fold = Fold(lateness_ms=args.lateness_ms, min_sample=args.min_sample)
    alerts = []
    rejected = 0
    src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    with src:
        for number, ev in iter_events(src):  # replay mode: no future check
            if isinstance(ev, EventRejected):
                rejected += 1
                if not args.quiet:
                    print(f"item {number}: rejected {ev.code} {ev.field or '-'}: {ev.reason}", file=sys.stderr)
                continue
            fold.apply(ev)
            if args.alerts:
                alerts.extend(fold.take_alerts())

    if args.alerts:
        with open(args.alerts, "wb") as out:
            for a in alerts:
                out.write(orjson.dumps(a) + b"\n")

    if args.campaign:
        keys = [k for k in fold.campaigns if k[1] == args.campaign and (args.org is None or k[0] == args.org)]
        if not keys:
            print(f"campaign {args.campaign!r} not found in {args.file}", file=sys.stderr)
            return 1
        bodies = [fold.snapshot(k) for k in sorted(keys)]
        result = bodies[0] if len(bodies) == 1 else bodies
    else:
        result = fold.snapshots()
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if rejected and not args.quiet:
        print(f"{rejected} line(s) rejected", file=sys.stderr)
    return 0
