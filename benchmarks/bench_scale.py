"""One big campaign through `callpulse flow`: recovery off vs on (default settings), memory, snapshots.

    callpulse bench scale [--contacts N] [--channel voice|email] [--reuse]

Generates one seeded voice (or email) campaign of N contacts with no calling window
(`callpulse simulate --contacts N --channel voice --window none`, not timed;
kept in var/bench/ with --reuse), starts a private redis-server, then runs on
the same file, one after the other:

  idle           `callpulse flow --replay --file <empty file>`: start-up time and the idle process's peak RSS;
  recovery off   `callpulse flow --replay --file events --no-recovery`;
  recovery on    `callpulse flow --replay --file events --recovery-dir <fresh dir>` with every other
                 setting at its default (snapshot interval, backup interval, chunk size).

Each run's wall time, minus the idle run's (interpreter and Bytewax start-up),
gives its events/s; its peak RSS is the process's VmHWM (benchmarks/harness.py). The flow prints
its snapshot statistics when it stops (count, bytes, slowest). Both runs'
final `/stats` bodies must be equal. Prints a markdown table; results go to
benchmarks/RESULTS.md by hand with the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
from pathlib import Path

import orjson
from harness import CLI, ROOT, log, private_redis, run_measured

from engine.storage.keys import stats_key


def events_file(contacts: int, reuse: bool, env: dict, channel: str = "voice") -> Path:
    out = ROOT / "var" / "bench" / f"{channel}-{contacts}.ndjson"
    if reuse and out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    log(f"simulating one {channel} campaign of {contacts} contacts -> {out}")
    subprocess.run([CLI, "simulate", "--contacts", str(contacts), "--channel", channel, "--window", "none",
                    "--out", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=30_000)
    ap.add_argument("--channel", choices=("voice", "email"), default="voice")
    ap.add_argument("--reuse", action="store_true", help="reuse var/bench/<channel>-N.ndjson if it exists")
    args = ap.parse_args()

    with private_redis("callpulse-bench-scale-") as (work, client, env):
        path = events_file(args.contacts, args.reuse, env, args.channel)
        with open(path, "rb") as f:
            n_events = sum(1 for _ in f)
        first = path.open("rb").readline()
        org, camp = orjson.loads(first)["org_id"], orjson.loads(first)["campaign_id"]
        empty = work / "empty.ndjson"
        empty.write_bytes(b"")
        base = [CLI, "flow", "--replay"]

        log("idle run")
        idle_wall, idle_rss, _ = run_measured([*base, "--file", str(empty), "--no-recovery"], env)
        rows = []
        bodies = {}
        for name, extra in (("recovery off", ["--no-recovery"]),
                            ("recovery on (defaults)", ["--recovery-dir", str(work / "recovery")])):
            client.flushall(asynchronous=True)  # a 1M-contact dataset takes longer than a socket timeout to free
            log(f"{name}: {n_events} events")
            wall, rss, err = run_measured([*base, "--file", str(path), *extra], env)
            bodies[name] = client.get(stats_key(org, camp))
            secs = max(1e-9, wall - idle_wall)
            snap = re.search(r"\((\d+ campaign snapshots[^;)]*|no campaign snapshots)", err)
            rows.append((name, secs, n_events / secs, rss, (rss - idle_rss) / args.contacts,
                         snap.group(1) if snap else "-"))
            log(f"  {secs:.1f} s, {n_events / secs:,.0f} events/s, peak RSS {rss / 1e6:.0f} MB")
        same = len(set(bodies.values())) == 1 and None not in bodies.values()

    off, on = rows[0], rows[1]
    print(f"### Scale: one {args.channel} campaign of {args.contacts:,} contacts ({n_events:,} events), "
          f"`callpulse flow --replay --file`\n")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"idle flow process: {idle_rss / 1e6:.0f} MB peak RSS, {idle_wall:.1f} s start-up (subtracted)\n")
    print("| run | seconds | events/s | peak RSS | RSS above idle per contact | campaign snapshots |")
    print("|---|---:|---:|---:|---:|---|")
    for name, secs, rate, rss, per, snap in rows:
        print(f"| {name} | {secs:.1f} | {rate:,.0f} | {rss / 1e6:,.0f} MB | {per:,.0f} B | {snap} |")
    print(f"\nrecovery on / recovery off throughput: **{on[2] / off[2]:.2f}**; final `/stats` bodies "
          f"{'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
