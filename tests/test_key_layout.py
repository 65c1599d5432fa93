"""Redis key layout: every key built from ids is injective (no tenant crossing), one slot per campaign,
and a layout-1 dataset is migrated (flows/key_layout.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.storage import keys
from flows.key_layout import migrate

pytestmark = pytest.mark.e2e

ID = st.text(alphabet="AB:._-9", min_size=1, max_size=6)  # the id charset, ':' made frequent
ANY = st.text(min_size=1, max_size=6)  # what a careless caller might pass: still injective

CAMPAIGN_BUILDERS = [keys.stats_key, keys.frames_stream, keys.alerts_stream, keys.alert_ids_key,
                     keys.contact_details_key, keys.attempt_details_key, keys.attempt_index_key,
                     keys.batch_details_key, keys.daily_key, keys.replies_key, keys.replies_index_key,
                     keys.contact_index_key, keys.contact_profiles_key, keys.contact_attempts_key,
                     keys.archive_key, keys.watermark_key, keys.message_details_key, keys.message_index_key,
                     keys.history_key, keys.followups_key]
ORG_BUILDERS = [keys.org_alerts_stream, keys.org_campaigns_key, keys.org_alert_ids_key]


def all_keys(org: str, camp: str, extra: str) -> dict[str, tuple]:
    """Every key the layout builds from these ids, mapped to what it was built from."""
    out = {}
    for b in CAMPAIGN_BUILDERS:
        out[b(org, camp)] = (b.__name__, org, camp)
    out[keys.contact_index_key(org, camp, extra)] = ("contact_index_key", org, camp, extra)
    out[keys.transcript_key(org, camp, extra)] = ("transcript_key", org, camp, extra)
    out[keys.message_index_key(org, camp, extra)] = ("message_index_key", org, camp, extra)
    for b in ORG_BUILDERS:
        out[b(org)] = (b.__name__, org)
    out[keys.seen_key(org, extra)] = ("seen_key", org, extra)
    out[keys.alert_id(org, camp, "30d", 1)] = ("alert_id", org, camp)
    out["member:" + keys.trail_member(camp, extra)] = ("trail_member", camp, extra)
    return out


@settings(max_examples=400, deadline=None)
@given(a=st.tuples(ID, ID, ID), b=st.tuples(ID, ID, ID))
def test_distinct_id_tuples_never_share_a_key(a, b):
    ka, kb = all_keys(*a), all_keys(*b)
    for k in set(ka) & set(kb):
        assert ka[k] == kb[k], f"{k!r} built from {ka[k]} and from {kb[k]}"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab:", min_size=3, max_size=10), extra=ID)
def test_every_split_of_the_same_text_gets_its_own_keys(text, extra):
    """The collision of layout 1 came from moving a ':' between org and campaign: try every split."""
    splits = [(text[:i], text[i + 1:]) for i, ch in enumerate(text) if ch == ":" and 0 < i < len(text) - 1]
    built = {}
    for org, camp in splits:
        for k, origin in all_keys(org, camp, extra).items():
            assert built.setdefault(k, origin) == origin, f"{k!r} built from {built[k]} and {origin}"


@settings(max_examples=200, deadline=None)
@given(a=st.tuples(ANY, ANY, ANY), b=st.tuples(ANY, ANY, ANY))
def test_injective_for_any_text(a, b):
    ka, kb = all_keys(*a), all_keys(*b)
    for k in set(ka) & set(kb):
        assert ka[k] == kb[k]


@given(st.text(max_size=20))
def test_key_part_is_reversible_and_safe(s):
    part = keys.key_part(s)
    assert unquote(part) == s
    assert re.fullmatch(r"[A-Za-z0-9_.%-]*", part)


@given(org=ID, camp=ID)
def test_the_route_key_splits_back_into_its_ids(org, camp):
    """`split_route_key` inverts `route_key` (the flow's key of a campaign); a string with no separator (the
    flow's UNROUTABLE, a routing field a raw writer made up) names no campaign."""
    assert keys.split_route_key(keys.route_key(org, camp)) == (org, camp)
    assert keys.split_route_key(org + camp) is None


@given(org=ID, camp=ID, extra=ID)
def test_one_cluster_slot_per_campaign(org, camp, extra):
    tag = keys.campaign_tag(org, camp)
    campaign_keys = [b(org, camp) for b in CAMPAIGN_BUILDERS] + [keys.transcript_key(org, camp, extra),
                                                                  keys.message_index_key(org, camp, extra)]
    for k in campaign_keys:
        first = k[k.index("{"):k.index("}") + 1]  # Redis Cluster hashes the first {...}
        assert first == tag


def test_ids_without_colon_keep_their_layout_1_keys():
    assert keys.stats_key("org-1", "camp.1_a") == "callpulse:stats:{org-1:camp.1_a}"
    assert keys.stats_key("t1", "a:b") == "callpulse:stats:{t1:a%3Ab}"
    assert keys.stats_key("t1:a", "b") == "callpulse:stats:{t1%3Aa:b}"


def test_migration_from_layout_1(redis_client):
    r = redis_client
    r.flushall()
    # layout 1: org t1 campaign a:b and org t1:a campaign b shared {t1:a:b}; org x campaign y:z was alone
    r.sadd("callpulse:campaigns:{t1}", "a:b")
    r.sadd("callpulse:campaigns:{t1:a}", "b")
    r.sadd("callpulse:campaigns:{x}", "y:z")
    r.set("callpulse:stats:{t1:a:b}", b"mixed")
    r.set("callpulse:stats:{x:y:z}", b"x's body")
    r.hset("callpulse:transcript:{x:y:z}:att:1", "e1", "line")
    r.set("callpulse:stats:{plain:camp}", b"untouched")
    assert migrate(r) is not None
    assert not r.exists("callpulse:stats:{t1:a:b}")  # shared by two tenants: dropped, the flow rewrites it
    assert r.get(keys.stats_key("x", "y:z")) == b"x's body"
    assert r.hget(keys.transcript_key("x", "y:z", "att:1"), "e1") == b"line"
    assert r.smembers(keys.org_campaigns_key("t1:a")) == {b"b"}
    assert r.get("callpulse:stats:{plain:camp}") == b"untouched"
    assert r.get(keys.LAYOUT_KEY) == b"2"
    assert migrate(r) is None  # once per dataset


def _event(i, org, camp, typ, **fields):
    return {"event_id": f"{org}-{camp}-{i}", "type": typ, "ts": 1_780_000_000_000 + i * 1000,
            "org_id": org, "campaign_id": camp, **fields}


def test_colliding_ids_stay_apart_end_to_end(stack):
    """Org t1 campaign a:b and org t1:a campaign b: each tenant sees only its own campaign through the
    real ingest, flow and API (layout 1 gave t1:a's key t1's private body)."""
    events = [_event(1, "t1", "a:b", "campaign.created", name="t1 private"),
              _event(2, "t1", "a:b", "contact.added", contact_id="c1"),
              _event(3, "t1", "a:b", "contact.added", contact_id="c2"),
              _event(4, "t1:a", "b", "campaign.created", name="t1:a own"),
              _event(5, "t1:a", "b", "contact.added", contact_id="z9")]
    s = stack(extra={"events.ndjson": events}, keys={"t1": {"org": "t1", "scopes": ["campaigns:read"]},
                                                     "t1:a": {"org": "t1:a", "scopes": ["campaigns:read"]}})
    r, server, k1, k2 = s.redis, s.servers[0], s.keys["t1"], s.keys["t1:a"]
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            def get(path, key):
                return http.get(path, headers={"Authorization": f"Bearer {key}"})
            own = get("/v1/campaigns/b/stats", k2)
            assert own.status_code == 200
            assert own.json()["name"] == "t1:a own" and own.json()["contacts"]["total"] == 1
            t1 = get("/v1/campaigns/a:b/stats", k1).json()
            assert t1["name"] == "t1 private" and t1["contacts"]["total"] == 2
            assert get("/v1/campaigns/a:b/stats", k2).status_code == 404
            assert get("/v1/campaigns/b/stats", k1).status_code == 404
            ids = {c["contact_id"] for c in get("/v1/campaigns/b/contacts", k2).json()["contacts"]}
            assert ids == {"z9"}
    finally:
        server.stop()
        r.close()


def test_an_older_snapshot_resumes_with_every_detail_rewritten():
    """A campaign resumed from a snapshot of an older state version writes all its detail again (its old
    keys may have been dropped by the migration; tests/test_state_upgrade.py reads a real release-1
    snapshot); one of this version does not."""
    import pickle

    from engine.state.campaign import CampaignState
    from flows.campaign_step import STATE_VERSION, CampaignLogic
    from flows.config import FlowConfig

    def resumed(version):
        st = CampaignState("t1", "a:b", collect_details=True)
        for i, cid in enumerate(["c1", "c2"]):
            st.apply(_event(i, "t1", "a:b", "contact.added", contact_id=cid))
        st.take_details()  # already written before the restart
        return CampaignLogic(FlowConfig(), pickle.dumps((version, st, 3, False, 0.0, 0.0)))

    logic = resumed(1)
    assert logic.dirty and {c["contact_id"] for c in logic.state.take_details().contacts} == {"c1", "c2"}
    logic = resumed(STATE_VERSION)
    assert not logic.dirty and logic.state.take_details().contacts == []
