"""The email message list and CSV end to end: the simulator's email campaign (beside a voice one) through the
real flow (`callpulse flow` subprocess) into Redis, read through a real uvicorn server over HTTP, checked
against the campaign's /stats counts and against the records computed here from the raw event file (each
message's earliest event of every type)."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from engine.storage.keys import message_index_key
from engine.timefmt import format_time

pytestmark = pytest.mark.e2e

ORG = "org-1"
STATUSES = ("sent", "delivered", "bounced", "opened", "clicked", "replied", "unsubscribed", "complained")
TIME_FIELD = {f"email.{s}": f"{s}_at" for s in STATUSES}
COUNT_OF = {"sent_at": "emails_sent", **{f"{s}_at": s for s in STATUSES if s != "sent"}}


@pytest.fixture(scope="module")
def env(stack):
    s = stack(["--orgs", "1", "--campaigns", "2", "--contacts", "120", "--seed", "9", "--channel", "mixed"],
              keys={"read": {"org": ORG, "scopes": ["campaigns:read"]}})
    events = s.events
    channel = {e["campaign_id"]: e.get("channel", "voice") for e in events if e["type"] == "campaign.created"}
    return {"http": s.client("read"), "redis": s.redis, "events": events,
            "email": next(c for c, ch in channel.items() if ch == "email"),
            "voice": next(c for c, ch in channel.items() if ch == "voice")}


def _get(env, path, **params):
    r = env["http"].get(path, params=params)
    assert r.status_code == 200, (path, params, r.text)
    return r.json()


def _all(env, camp, **params) -> list[dict]:
    out, page = [], 1
    while True:
        body = _get(env, f"/v1/campaigns/{camp}/messages", page=page, limit=200, **params)
        assert (body["campaign_id"], body["page"], body["limit"]) == (camp, page, 200)
        out += body["messages"]
        if len(body["messages"]) < 200:
            assert body["total"] == len(out)
            return out
        page += 1


def _expected(events: list[dict], camp: str) -> dict[str, dict]:
    """Each message's record by the rule, from the raw events: the earliest (ts, event_id) of each type."""
    mine = sorted((e for e in events if e["campaign_id"] == camp), key=lambda e: (e["ts"], e["event_id"]))
    emails = {e["contact_id"]: e.get("email") for e in mine if e["type"] == "contact.added"}
    first: dict[str, dict] = {}
    for e in mine:
        if e["type"] in TIME_FIELD:
            first.setdefault(e["message_id"], {}).setdefault(e["type"], e)
    out = {}
    for mid, facts in first.items():
        sent, replied = facts.get("email.sent"), facts.get("email.replied")
        rec = {"message_id": mid, "contact_id": sent["contact_id"] if sent else None,
               "email": emails.get(sent["contact_id"]) if sent else None,
               "sentiment": replied["sentiment"] if replied else None,
               "status": [s for s in STATUSES if f"email.{s}" in facts][-1]}
        for etype, field in TIME_FIELD.items():
            ev = facts.get(etype)
            rec[field] = format_time(ev["ts"]) if ev else None
        out[mid] = rec
    return out


def test_the_message_list_is_the_rule_applied_to_the_events_and_adds_up_to_stats(env):
    camp = env["email"]
    messages = _all(env, camp, order="asc")
    by_id = {m["message_id"]: m for m in messages}
    assert len(by_id) == len(messages) > 100
    assert by_id == _expected(env["events"], camp)
    email = _get(env, f"/v1/campaigns/{camp}/stats")["email"]
    for field, count in COUNT_OF.items():
        assert sum(1 for m in messages if m[field] is not None) == email[count], field
    assert email["opened"] and email["replied"] and all(m["email"] for m in messages if m["contact_id"])
    # oldest send first with asc, newest first by default
    sent = [m["sent_at"] for m in messages if m["sent_at"]]
    assert sent == sorted(sent)
    newest = _get(env, f"/v1/campaigns/{camp}/messages", limit=5)["messages"]
    assert [m["sent_at"] for m in newest] == sorted(sent, reverse=True)[:5]


def test_the_status_filter_keeps_the_messages_of_that_status(env):
    camp = env["email"]
    every = _all(env, camp)
    by_status = Counter(m["status"] for m in every)
    assert len(by_status) >= 4
    for status in STATUSES:
        got = _all(env, camp, status=status)
        assert len(got) == by_status[status] and all(m["status"] == status for m in got), status
    assert env["redis"].zcard(message_index_key(ORG, camp)) == len(every)
    r = env["http"].get(f"/v1/campaigns/{camp}/messages", params={"status": "read"})
    assert r.status_code == 422
    assert env["http"].get(f"/v1/campaigns/{camp}/messages", params={"limit": 201}).status_code == 422


def test_the_csv_has_one_row_per_message_in_sent_order(env):
    camp = env["email"]
    listed = {m["message_id"]: m for m in _all(env, camp)}
    r = env["http"].get(f"/v1/campaigns/{camp}/messages.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'{camp}-messages.csv' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(listed) and {row["message_id"] for row in rows} == set(listed)
    for row in rows:
        assert row == {k: "" if v is None else str(v) for k, v in listed[row["message_id"]].items()}
    sent = [row["sent_at"] for row in rows if row["sent_at"]]
    assert sent == sorted(sent)
    opened = list(csv.DictReader(io.StringIO(env["http"].get(f"/v1/campaigns/{camp}/messages.csv",
                                                              params={"status": "opened"}).text)))
    assert len(opened) == sum(1 for m in listed.values() if m["status"] == "opened")


def test_a_voice_campaign_has_no_messages_and_an_unknown_one_is_404(env):
    body = _get(env, f"/v1/campaigns/{env['voice']}/messages")
    assert (body["total"], body["messages"]) == (0, [])
    r = env["http"].get(f"/v1/campaigns/{env['voice']}/messages.csv")
    assert r.status_code == 200 and len(r.text.strip().splitlines()) == 1  # the header only
    for path in ("messages", "messages.csv"):
        r = env["http"].get(f"/v1/campaigns/no-such/{path}")
        assert r.status_code == 404 and r.json() == {"detail": "campaign 'no-such' not found"}
