"""Many small campaigns that finish one after another: does the flow's cost follow the active ones?

    callpulse bench campaigns [--campaigns N] [--contacts C] [--reuse]

Simulates N voice campaigns of C contacts each, started `--stagger` seconds of
event time apart (a month of campaigns at the defaults: 5,000 × 8.6 min), every
one ending with `campaign.status completed`; then runs `callpulse flow --replay
--file` over it (recovery on, default settings) twice, one after the other:

  no retirement   `--retire-after-ms 0`: every campaign ever seen stays in memory, in every
                  recovery snapshot, and gets a heartbeat frame every 5 s until the end;
  retirement      `--retire-after-ms 2000`: a finished campaign quiet for 2 s of wall clock is
                  archived to Redis and leaves the flow (flows/retirement.py).

The file is read at full speed, so a campaign finishes within a fraction of a
second of wall clock and "quiet for 2 s" stands for the production default of
an hour. For each run: wall time, peak RSS (VmHWM, benchmarks/harness.py), the campaign snapshots
written (count, bytes), campaigns retired, frames written (heartbeats included).
Then one late event per campaign for a sample of retired campaigns is appended
and a third run (resuming the second's recovery directory) must bring each back
exactly: its `/stats` body equals `callpulse replay` of its events.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess

import orjson
from harness import CLI, ROOT, log, private_redis, run_measured

from engine.storage.keys import frames_stream, stats_key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--campaigns", type=int, default=5000)
    ap.add_argument("--contacts", type=int, default=20)
    ap.add_argument("--stagger", type=int, default=518, help="seconds of event time between campaign starts")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--check", type=int, default=50, help="retired campaigns given a late event and checked")
    args = ap.parse_args()

    rows = []
    with private_redis("callpulse-bench-campaigns-") as (work, client, env):
        path = ROOT / "var" / "bench" / f"campaigns-{args.campaigns}x{args.contacts}.ndjson"
        if not (args.reuse and path.exists()):
            path.parent.mkdir(parents=True, exist_ok=True)
            log(f"simulating {args.campaigns} campaigns x {args.contacts} contacts -> {path}")
            subprocess.run([CLI, "simulate", "--campaigns", str(args.campaigns), "--contacts", str(args.contacts),
                            "--channel", "voice", "--window", "none", "--stagger", str(args.stagger),
                            "--out", str(path)], env=env, check=True, stdout=subprocess.DEVNULL)
        events = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        camps = sorted({(e["org_id"], e["campaign_id"]) for e in events})
        completed = {(e["org_id"], e["campaign_id"]) for e in events
                     if e["type"] == "campaign.status" and e.get("status") == "completed"}
        log(f"{len(events):,} events, {len(camps)} campaigns ({len(completed)} end completed)")
        base = [CLI, "flow", "--replay", "--file", str(path)]
        for name, retire in (("no retirement", "0"), ("retirement after 2 s quiet", "2000")):
            client.flushall()
            rec = work / f"rec-{retire}"
            log(name)
            wall, rss, err = run_measured([*base, "--recovery-dir", str(rec), "--retire-after-ms", retire], env)
            snaps = re.search(r"(\d+) campaign snapshots, ([\d.]+) MB", err)
            retired = re.search(r"(\d+) campaigns retired", err)
            frames = sum(client.xlen(frames_stream(*c)) for c in camps)
            rows.append((name, wall, rss, int(snaps.group(1)) if snaps else 0, float(snaps.group(2)) if snaps else 0.0,
                         int(retired.group(1)) if retired else 0, frames))
            log(f"  {wall:.1f} s, peak RSS {rss / 1e6:.0f} MB, {rows[-1][3]} snapshots {rows[-1][4]:.1f} MB, "
                f"{rows[-1][5]} retired, {frames} frames")
        # Late events for retired campaigns: they come back exactly.
        sample = sorted(completed)[: args.check]
        late = []
        for i, (org, camp) in enumerate(sample):
            last = max(e["ts"] for e in events if e["org_id"] == org and e["campaign_id"] == camp)
            late.append({"event_id": f"late-{i}", "type": "cost.incurred", "ts": last, "org_id": org,
                         "campaign_id": camp, "category": "late_fee", "usd": 0.5})
        late_path = work / "late.ndjson"
        late_path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in late))
        # The first file is named again: its source partition resumes at its end (a recovered source must
        # find every partition it had).
        run_measured([*base, "--file", str(late_path), "--recovery-dir", str(work / "rec-2000"),
                      "--retire-after-ms", "2000"], env)
        all_path = work / "all.ndjson"
        all_path.write_bytes(path.read_bytes() + late_path.read_bytes())
        out = subprocess.run([CLI, "replay", "--quiet", str(all_path)], env=env, capture_output=True, check=True)
        want = {(b["org_id"], b["campaign_id"]): b for b in orjson.loads(out.stdout)}
        exact = sum(1 for c in sample if orjson.loads(client.get(stats_key(*c)) or b"null") == want[c])

    print(f"### Many campaigns: {len(camps):,} voice campaigns × {args.contacts} contacts, one after another "
          f"({len(events):,} events), `callpulse flow --replay --file`, recovery on\n")
    print(f"x86_64, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| run | seconds | peak RSS | campaign snapshots | snapshot MB | campaigns retired | frames written |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, wall, rss, n, mb, retired, frames in rows:
        print(f"| {name} | {wall:.1f} | {rss / 1e6:,.0f} MB | {n:,} | {mb:,.1f} | {retired:,} | {frames:,} |")
    print(f"\nlate event for {len(sample)} retired campaigns, resumed from the archive: "
          f"**{exact}/{len(sample)}** bodies equal to `callpulse replay`")
    return 0 if exact == len(sample) else 1


if __name__ == "__main__":
    raise SystemExit(main())
