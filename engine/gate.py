"""The gate in front of the campaign state: event_id de-duplication and lateness.

SPEC §1: a repeat of an already-seen `event_id` (per org) is a no-op; an
event more than the lateness bound behind its campaign's watermark is not
applied (counted as late). The duplicate check comes first, so a retried copy
of an applied event is a duplicate, not late. A late event is not "seen": its
`event_id` stays free, and it does not move the watermark.

Seen ids are kept for `horizon_ms` (≥ 1 h) of event time behind the
watermark of the campaign they belong to, in per-minute buckets so expiry is
cheap; memory is bounded by the event rate times the horizon.
"""

from __future__ import annotations

DEFAULT_LATENESS_MS = 30_000
DEFAULT_HORIZON_MS = 3_600_000
_BUCKET = 60_000

OK, DUPLICATE, LATE = "ok", "duplicate", "late"


class EventGate:
    def __init__(self, lateness_ms: int = DEFAULT_LATENESS_MS, horizon_ms: int = DEFAULT_HORIZON_MS):
        self.lateness_ms = lateness_ms
        self.horizon_ms = max(horizon_ms, lateness_ms)
        self.seen: set[tuple[str, str]] = set()  # (org_id, event_id)
        self.watermarks: dict[tuple[str, str], int] = {}  # (org_id, campaign_id) -> max accepted ts
        # Plain dicts, not defaultdict(lambda): state must pickle for Bytewax recovery snapshots.
        self._expiry: dict[tuple[str, str], dict[int, list]] = {}
        self._expired_below: dict[tuple[str, str], int] = {}

    def check(self, ev: dict) -> str:
        """Verdict for one valid event; an `ok` event is recorded as seen and moves the watermark."""
        org = ev["org_id"]
        sid = (org, ev["event_id"])
        if sid in self.seen:
            return DUPLICATE
        camp = (org, ev["campaign_id"])
        ts = ev["ts"]
        wm = self.watermarks.get(camp)
        if wm is not None and ts < wm - self.lateness_ms:
            return LATE
        self.seen.add(sid)
        self._expiry.setdefault(camp, {}).setdefault(ts // _BUCKET, []).append(sid)
        if wm is None or ts > wm:
            self.advance(camp, ts)
        return OK

    def watermark(self, camp: tuple[str, str]) -> int | None:
        return self.watermarks.get(camp)

    def advance(self, camp: tuple[str, str], now: int) -> None:
        """Move a campaign's watermark (events, or live-mode ticks) and forget ids past the horizon."""
        wm = self.watermarks.get(camp)
        if wm is not None and now <= wm:
            return
        self.watermarks[camp] = now
        cutoff = (now - self.horizon_ms) // _BUCKET
        if cutoff <= self._expired_below.get(camp, cutoff - 1):
            return
        self._expired_below[camp] = cutoff
        buckets = self._expiry.get(camp, {})
        for b in [b for b in buckets if b < cutoff]:
            self.seen.difference_update(buckets.pop(b))
