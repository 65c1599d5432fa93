"""The `/v1/live` summary fields the campaign list reads (issue #24): unit level, no server.

The list sorts worst first, sums org totals (active calls, abandons today), shows an email row's spam
complaints instead of abandon columns and leaves follow-ups out of an email ETA: each needs a field of
`api.org_live.summarize`, checked here on hand-made `/stats` bodies.
"""

from __future__ import annotations

import pytest

from api.models.live import OrgLiveSummary
from api.org_live import comparable, summarize

pytestmark = pytest.mark.unit


def _body(**over) -> dict:
    body = {"campaign_id": "c", "name": "n", "channel": "voice", "kind": None, "status": "active",
            "as_of": "2026-05-08T09:00:00.000Z", "passes": [], "active_calls": 7,
            "config": {"time_window": {"start": "09:00", "end": "17:00", "tz": "Europe/London"}},
            "contacts": {"total": 20, "in_flight": 9,
                         "by_status": {"pending": 4, "dispatched": 1, "in_progress": 2, "retrying": 5,
                                       "followup_scheduled": 1},
                         "buckets": {"pending": 10, "in_progress": 3, "completed": 6, "exhausted": 1}},
            "live": {"banner": "live", "dials_per_sec": 1.5, "pending": 10, "retries_queued": 6, "eta_seconds": 2.0,
                     "eta_at": "2026-05-08T09:00:02.000Z", "last_dial_at": None, "waiting_for_agent": 2,
                     "connected_per_hour": 120.0, "calls_per_min": 3.5, "ringing": 1},
            "abandon": {"ceiling": 0.03, "budget": 0, "windows": {}},
            "email": {"complaints": {"ceiling": 0.003, "warning": 0.001, "windows": {
                "lifetime": {"complained": 1, "delivered": 900, "rate": 1 / 900, "level": "warning"},
                "30d": {"complained": 1, "delivered": 900, "rate": 1 / 900, "level": "warning"}}}}}
    body.update(over)
    return body


def test_summary_carries_what_the_list_shows():
    s = summarize(_body(), 50)
    assert s["tz"] == "Europe/London"
    assert {k: s["live"][k] for k in ("active_calls", "waiting_for_agent", "connected_per_hour", "calls_per_min")} == \
        {"active_calls": 7, "waiting_for_agent": 2, "connected_per_hour": 120.0, "calls_per_min": 3.5}
    # pending (10) and in flight (9) split: new 4 + retry queue 5 + follow-ups 1 = pending; on a call 3
    assert s["contacts"] == {"total": 20, "new": 4, "on_call": 3, "retrying": 5, "followup_scheduled": 1}
    assert s["complaints"] is None  # voice: abandon windows, no complaint figures
    OrgLiveSummary.model_validate(s)


def test_email_summary_has_its_complaint_windows_and_no_zone_means_utc():
    s = summarize(_body(channel="email", config={"time_window": None}), 50)
    assert s["tz"] == "UTC"
    assert s["complaints"]["warning"] == 0.001
    assert s["complaints"]["windows"]["30d"] == {"complained": 1, "delivered": 900, "rate": 1 / 900, "level": "warning"}
    OrgLiveSummary.model_validate(s)
    # a new active call is news for the list (not only as_of)
    assert comparable(summarize(_body(active_calls=8), 50)) != comparable(summarize(_body(), 50))


def test_summary_of_an_old_or_partial_body_never_fails():
    s = summarize({"campaign_id": "c", "channel": "email"}, 50)
    assert s["tz"] == "UTC" and s["complaints"] is None and s["live"]["active_calls"] is None
    assert s["contacts"] == {"total": None, "new": None, "on_call": None, "retrying": None, "followup_scheduled": None}
