"""`callpulse ingest FILE|-` — validate an NDJSON event file and append it to the ingest streams.

Validation and de-duplication are those of `POST /v1/events`: `parse_event`
(live mode: events more than 5 min ahead of the wall clock are `future`,
unless --replay), then `accept_events` (an event_id already accepted for the
org in the last hour is a duplicate). Counts go to stdout as JSON, one line
per rejection to stderr. Accepted events that the campaign's watermark already
makes late (`api.late_notice`, as POST /v1/events says) are listed in the
counts as `late: [{line, reason}]` and on stderr: the flow will count them in
`diagnostics.late` instead of applying them.
"""

from __future__ import annotations

import functools
import sys
import time

HELP = "Validate an NDJSON event file (as POST /v1/events does) and append it to the ingest streams."
CHUNK = 1000


def add_arguments(parser) -> None:
    parser.add_argument("file", metavar="FILE|-", help="NDJSON file, one event per line (- = stdin)")
    parser.add_argument("--replay", action="store_true",
                        help="recorded log: skip the live-mode check that rejects events from the future")
    parser.add_argument("--partitions", type=int, default=None,
                        help="ingest partitions (default CALLPULSE_PARTITIONS or 8)")
    parser.add_argument("--maxlen", type=int, default=None, help="trim each stream to about this many entries")
    parser.add_argument("--quiet", action="store_true", help="do not list rejections on stderr")


def run(args) -> int:
    import orjson
    import redis

    from callpulse.settings import CliSettings

    settings = CliSettings.from_env()
    try:
        src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    except OSError as exc:
        print(f"callpulse ingest: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    from api.late_notice import LateCheck

    client = settings.connect()
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    by_code: dict[str, int] = {}
    late: list[dict] = []
    check = LateCheck(client)  # carries each campaign's watermark from chunk to chunk
    try:
        with src:
            for batch, positions, rejections in _validated_chunks(src, args.replay):
                for lineno, err in rejections:
                    by_code[err.code] = by_code.get(err.code, 0) + 1
                    if not args.quiet:
                        print(f"line {lineno}: {err.code} {err.field or '-'}: {err.reason}", file=sys.stderr)
                counts["rejected"] += len(rejections)
                for lineno, why in _append(client, batch, positions, check, args, counts, settings):
                    late.append({"line": lineno, "reason": why})
                    if not args.quiet:
                        print(f"line {lineno}: late ts: {why}", file=sys.stderr)
    except redis.RedisError as exc:
        print(f"callpulse ingest: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    counts["rejected_by_code"] = dict(sorted(by_code.items()))
    counts["late"] = late
    sys.stdout.write(orjson.dumps(counts).decode() + "\n")
    return 0


def _validated_chunks(src, replay: bool):
    """Yield (valid events, their positions, [(position, EventRejected)]) per CHUNK items (NDJSON lines
    or array items; a position is the file line, or the 1-based array item)."""
    from callpulse.event_files import iter_events
    from engine.validation.events import EventRejected

    valid: list[dict] = []
    positions: list[int] = []
    rejected: list = []
    wall = None if replay else (lambda: int(time.time() * 1000))  # live mode: the future check
    for pos, ev in iter_events(src, now=wall):
        if isinstance(ev, EventRejected):
            rejected.append((pos, ev))
        else:
            valid.append(ev)
            positions.append(pos)
        if len(valid) + len(rejected) >= CHUNK:
            yield valid, positions, rejected
            valid, positions, rejected = [], [], []
    if valid or rejected:
        yield valid, positions, rejected


def _append(client, events: list[dict], positions: list[int], check, args, counts: dict,
            settings) -> list[tuple[int, str]]:
    """Append one chunk; the (position, reason) of its accepted events that the flow will find late."""
    from flows.ingest_claims import accept_events

    if not events:
        return []
    from flows.patience import Patience

    patience = Patience("ingest", settings.patience)
    # a Redis restart or a cluster failover is waited out: each retry of the chunk stores it exactly once
    # (flows/ingest_claims.py), so nobody has to re-run the command by hand
    patience.call(check.read, events)  # before the append, as POST /v1/events does (api/late_notice.py)
    fresh = patience.call(functools.partial(accept_events, client, events,
                                            partitions=settings.partitions_or(args.partitions),
                                            maxlen=args.maxlen, ack=settings.ack))
    for ok in fresh:
        counts["accepted" if ok else "duplicate"] += 1
    return check.late(events, fresh, positions)
