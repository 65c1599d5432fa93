"""The org-level live stream ``GET /v1/live``: one compact summary per campaign of the caller's org.

The campaign list of the dashboard (and any wallboard) follows every campaign of an org at once
without opening one stream per campaign or polling. The hub (`api.live.LiveHub`) already receives
every published frame; for an org with summary subscribers it turns each frame into a summary
(`summarize`) and pushes it only when it differs from the last one of that campaign (``as_of``
aside: a heartbeat frame that changes nothing is not news). Per subscriber the state is bounded:
the latest pending summary per campaign (a slow client skips to the newest), like frames.

Every (re)connect starts with ``event: snapshot`` (every campaign of the org, read from the stored
``/stats`` bodies), then ``event: campaign`` per changed campaign, at most one batch per
``min_interval_s``. Summaries are whole, so the snapshot is all a resuming client missed: ids are
``<ms>-<n>`` (server time and a counter) and ``Last-Event-ID`` needs no cursor (docs/api.md). The SSE
body itself is `api.live_streams.org_summary_events`, beside the other live streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from redis.exceptions import RedisError

from api.read_model.multi_key import mget
from engine.storage.keys import flow_status_key, org_campaigns_key, stats_key

log = logging.getLogger("callpulse.api.org_live")

DEFAULT_MIN_SAMPLE = 50  # SPEC §3 default; the flow records its own in the flow status hash
WINDOWS = ("lifetime", "today", "24h", "30d")
REGULATORY = ("today", "30d")
FORECAST_ALERT_S = 900  # SPEC: a forecast alert fires when breach_in_s first becomes <= 15 min
CHUNK = 500


def _window(w) -> dict | None:
    if not isinstance(w, dict):
        return None
    return {k: w.get(k) for k in ("abandoned", "human_answered", "rate", "level")}


def _first_dial_at(body: dict) -> str | None:
    """Earliest dial the body tells of (passes' or runs' first dial): what the live rates are based on."""
    times = [p.get("started_at") for p in body.get("passes") or [] if isinstance(p, dict)]
    times += [r.get("first_dial_at") for r in body.get("runs") or [] if isinstance(r, dict)]
    times = [t for t in times if isinstance(t, str)]
    return min(times) if times else None  # RFC 3339 UTC strings of one format sort as times


def open_alerts(abandon: dict) -> list[dict]:
    """Abandon windows at warning/breach (``kind: level``) and forecasts of a breach within 15 min."""
    out = []
    windows = abandon.get("windows") or {}
    for name in WINDOWS:
        w = windows.get(name) or {}
        if w.get("level") in ("warning", "breach"):
            out.append({"kind": "level", "window": name, "level": w["level"], "rate": w.get("rate"),
                        "abandoned": w.get("abandoned"), "human_answered": w.get("human_answered")})
    forecast = abandon.get("forecast") or {}
    for name in REGULATORY:
        f = forecast.get(name) or {}
        secs = f.get("breach_in_s")
        if isinstance(secs, (int, float)) and secs <= FORECAST_ALERT_S and \
                (windows.get(name) or {}).get("level") != "breach":
            out.append({"kind": "forecast", "window": name, "breach_in_s": secs, "breach_at": f.get("breach_at")})
    return out


LIVE_KEYS = ("banner", "dials_per_sec", "pending", "retries_queued", "eta_seconds", "eta_at", "last_dial_at",
             "waiting_for_agent", "connected_per_hour", "calls_per_min")


def _zone(body: dict) -> str:
    """The campaign's time zone: its calling window's (tz filled in), UTC without one (SPEC §3 guards)."""
    tw = (body.get("config") or {}).get("time_window")
    return (tw.get("tz") or "UTC") if isinstance(tw, dict) else "UTC"


def _contacts(body: dict) -> dict:
    """The parts of pending / in flight an operator reads apart: new, on a call, retry queue, follow-ups."""
    contacts = body.get("contacts") or {}
    by_status = contacts.get("by_status") or {}
    buckets = contacts.get("buckets") or {}
    return {"total": contacts.get("total"), "new": by_status.get("pending"), "on_call": buckets.get("in_progress"),
            "retrying": by_status.get("retrying"), "followup_scheduled": by_status.get("followup_scheduled")}


def _complaints(body: dict) -> dict | None:
    """Email: the spam-complaint windows (the email twin of the abandon windows), else None."""
    cp = (body.get("email") or {}).get("complaints")
    if body.get("channel") != "email" or not isinstance(cp, dict):
        return None
    windows = cp.get("windows") or {}
    keys = ("complained", "delivered", "rate", "level")
    return {"ceiling": cp.get("ceiling"), "warning": cp.get("warning"),
            "windows": {name: {k: windows[name].get(k) for k in keys}
                        for name in ("lifetime", "30d") if isinstance(windows.get(name), dict)}}


def summarize(body: dict, min_sample: int) -> dict:
    """The compact summary of one `/stats` body (absent keys of newer bodies stay out, never fail)."""
    live = body.get("live") or {}
    abandon = body.get("abandon") or {}
    windows = abandon.get("windows") or {}
    summary = {
        "campaign_id": body.get("campaign_id"), "name": body.get("name"), "channel": body.get("channel"),
        "kind": body.get("kind"), "status": body.get("status"), "as_of": body.get("as_of"),
        "first_dial_at": _first_dial_at(body), "tz": _zone(body),
        "live": {**{k: live.get(k) for k in LIVE_KEYS}, "active_calls": body.get("active_calls")},
        "contacts": _contacts(body),
        "complaints": _complaints(body),
        "abandon": {"ceiling": abandon.get("ceiling"), "budget": abandon.get("budget"), "min_sample": min_sample,
                    "windows": {name: _window(windows.get(name)) for name in REGULATORY}},
        "open_alerts": open_alerts(abandon),
    }
    forecast = abandon.get("forecast")
    if isinstance(forecast, dict):
        summary["abandon"]["forecast"] = {name: forecast.get(name) for name in REGULATORY}
    return summary


def comparable(summary: dict) -> bytes:
    """A summary without ``as_of``: equal bytes mean nothing an operator sees has changed."""
    return orjson.dumps({k: v for k, v in summary.items() if k != "as_of"}, option=orjson.OPT_SORT_KEYS)


class MinSample:
    """The flow's alert ``min_sample`` (recorded in the flow status hash at its start), cached a few seconds."""

    def __init__(self, ttl_s: float = 10.0):
        self.ttl_s = ttl_s
        self.value = DEFAULT_MIN_SAMPLE
        self.read_at = float("-inf")

    async def get(self, redis) -> int:
        if time.monotonic() - self.read_at >= self.ttl_s:
            with contextlib.suppress(RedisError, ValueError, TypeError):
                raw = await redis.hget(flow_status_key(), "min_sample")
                self.value = int(raw) if raw is not None else DEFAULT_MIN_SAMPLE
            self.read_at = time.monotonic()
        return self.value


class SummarySubscriber:
    """One ``/v1/live`` client: the latest pending summary per campaign."""

    __slots__ = ("pending", "wake", "closed", "reason")

    def __init__(self):
        self.pending: dict[str, bytes] = {}
        self.wake = asyncio.Event()
        self.closed = False
        self.reason = ""

    def push(self, camp: str, data: bytes) -> None:
        self.pending[camp] = data
        self.wake.set()

    def close(self, reason: str) -> None:
        self.closed = True
        self.reason = reason
        self.wake.set()


class OrgSummaries:
    """The hub's side: summary subscribers per org and the last summary sent per campaign."""

    def __init__(self, min_sample: MinSample):
        self.min_sample = min_sample
        self.subs: dict[str, set[SummarySubscriber]] = {}
        self.last: dict[tuple[str, str], bytes] = {}  # only for orgs with subscribers

    def on_frame(self, org: str, camp: str, frame: dict) -> None:
        subs = self.subs.get(org)
        if not subs or not isinstance(frame, dict):
            return
        summary = summarize(frame, self.min_sample.value)
        key = comparable(summary)
        if self.last.get((org, camp)) == key:
            return
        self.last[(org, camp)] = key
        data = orjson.dumps(summary)
        for s in subs:
            s.push(camp, data)

    def add(self, org: str) -> SummarySubscriber:
        s = SummarySubscriber()
        self.subs.setdefault(org, set()).add(s)
        return s

    def remove(self, org: str, s: SummarySubscriber) -> None:
        subs = self.subs.get(org)
        if subs is None:
            return
        subs.discard(s)
        if not subs:
            del self.subs[org]
            for key in [k for k in self.last if k[0] == org]:
                del self.last[key]

    def close_all(self, reason: str) -> None:
        for subs in self.subs.values():
            for s in list(subs):
                s.close(reason)

    def count(self) -> int:
        return sum(len(s) for s in self.subs.values())


async def org_summaries(redis, org: str, min_sample: int) -> list[dict]:
    """Summaries of every campaign of the org from the stored `/stats` bodies, ordered by id."""
    ids = sorted(x.decode() if isinstance(x, bytes) else x for x in await redis.smembers(org_campaigns_key(org)))
    out = []
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        for body in await mget(redis, [stats_key(org, c) for c in part]):
            if body is not None:
                out.append(summarize(orjson.loads(body), min_sample))
    return out
