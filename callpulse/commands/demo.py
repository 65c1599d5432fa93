"""`callpulse demo` — the main job: Redis, simulated campaigns into the ingest streams, live metrics.

Starts (or reuses) Redis, writes a simulated voice + email campaign set into
the partitioned ingest streams exactly as a dialer would (with a few
duplicates, out-of-order and malformed events), folds the streams through the
engine and prints each campaign's headline numbers. Ctrl-C stops everything
it started.
"""

from __future__ import annotations

import atexit
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

HELP = "Run the main job: Redis, a simulated campaign set through the engine, the numbers printed."


def add_arguments(parser) -> None:
    parser.add_argument("--campaigns", type=int, default=3, help="campaigns, about 2 voice : 1 email (default 3)")
    parser.add_argument("--contacts", type=int, default=300, help="contacts per campaign (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--data-dir", default="var", help="where a Redis started by the demo keeps its files")


def ensure_redis(url: str, data_dir: Path):
    """Reuse the Redis at ``url`` when it answers, else start redis-server on its port."""
    from callpulse.redis_local import is_reachable, start_redis, stop_redis

    if is_reachable(url):
        print(f"redis: reusing {url}")
        return None
    parsed = urlparse(url)
    if parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise SystemExit(f"redis: {url} does not answer and is not local, so the demo cannot start it")
    port = parsed.port or 6379
    proc = start_redis(port, data_dir / "redis", persist=True)
    atexit.register(stop_redis, proc)
    print(f"redis: started redis-server on 127.0.0.1:{port} (data in {data_dir / 'redis'})")
    return proc


def simulate_into_streams(client, args) -> int:
    from flows.ingest_writer import StreamAppender
    from flows.simulator import SimConfig, generate

    cfg = SimConfig(seed=args.seed, campaigns=args.campaigns, contacts=args.contacts, channel="mixed",
                    duplicate_pct=2, jitter_ms=5_000, malformed_pct=1, tag=f"demo{args.seed}")
    n = 0
    with StreamAppender(client) as out:
        for ev in generate(cfg):
            out.add(ev)
            n += 1
    return n


def fold_streams(client):
    """Read every ingest partition and fold it through the engine (replay mode)."""
    from engine.events import EventRejected, parse_event
    from engine.fold import Fold
    from engine.keys import INGEST_FIELD, ingest_stream, partition_count

    fold = Fold()
    rejected = 0
    for p in range(partition_count()):
        last = "-"
        while True:
            entries = client.xrange(ingest_stream(p), min=last, count=5000)
            if last != "-":
                entries = entries[1:]  # XRANGE min is inclusive
            if not entries:
                break
            for entry_id, fields in entries:
                try:
                    fold.apply(parse_event(fields[INGEST_FIELD]))
                except EventRejected:
                    rejected += 1
            last = entries[-1][0]
    return fold, rejected


def print_campaign(body: dict) -> None:
    ab = body["abandon"]["windows"]["lifetime"]
    print(f"\n  {body['org_id']}/{body['campaign_id']}  [{body['channel']}, {body['status']}, banner {body['live']['banner']}]")
    c = body["contacts"]
    print(f"    contacts {c['total']}: {c['buckets']}")
    if body["channel"] == "voice":
        print(f"    attempts {body['attempts']['total']}, outcomes {body['outcomes']}")
        aht = body["aht_ms"]
        print(f"    answer rate {body['rates']['answer_rate']:.1%}, connect rate {body['rates']['connect_rate']:.1%}, "
              f"AHT {aht / 1000 if aht else 0:.0f} s, abandon {ab['rate']:.2%} of {ab['human_answered']} "
              f"(level {ab['level']}, budget {body['abandon']['budget']})")
    else:
        e = body["email"]
        print(f"    sent {e['emails_sent']}, delivered {e['delivered']}, opened {e['opened']}, replied {e['replied']}, "
              f"meetings {e['meetings_booked']} (open rate {e['rates']['open_rate']:.1%})")
    print(f"    cost ${body['costs']['total_usd']:.2f}; diagnostics {body['diagnostics']}")


def run(args) -> int:
    import redis

    from callpulse.commands import redis_url

    url = redis_url()
    ensure_redis(url, Path(args.data_dir))
    client = redis.Redis.from_url(url)
    t0 = time.perf_counter()
    n = simulate_into_streams(client, args)
    print(f"simulate: {n} events of {args.campaigns} campaigns written to the ingest streams "
          f"({time.perf_counter() - t0:.1f} s; 2 % duplicates, 5 s jitter, 1 % malformed)")
    t0 = time.perf_counter()
    fold, rejected = fold_streams(client)
    print(f"engine: folded the streams in {time.perf_counter() - t0:.1f} s; {rejected} malformed events rejected")
    for body in fold.snapshots():
        print_campaign(body)
    print("\nThe live flow, the API and the dashboard come next (issues #4-#6); "
          "`callpulse replay FILE` folds a recorded log offline.")
    sys.stdout.flush()
    return 0
