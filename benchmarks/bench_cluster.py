"""Standalone Redis vs a local Redis Cluster (3 masters + 3 replicas), side by side in one run.

For each target, on the same simulated event log:
- ingest: `callpulse ingest FILE --replay` (validation, claims, the append script, and on the cluster
  the WAIT for a replica of every master written: CALLPULSE_ACK_REPLICAS=1), events/s;
- flow: `callpulse flow --replay --until-drained -p 2 --no-recovery` (2 processes), events/s;
- event -> frame: with a live flow running, one event at a time appended by the ingest path, the wall
  time until the campaign's stored /stats body reflects it (p50 / p99 over --samples), the frame pacing
  (4 frames/s per campaign) included.

Prints a markdown table; progress on stderr. `callpulse bench cluster [--contacts N] [--samples N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from harness import CLI, ROOT, log, run_measured

from callpulse.redis_local import LocalCluster, free_port, start_redis, stop_redis
from callpulse.simulator import SimConfig, generate
from engine.storage.keys import stats_key
from flows.ingest_claims import accept_events
from flows.redis_connect import connect

PARTS = 8


def _env(url: str) -> dict:
    return dict(os.environ, CALLPULSE_REDIS_URL=url, CALLPULSE_PARTITIONS=str(PARTS),
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _flush(client) -> None:
    import redis

    if isinstance(client, redis.RedisCluster):
        client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    else:
        client.flushall()


def measure(url: str, log_file: Path, n_events: int, samples: int) -> dict:
    client = connect(url)
    _flush(client)
    env = _env(url)
    subprocess.run([CLI, "keys", "create", "--org", "bench-org"], env=env, check=True, capture_output=True)
    wall, _peak, _err = run_measured([CLI, "ingest", str(log_file), "--replay", "--quiet"], env)
    ingest = n_events / wall
    log(f"  ingest {ingest:,.0f} events/s")
    wall, _peak, _err = run_measured([CLI, "flow", "--replay", "--until-drained", "-p", "2", "--no-recovery"], env)
    flow = n_events / wall
    log(f"  flow (2 processes) {flow:,.0f} events/s")

    # event -> stored body, one event at a time against a live flow
    proc = subprocess.Popen([CLI, "flow", "--no-recovery"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    lat = []
    try:
        camp = ("lat-org", "lat-camp")
        t0 = int(time.time() * 1000)
        base = {"org_id": camp[0], "campaign_id": camp[1]}
        accept_events(client, [{**base, "event_id": "lat-0", "type": "campaign.created", "ts": t0}], partitions=PARTS)
        deadline = time.monotonic() + 60
        while client.get(stats_key(*camp)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(1, samples + 1):
            ev = {**base, "event_id": f"lat-{i}", "type": "contact.added", "ts": int(time.time() * 1000),
                  "contact_id": f"c{i}"}
            start = time.perf_counter()
            accept_events(client, [ev], partitions=PARTS)
            while True:
                raw = client.get(stats_key(*camp))
                if raw is not None and orjson.loads(raw)["contacts"]["total"] >= i:
                    break
                if time.perf_counter() - start > 10:
                    raise SystemExit("a frame never came")
                time.sleep(0.002)
            lat.append((time.perf_counter() - start) * 1000)
            time.sleep(0.3)  # one event per frame interval: each sample waits for its own frame
    finally:
        proc.terminate()
        proc.wait(30)
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    log(f"  event -> stored body p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms")
    client.close()
    return {"ingest": ingest, "flow": flow, "p50": statistics.median(lat), "p99": p99}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contacts", type=int, default=500, help="per campaign (4 campaigns)")
    ap.add_argument("--samples", type=int, default=60, help="event -> frame samples per target")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    items = list(generate(SimConfig(seed=5, orgs=2, campaigns=2, contacts=args.contacts, channel="mixed",
                                    abandon_prob=0.1)))
    log_file = work / "events.ndjson"
    log_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in items))
    log(f"bench cluster: {len(items):,} events")
    port = free_port()
    standalone = start_redis(port, work / "redis")
    cluster = LocalCluster(work / "cluster").start()
    try:
        log("standalone redis-server:")
        one = measure(f"redis://127.0.0.1:{port}/0", log_file, len(items), args.samples)
        log("Redis Cluster, 3 masters + 3 replicas (WAIT 1 replica per ingest):")
        many = measure(cluster.url, log_file, len(items), args.samples)
    finally:
        cluster.stop()
        stop_redis(standalone)
    print(f"\n`callpulse bench cluster --contacts {args.contacts} --samples {args.samples}` "
          f"({len(items):,} events; all on this machine)\n")
    print("| target | ingest events/s | flow events/s (2 processes) | event → stored body p50 | p99 |")
    print("|---|---:|---:|---:|---:|")
    for name, r in (("standalone", one), ("cluster 3+3", many)):
        print(f"| {name} | {r['ingest']:,.0f} | {r['flow']:,.0f} | {r['p50']:.0f} ms | {r['p99']:.0f} ms |")
    print(f"| cluster / standalone | {many['ingest'] / one['ingest']:.2f}x | {many['flow'] / one['flow']:.2f}x | "
          f"{many['p50'] / one['p50']:.2f}x | {many['p99'] / one['p99']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
