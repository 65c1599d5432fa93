"""Throughput of event decoding + validation (engine/validation/events.py) on one core.

Generates a seeded, realistic mix of raw events (a voice campaign's call
lifecycle, contact statuses, transcripts, evaluations, e-mail events, costs;
a share of the times written as RFC 3339 strings) and measures events/s for

  (a) orjson.loads alone (baseline), and
  (b) decode_event + validate_event (the ingest hot path).

Prints both, their ratio and a markdown table row. ``--append FILE`` also
appends the row to FILE.

    .venv/bin/python benchmarks/bench_validation.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections import Counter

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from engine.validation.events import clear_caches, decode_event, format_time, validate_event

# Share of each type in the mix (a voice dialer floor: many call events,
# some contact/email/cost traffic).
MIX = {
    "call.dialed": 16,
    "call.answered": 8,
    "call.amd": 7,
    "call.bridged": 5,
    "call.ended": 16,
    "contact.status": 16,
    "call.transcript": 8,
    "conversation.evaluated": 2,
    "contact.added": 6,
    "callback.requested": 1,
    "email.sent": 4,
    "email.delivered": 3,
    "email.opened": 2,
    "email.replied": 1,
    "cost.incurred": 4,
    "pass.started": 0.2,
    "campaign.created": 0.1,
    "campaign.status": 0.1,
    "batch.status": 0.1,
}


def make_events(n: int, seed: int = 7, rfc_share: float = 0.3) -> list[bytes]:
    rng = random.Random(seed)
    types = list(MIX)
    weights = [MIX[t] for t in types]
    t0 = 1_778_230_800_000
    out = []
    for i in range(n):
        etype = rng.choices(types, weights)[0]
        ts = t0 + i * 37 + rng.randrange(1000)
        contact = f"contact-{rng.randrange(50_000)}"
        attempt = f"att_{rng.randrange(200_000):06d}"
        ev: dict = {
            "event_id": f"evt-{seed}-{i:08d}",
            "type": etype,
            "ts": format_time(ts) if rng.random() < rfc_share else ts,
            "org_id": "acme",
            "campaign_id": f"camp-{rng.randrange(20)}",
        }
        if etype == "call.dialed":
            ev.update(contact_id=contact, attempt_id=attempt, phone_number=f"+1555{rng.randrange(10**7):07d}",
                      follow_up=rng.random() < 0.1)
            ev["pass"] = rng.randint(1, 3)
        elif etype in ("call.answered", "call.bridged"):
            ev["attempt_id"] = attempt
        elif etype == "call.amd":
            ev.update(attempt_id=attempt, result=rng.choice(["human", "machine", "unknown"]))
        elif etype == "call.ended":
            ev.update(attempt_id=attempt, sip_code=rng.choice([200, 486, 408, 480, 487, 503, 603]),
                      wrap_ms=rng.randrange(30_000), recording_url=f"https://rec.example.com/{attempt}.wav")
        elif etype == "contact.status":
            st = rng.choice(["dispatched", "in_progress", "retrying", "completed", "failed", "no_answer", "busy"])
            ev.update(contact_id=contact, status=st)
            if st == "retrying":
                ev["retry_number"] = rng.randint(1, 3)
                ev["due_at"] = format_time(ts + 3_600_000)
        elif etype == "call.transcript":
            words = " ".join(rng.choice(["yes", "hello", "we", "could", "book", "a", "meeting", "tomorrow"])
                             for _ in range(rng.randint(5, 40)))
            ev.update(attempt_id=attempt, role=rng.choice(["assistant", "user"]), content=words)
        elif etype == "conversation.evaluated":
            ev.update(attempt_id=attempt, conversation_id=f"conv-{attempt}",
                      results={"quality.tone": rng.randint(1, 5), "quality.empathy": rng.random(),
                               "outcome.booked": rng.random() < 0.2, "notes.summary": "short summary"})
        elif etype == "contact.added":
            ev.update(contact_id=contact, batch_id=f"batch-{rng.randrange(10)}",
                      phone_number=f"+1555{rng.randrange(10**7):07d}", email=f"{contact}@example.com",
                      variables={"first_name": "Sam", "company": "Initech", "plan": "pro", "seats": rng.randint(1, 500)})
        elif etype == "callback.requested":
            ev.update(contact_id=contact, due_at=ts + 86_400_000)
        elif etype == "email.sent":
            ev.update(contact_id=contact, message_id=f"msg-{rng.randrange(100_000)}")
        elif etype in ("email.delivered", "email.opened"):
            ev["message_id"] = f"msg-{rng.randrange(100_000)}"
        elif etype == "email.replied":
            ev.update(message_id=f"msg-{rng.randrange(100_000)}", sentiment=rng.choice(["positive", "neutral", "negative"]),
                      preview="Thanks, sounds interesting. Can we talk next week?", name="Sam Lee",
                      company="Initech", from_email="sam@initech.example")
        elif etype == "cost.incurred":
            ev.update(category=rng.choice(["telephony", "ai_generation", "email_sending"]),
                      usd=round(rng.random() * 0.2, 6))
        elif etype == "pass.started":
            ev.update(eligible=rng.randrange(10_000))
            ev["pass"] = rng.randint(1, 3)
        elif etype == "campaign.created":
            ev.update(name="Spring push", channel="voice", concurrency_limit=20, abandon_ceiling=0.03,
                      time_window={"start": "09:00", "end": "18:00", "tz": "America/New_York"}, kind="sales-outreach")
        elif etype == "campaign.status":
            ev["status"] = "active"
        elif etype == "batch.status":
            ev.update(batch_id=f"batch-{rng.randrange(10)}", status="in_progress")
        if rng.random() < 0.2:
            ev["dialer_meta"] = {"node": "dialer-3", "trace": f"{rng.getrandbits(64):016x}"}  # unknown field
        out.append(orjson.dumps(ev))
    return out


def bench(fn, raws: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(raws)
        best = min(best, time.perf_counter() - t)
    return len(raws) / best


def run_loads(raws):
    loads = orjson.loads
    for raw in raws:
        loads(raw)


def run_validate(raws):
    for raw in raws:
        validate_event(decode_event(raw))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rfc-share", type=float, default=0.3, help="share of ts written as RFC 3339 strings")
    ap.add_argument("--append", metavar="FILE", help="append the markdown row to FILE")
    args = ap.parse_args(argv)

    raws = make_events(args.events, args.seed, args.rfc_share)
    # Cold pass: empty validation caches (ids, RFC 3339 pieces); also checks
    # that the generated mix is valid.
    clear_caches()
    t = time.perf_counter()
    for raw in raws:
        validate_event(decode_event(raw))
    cold_rate = len(raws) / (time.perf_counter() - t)
    avg_bytes = sum(map(len, raws)) / len(raws)
    kinds = Counter(orjson.loads(r)["type"] for r in raws)

    loads_rate = bench(run_loads, raws, args.repeat)
    validate_rate = bench(run_validate, raws, args.repeat)
    ratio = loads_rate / validate_rate

    print(f"events: {len(raws)} ({len(kinds)} types, avg {avg_bytes:.0f} B, "
          f"{args.rfc_share:.0%} RFC 3339 ts), best of {args.repeat}")
    print(f"(a) orjson.loads               : {loads_rate:12,.0f} events/s")
    print(f"(b) decode_event+validate_event: {validate_rate:12,.0f} events/s  (first pass, cold caches: {cold_rate:,.0f}/s)")
    print(f"ratio (a)/(b)                  : {ratio:.2f}x  "
          f"({1e6 / validate_rate - 1e6 / loads_rate:.2f} us/event spent validating)")
    row = (f"| validation | {platform.python_implementation()} {platform.python_version()} | "
           f"{platform.machine()} | {len(raws)} events, {avg_bytes:.0f} B avg | "
           f"loads {loads_rate:,.0f}/s | decode+validate {validate_rate:,.0f}/s (cold {cold_rate:,.0f}/s) | {ratio:.2f}x |")
    print()
    print("| bench | python | machine | input | baseline | measured | ratio |")
    print("|---|---|---|---|---|---|---|")
    print(row)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write(row + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
