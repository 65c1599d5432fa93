"""Engine update-path throughput and state size.

Run: .venv/bin/python benchmarks/bench_engine.py [--campaigns 20 --contacts 2000]

Events come from the simulator and are validated BEFORE timing (decode and
validation are measured by bench_validation.py). Measured in the same run:
  floor     – a loop that only reads each event's type into a Counter (the
              cost of touching an event in CPython at all: the baseline)
  gate      – EventGate.check alone (event_id de-dup + lateness)
  fold      – the whole update path: gate + CampaignState.apply (+ alert evaluation)
  fold/jit  – the same on a stream delivered out of order (20 s jitter) with 5 % repeats
and the snapshot cost (build_snapshot per campaign) and state size
(tracemalloc: bytes per campaign and per contact, gate's seen ids apart).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
import tracemalloc
from collections import Counter

from callpulse.simulator import SimConfig, generate
from engine.state.fold import Fold
from engine.state.gate import EventGate
from engine.validation.events import validate_event
from engine.views.snapshot import build_snapshot


def events_for(cfg: SimConfig) -> list[dict]:
    return [validate_event(e) for e in generate(cfg) if isinstance(e, dict)]


def best_of(fn, events, repeat=3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn(events)
        best = min(best, time.perf_counter() - t)
    return best


def floor_loop(events):
    c = Counter()
    for ev in events:
        c[ev["type"]] += 1


def gate_only(events):
    g = EventGate()
    for ev in events:
        g.check(ev)


def fold_all(events):
    f = Fold()
    for ev in events:
        f.apply(ev)
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=20)
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    base = dict(seed=7, orgs=1, campaigns=args.campaigns, contacts=args.contacts, channel="mixed")
    ordered = events_for(SimConfig(**base))
    jittered = events_for(SimConfig(**base, jitter_ms=20_000, duplicate_pct=5))
    n = len(ordered)
    print(f"{n} events ({len(jittered)} with faults), {args.campaigns} campaigns x {args.contacts} contacts, mixed channels")

    rows = []
    t_floor = best_of(floor_loop, ordered, args.repeat)
    for name, fn, evs in (("floor (Counter by type)", floor_loop, ordered),
                          ("gate only", gate_only, ordered),
                          ("fold: gate + state.apply", fold_all, ordered),
                          ("fold, 20 s jitter + 5 % repeats", fold_all, jittered)):
        t = best_of(fn, evs, args.repeat)
        rows.append((name, len(evs) / t, t / t_floor * n / len(evs)))

    f = fold_all(ordered)
    t0 = time.perf_counter()
    for _ in range(5):
        for st in f.campaigns.values():
            build_snapshot(st)
    snap_us = (time.perf_counter() - t0) / (5 * len(f.campaigns)) * 1e6

    # State size: allocate the events first, then measure what folding them allocates.
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    f = fold_all(ordered)
    after = tracemalloc.take_snapshot()
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    seen_ids = sum(len(ids) for ids in f.gate.seen.values())
    del f
    gc.collect()
    g_before = tracemalloc.take_snapshot()
    g = EventGate()
    for ev in ordered:
        g.check(ev)
    g_after = tracemalloc.take_snapshot()
    gate_bytes = sum(s.size_diff for s in g_after.compare_to(g_before, "filename"))
    tracemalloc.stop()
    state_bytes = total - gate_bytes
    contacts = args.campaigns * args.contacts
    pickled = len(pickle.dumps(fold_all(ordered).campaigns))

    print()
    print("| path | events/s | time vs floor |")
    print("|---|---:|---:|")
    for name, rate, ratio in rows:
        print(f"| {name} | {rate:,.0f} | {ratio:.1f}x |")
    print()
    print(f"- snapshot (`build_snapshot`): {snap_us:,.0f} µs per campaign")
    print(f"- campaign state: {state_bytes / args.campaigns / 1e6:.2f} MB per campaign, "
          f"{state_bytes / contacts:,.0f} B per contact (pickled: {pickled / contacts:,.0f} B per contact)")
    print(f"- gate (event_id de-dup, {seen_ids:,} ids held): {gate_bytes / max(seen_ids, 1):,.0f} B per held id "
          f"(ids expire 1 h of event time behind the watermark)")


if __name__ == "__main__":
    main()
