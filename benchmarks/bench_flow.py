"""End-to-end throughput of `callpulse flow`: ingest streams -> folded metrics -> snapshots in Redis.

Starts a private redis-server, pre-loads a seeded simulated event log into
the partitioned ingest streams as `callpulse simulate --redis` does (each
event in its campaign's partition, with its route field; not timed), then
runs, one after the other on the same streams:

  raw ceiling    one process: XREAD COUNT 1000 over every partition + orjson.loads
                 of each event, nothing else (the floor cost of reading; replies
                 read as hiredis parsed them, as the flow's source reads them;
                 the best of 3 reads);
  engine only    one process: parse_event + gate + CampaignState.apply from
                 memory, no Redis, no Bytewax (what the fold itself costs);
  naive peer     one process: XREAD, INSERT every event into SQLite
                 (de-duplicated by event_id), then per read one SQL GROUP BY
                 over all events so far (counts, distinct contacts/attempts
                 per campaign and type) written to Redis;
  callpulse flow `callpulse flow --replay --until-drained` with 1 worker
                 (recovery off and on; and on with the pure-Python engine,
                 CALLPULSE_PURE_PYTHON=1, the baseline of the compiled one:
                 engine/compiled.py) and 2 workers (2 threads in one
                 process, 2 processes);
  callpulse replay `callpulse replay` of the same events as one NDJSON file, compiled
                 and pure Python (wall time less that of replaying an empty file:
                 start-up is not counted).

A flow run is timed from its first read of the streams (the sources' first
report in the flow status hash, so interpreter and Bytewax start-up are not
counted) to its exit, after the last frames are written; its final `/stats`
bodies are checked against an in-process fold. Prints a markdown table with
events/s and the ratios to the raw ceiling and to the naive peer.

    .venv/bin/python benchmarks/bench_flow.py [--contacts N] [--campaigns C] [--orgs O] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callpulse.redis_local import free_port, start_redis, stop_redis  # noqa: E402
from callpulse.simulator import SimConfig, generate  # noqa: E402
from engine.state.fold import Fold  # noqa: E402
from engine.storage.keys import INGEST_FIELD, flow_status_key, ingest_stream, stats_key  # noqa: E402
from engine.validation.events import EventRejected, parse_event  # noqa: E402
from flows.ingest_writer import StreamAppender, encode  # noqa: E402
from flows.redis_source import as_parsed, entry_fields  # noqa: E402

PARTS = 8
CLI = str(ROOT / ".venv" / "bin" / "callpulse")
if not os.path.exists(CLI):
    CLI = shutil.which("callpulse") or str(Path(sys.executable).with_name("callpulse"))


def clear_outputs(client) -> None:
    keep = {ingest_stream(p).encode() for p in range(PARTS)}
    doomed = [k for k in client.scan_iter(count=1000) if k not in keep]
    for i in range(0, len(doomed), 1000):
        client.delete(*doomed[i:i + 1000])


def read_all(client, count: int = 1000):
    """Yield XREAD batches over every partition until all are drained: ``[id, [field, value, ...]]``
    entries as hiredis parsed them, as the flow's source reads them (flows/redis_source.py)."""
    last = {ingest_stream(p): "0-0" for p in range(PARTS)}
    while last:
        reply = client.xread(last, count=count)
        if not reply:
            return
        for stream, entries in (reply.items() if isinstance(reply, dict) else reply):
            last[stream.decode()] = entries[-1][0].decode()
            yield entries


def bench_raw(url: str, n: int, repeat: int = 3) -> float:
    """The best of ``repeat`` reads (one is under half a second: the best is the steadiest ceiling)."""
    client = redis.Redis.from_url(url)
    client.set_response_callback("XREAD", as_parsed)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        seen = 0
        for entries in read_all(client):
            for _id, flat in entries:
                try:
                    orjson.loads(entry_fields(flat)[0])
                except orjson.JSONDecodeError:  # the simulated malformed lines
                    pass
                seen += 1
        best = min(best, time.perf_counter() - t)
        assert seen == n, (seen, n)
    client.close()
    return best


def bench_engine(raws: list[bytes]) -> tuple[float, dict]:
    fold = Fold()
    t = time.perf_counter()
    for raw in raws:
        try:
            ev = parse_event(raw)
        except EventRejected:
            continue
        fold.apply(ev)
    dt = time.perf_counter() - t
    return dt, {(b["org_id"], b["campaign_id"]): b for b in fold.snapshots()}


NAIVE_QUERY = """
SELECT org_id, campaign_id, type, COUNT(*), COUNT(DISTINCT contact_id), COUNT(DISTINCT attempt_id), MAX(ts)
FROM events GROUP BY org_id, campaign_id, type
"""


def _sql(v):
    return v if v is None or type(v) in (str, int, float) else str(v)


def bench_naive(client, workdir: Path) -> float:
    db = sqlite3.connect(workdir / "naive.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("""CREATE TABLE events (org_id TEXT, event_id TEXT, campaign_id TEXT, type TEXT, ts INTEGER,
                  contact_id TEXT, attempt_id TEXT, message_id TEXT, body BLOB, PRIMARY KEY (org_id, event_id))""")
    t = time.perf_counter()
    for entries in read_all(client):
        rows = []
        for _id, fields in entries:
            raw = fields.get(INGEST_FIELD, b"")
            try:
                ev = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(ev, dict):
                continue
            rows.append((*(_sql(ev.get(k)) for k in ("org_id", "event_id", "campaign_id", "type", "ts",
                                                     "contact_id", "attempt_id", "message_id")), raw))
        with db:
            db.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
        stats: dict = {}
        for org, camp, typ, count, contacts, attempts, last_ts in db.execute(NAIVE_QUERY):
            stats.setdefault((org, camp), {})[str(typ)] = [count, contacts, attempts, last_ts]
        pipe = client.pipeline(transaction=False)
        for (org, camp), body in stats.items():
            if isinstance(org, str) and isinstance(camp, str):
                pipe.set(f"naive:stats:{{{org}:{camp}}}", orjson.dumps(body))
        pipe.execute()
    dt = time.perf_counter() - t
    db.close()
    return dt


def bench_replay(raws: list[bytes], workdir: Path, pure: bool) -> float:
    """`callpulse replay` of the events as one file, start-up (an empty file's replay) not counted."""
    env = dict(os.environ, CALLPULSE_PURE_PYTHON="1" if pure else "0")
    path, empty = workdir / "events.ndjson", workdir / "empty.ndjson"
    if not path.exists():
        path.write_bytes(b"\n".join(raws) + b"\n")
        empty.write_bytes(b"")

    def wall(file: Path) -> float:
        started = time.perf_counter()
        subprocess.run([CLI, "replay", "--quiet", str(file)], env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    return wall(path) - min(wall(empty) for _ in range(3))


def bench_flow(client, url: str, want: dict, workdir: Path, args: list[str], pure: bool = False) -> float:
    clear_outputs(client)
    env = dict(os.environ, CALLPULSE_REDIS_URL=url, CALLPULSE_PARTITIONS=str(PARTS),
               CALLPULSE_PURE_PYTHON="1" if pure else "0")
    rec = tempfile.mkdtemp(dir=workdir)
    log = open(workdir / "flow.log", "ab")
    proc = subprocess.Popen([CLI, "flow", "--replay", "--until-drained", "--recovery-dir", rec, *args],
                            env=env, stdout=log, stderr=log)
    first = None
    key = flow_status_key()
    fields = [f"p{p}_ms" for p in range(PARTS)]
    while proc.poll() is None:
        if first is None:
            got = [int(v) for v in client.hmget(key, fields) if v is not None]
            if got:
                first = min(got) / 1000
        time.sleep(0.005)
    end = time.time()
    if proc.returncode != 0 or first is None:
        raise SystemExit(f"flow {args} failed (rc {proc.returncode}); see {workdir / 'flow.log'}")
    for (org, camp), body in want.items():
        got = client.get(stats_key(org, camp))
        if got is None or orjson.loads(got) != body:
            raise SystemExit(f"flow {args}: the stats of {org}/{camp} differ from the in-process fold")
    return end - first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--orgs", type=int, default=4)
    ap.add_argument("--campaigns", type=int, default=2, help="per org")
    ap.add_argument("--contacts", type=int, default=1200, help="per campaign")
    ap.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    ap.add_argument("--no-naive", action="store_true", help="skip the SQLite peer")
    args = ap.parse_args()
    if args.quick:
        args.orgs, args.campaigns, args.contacts = 2, 2, 150

    cfg = SimConfig(seed=args.seed, orgs=args.orgs, campaigns=args.campaigns, contacts=args.contacts,
                    channel="mixed", duplicate_pct=2, jitter_ms=5000, malformed_pct=0.5)
    items = list(generate(cfg))
    raws = [encode(e) for e in items]
    n = len(raws)
    print(f"# {n} events, {args.orgs * args.campaigns} campaigns ({args.orgs} orgs), {PARTS} partitions; "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs", file=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="bench_flow_"))
    port = free_port()
    server = start_redis(port, workdir / "redis")
    url = f"redis://127.0.0.1:{port}/0"
    rows = []
    try:
        client = redis.Redis.from_url(url)
        # appended as `callpulse simulate --redis` appends: each event in its campaign's partition with
        # its route field (pre-encoded bytes would all land in partition 0, to be decoded for routing)
        with StreamAppender(client, partitions=PARTS) as app:
            app.add_many(items)

        def row(name, workers, seconds):
            rows.append((name, workers, seconds, n / seconds))
            print(f"{name:<48} {workers}  {seconds:7.2f} s  {n / seconds:10,.0f} events/s", file=sys.stderr)

        row("raw ceiling: XREAD + orjson.loads (best of 3)", 1, bench_raw(url, n))
        dt, want = bench_engine(raws)
        row("engine only: parse + gate + apply, in memory", 1, dt)
        if not args.no_naive:
            row("naive peer: SQLite INSERT + GROUP BY per read", 1, bench_naive(client, workdir))
        row("callpulse replay, pure-Python engine", 1, bench_replay(raws, workdir, pure=True))
        row("callpulse replay", 1, bench_replay(raws, workdir, pure=False))
        runs = [("callpulse flow, recovery on, pure-Python engine", "1", [], True),
                ("callpulse flow, recovery off", "1", ["--no-recovery"], False),
                ("callpulse flow, recovery on (defaults)", "1", [], False),
                ("callpulse flow, recovery off, 2 threads", "2", ["--no-recovery", "-w", "2"], False),
                ("callpulse flow, recovery off, 2 processes", "2", ["--no-recovery", "-p", "2"], False),
                ("callpulse flow, recovery on, 2 processes", "2", ["-p", "2"], False)]
        for name, workers, extra, pure in runs:
            row(name, workers, bench_flow(client, url, want, workdir, extra, pure))
    finally:
        stop_redis(server)
        shutil.rmtree(workdir, ignore_errors=True)

    raw_rate = rows[0][3]
    naive = next((r for r in rows if r[0].startswith("naive")), None)
    print(f"\n**bench_flow** — {n:,} simulated events ({args.orgs * args.campaigns} campaigns, mixed voice/email, "
          f"2 % duplicates, 0.5 % malformed, 5 s jitter), {PARTS} ingest partitions, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs\n")
    head = "| pipeline | workers | seconds | events/s | × raw ceiling |"
    sep = "|---|---:|---:|---:|---:|"
    if naive:
        head += " × naive peer |"
        sep += "---:|"
    print(head)
    print(sep)
    for name, workers, seconds, rate in rows:
        line = f"| {name} | {workers} | {seconds:.2f} | {rate:,.0f} | {rate / raw_rate:.2f} |"
        if naive:
            line += f" {rate / naive[3]:.2f} |"
        print(line)
    rate = {name: r for name, _w, _s, r in rows}
    one, two = rate.get("callpulse flow, recovery on (defaults)"), rate.get("callpulse flow, recovery on, 2 processes")
    if one and two:
        print(f"\n2 processes / 1 process, recovery on: **{two / one:.2f}**; "
              f"recovery on / off (1 worker): **{one / rate['callpulse flow, recovery off']:.2f}**; "
              f"compiled / pure-Python engine: flow (recovery on) "
              f"**{one / rate['callpulse flow, recovery on, pure-Python engine']:.2f}**, replay "
              f"**{rate['callpulse replay'] / rate['callpulse replay, pure-Python engine']:.2f}**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
