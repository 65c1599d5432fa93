"""Fault injection over a clean (ts-sorted) event stream: late, repeated and broken deliveries.

- jitter: event e arrives at `ts + U(0, jitter_ms)`; the output is in arrival
  order, so every event is at most `jitter_ms` behind the largest `ts`
  delivered before it.
- duplicates: an exact copy (same `event_id`, a new dict) arrives
  `U(0, duplicate_delay_ms)` after the original, so a copy is at most
  `jitter_ms + duplicate_delay_ms` behind (what a webhook retry looks like).
- malformed: an extra invalid item delivered with its source event. Dicts,
  except kinds `broken_json` (truncated JSON text) and `not_object` (valid
  JSON that is not an object), which are `str`. Each malformed dict gets a
  fresh `event_id` (`<campaign>-x<n>`) unless the fault is the id itself, so
  it never shadows a good event.

A separate RNG drives the faults, so the clean events are identical with or
without them. Streaming: only events still inside the jitter/delay horizon
are buffered.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator

import orjson

# A type-specific field whose absence makes the event invalid (SPEC §1).
REQUIRED = {
    "campaign.status": "status", "campaign.run_started": "run", "campaign.run_cancelled": "run",
    "batch.created": "batch_id", "batch.status": "status",
    "pass.started": "eligible", "contact.added": "contact_id", "contact.status": "status",
    "call.dialed": "attempt_id", "call.answered": "attempt_id", "call.amd": "result",
    "call.bridged": "attempt_id", "call.ended": "attempt_id", "call.transcript": "content",
    "conversation.evaluated": "results", "callback.requested": "due_at",
    "callback.completed": "contact_id", "callback.cancelled": "contact_id",
    "email.sent": "message_id", "email.delivered": "message_id", "email.bounced": "message_id",
    "email.opened": "message_id", "email.clicked": "message_id", "email.unsubscribed": "message_id",
    "email.replied": "sentiment", "meeting.booked": "contact_id", "cost.incurred": "usd",
}
ENVELOPE = ("event_id", "type", "ts", "org_id", "campaign_id")
KINDS = ("broken_json", "not_object", "missing_envelope", "missing_field", "bad_id",
         "unknown_type", "bad_ts", "bad_field_type")


def malformed(ev: dict, rng: random.Random, n: int) -> dict | str:
    """An invalid variant of `ev` (kind picked by rng)."""
    kind = rng.choice(KINDS)
    bad = dict(ev)
    bad["event_id"] = f"{ev['campaign_id']}-x{n:06d}"
    if kind == "broken_json":
        text = orjson.dumps(bad).decode()
        return text[: rng.randint(1, len(text) - 2)]
    if kind == "not_object":
        return rng.choice(['[1, 2, 3]', '"call.dialed"', "42", "null", "[]"])
    if kind == "missing_envelope":
        del bad[rng.choice(ENVELOPE)]
    elif kind == "missing_field":
        del bad[REQUIRED.get(ev["type"], "ts")]
    elif kind == "bad_id":
        bad["event_id"] = rng.choice(["has space", "x" * 129, "", "slash/id", "emoji-\u2603"])
    elif kind == "unknown_type":
        bad["type"] = rng.choice(["call.teleported", "CALL.DIALED", "email", ""])
    elif kind == "bad_ts":
        ts = ev["ts"]
        bad["ts"] = rng.choice([ts + 0.5, True, "2026-05-08T09:00:00", "yesterday", None])
    else:  # bad_field_type: a wrongly typed envelope value
        field = rng.choice(["org_id", "campaign_id", "event_id", "type"])
        bad[field] = rng.choice([42, True, ["a"], {"id": 1}])
    return bad


def inject_faults(events: Iterable[dict], cfg, stats: dict | None = None) -> Iterator[dict | str]:
    rng = random.Random(f"{cfg.seed}:faults")
    rand = rng.random
    jitter, delay = cfg.jitter_ms, cfg.duplicate_delay_ms
    p_dup, p_bad = cfg.duplicate_pct / 100, cfg.malformed_pct / 100
    stats = stats if stats is not None else {}
    stats.setdefault("duplicates", 0)
    stats.setdefault("malformed", 0)
    heap: list = []  # (arrival, seq, item)
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    for ev in events:
        ts = ev["ts"]
        # Anything arriving by ts is safe to release: later events arrive at >= their ts >= this ts.
        while heap and heap[0][0] <= ts:
            yield pop(heap)[2]
        arrival = ts + int((jitter + 1) * rand()) if jitter else ts
        push(heap, (arrival, seq, ev))
        seq += 1
        if p_dup and rand() < p_dup:
            push(heap, (arrival + int((delay + 1) * rand()), seq, dict(ev)))
            seq += 1
            stats["duplicates"] += 1
        if p_bad and rand() < p_bad:
            stats["malformed"] += 1
            push(heap, (arrival, seq, malformed(ev, rng, stats["malformed"])))
            seq += 1
    while heap:
        yield pop(heap)[2]
