"""The demo's terminal lines: one line of live numbers per campaign, judged as the dashboard judges them.

Read back from the `/stats` bodies the flow wrote to Redis. The abandon rate follows the dashboard's
wording (docs/dashboard.md): below the flow's ``min_sample`` an `ok` level is "too few to judge", a
`breach` there is certain, and a finished campaign's rate is final — so the terminal never says
"50.0% (ok)" where the page says there is too little to judge.
"""

from __future__ import annotations

import sys
import time

DEFAULT_MIN_SAMPLE = 50  # SPEC §3's default; the flow records its own in its status hash
FINISHED = ("completed", "stopped", "cancelled")
NAME_WIDTH = 30


def abandon_words(window: dict, min_sample: int, status: str) -> str:
    """`abandon today 2.1% (ok)`, `… too few to judge (12/50 answers)`, `… (breach, certain)`, `… (final)`."""
    rate, level, answers = window["rate"], window["level"], window["human_answered"]
    if status in FINISHED:
        return f"abandon today {rate:.1%} ({level}, final)"
    if answers < min_sample:
        if level == "ok":
            return f"abandon today too few to judge ({answers}/{min_sample} answers)"
        return f"abandon today {rate:.1%} ({level}, certain at the sample size)"
    return f"abandon today {rate:.1%} ({level})"


def _title(body: dict) -> str:
    """The campaign's name (its id when it has none), cut to the column."""
    name = body.get("name") or body["campaign_id"]
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 1] + "…"


def _guards(body: dict) -> str:
    """`off-hours N  redials N  ` from the compliance block (empty on a body without one)."""
    c = body.get("compliance") or {}
    if not c:
        return ""
    return (f"off-hours {c['calling_hours']['violations']:3d}  "
            f"redials {c['abandon_redial']['violations']:2d}  ")


def status_line(body: dict, min_sample: int = DEFAULT_MIN_SAMPLE) -> str:
    live = body["live"]
    head = f"  {_title(body):<{NAME_WIDTH}} {live['banner']:<22}"
    if body["channel"] == "email":
        e = body["email"]
        return (head + f"sends/s {live['dials_per_sec']:5.2f}  sent {e['emails_sent']:4d}  "
                f"opened {e['opened']:4d}  replied {e['replied']:3d}  spam {e.get('complained', 0):3d}  "
                f"pending {live['pending']}")
    ring = live["avg_ring_ms"]
    today = abandon_words(body["abandon"]["windows"]["today"], min_sample, body["status"])
    return (head + f"dials/s {live['dials_per_sec']:5.2f}  connected/h {live['connected_per_hour']:6.1f}  "
            f"ringing {live['ringing']:2d}  in call {live['in_progress']:2d}  "
            f"ring {ring / 1000 if ring else 0:4.1f}s  {today}  "
            f"waiting {live.get('waiting_for_agent', 0):2d}  {_guards(body)}pending {live['pending']}")


def flow_min_sample(client) -> int:
    """The flow's alert sample size, as it recorded it at start (the default until it has)."""
    from engine.storage.keys import flow_status_key

    raw = client.hget(flow_status_key(), "min_sample")
    try:
        return int(raw) if raw is not None else DEFAULT_MIN_SAMPLE
    except ValueError:
        return DEFAULT_MIN_SAMPLE


class StatusPrinter:
    """Prints the status lines; the first time a campaign shows up, also its id and dashboard link."""

    def __init__(self, client, org: str, dashboard_url: str):
        self.client, self.org, self.dashboard_url = client, org, dashboard_url
        self.introduced: set[str] = set()

    def print(self) -> None:
        import orjson

        from engine.storage.keys import org_campaigns_key, stats_key

        ids = sorted(x.decode() for x in self.client.smembers(org_campaigns_key(self.org)))
        min_sample = flow_min_sample(self.client)
        bodies = [orjson.loads(raw) for raw in (self.client.get(stats_key(self.org, c)) for c in ids) if raw]
        stamp = time.strftime("%H:%M:%S %Z")  # the terminal's local time, zone named
        print(stamp + (f"  {len(bodies)} campaign(s)" if bodies else "  waiting for the first frames…"))
        for body in bodies:
            if body["campaign_id"] not in self.introduced:
                self.introduced.add(body["campaign_id"])
                print(f"  new: {_title(body)} — id {body['campaign_id']}, "
                      f"{self.dashboard_url}/campaigns/{body['campaign_id']}")
        for body in bodies:
            print(status_line(body, min_sample))
        sys.stdout.flush()
