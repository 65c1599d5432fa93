"""Agents (issue #27, SPEC §3 *Agents*, *Agent events*): the `agents` block of `/stats` from `agent.state` events
and the agent of each counted `call.bridged`, hand-computed from the definitions, in the reference model and the
engine alike, in any arrival order, through the recovery format, with bounded memory."""

from __future__ import annotations

import itertools
import random

import pytest

from engine.state.fold import Fold
from engine.storage.recovery_format import decode, encode
from engine.validation.events import EventRejected, validate_event
from tests.reference_model import reference_stats

pytestmark = pytest.mark.unit

T0 = 1_778_198_400_000  # 2026-05-08T00:00:00Z
S = 1000
_ids = itertools.count()


def ev(type_, ts, **fields) -> dict:
    return {"event_id": f"e{next(_ids):07d}", "type": type_, "ts": ts, "org_id": "o1", "campaign_id": "c1", **fields}


def floor() -> list[dict]:
    """Agent a1 works a call, wraps, pauses for lunch; bot b9 takes a call and never sends a state; a2 only
    logs in. now = the last event, T0 + 100 s."""
    return [
        ev("campaign.created", T0, name="Floor"),
        ev("agent.state", T0, agent_id="a1", state="ready"),
        ev("agent.state", T0 + 5 * S, agent_id="a2", state="ready"),
        ev("call.dialed", T0 + 10 * S, attempt_id="x1", contact_id="k1"),
        ev("call.answered", T0 + 20 * S, attempt_id="x1"),
        ev("call.bridged", T0 + 21 * S, attempt_id="x1", agent_id="a1"),
        ev("agent.state", T0 + 21 * S, agent_id="a1", state="on_call"),
        ev("call.ended", T0 + 51 * S, attempt_id="x1", wrap_ms=9000),
        ev("agent.state", T0 + 51 * S, agent_id="a1", state="wrap"),
        ev("agent.state", T0 + 60 * S, agent_id="a1", state="paused", reason="lunch"),
        ev("call.dialed", T0 + 60 * S, attempt_id="x2", contact_id="k2"),
        ev("call.answered", T0 + 70 * S, attempt_id="x2"),
        ev("call.bridged", T0 + 70 * S + 500, attempt_id="x2", agent_id="b9"),
        ev("call.ended", T0 + 90 * S, attempt_id="x2"),
        ev("agent.state", T0 + 100 * S, agent_id="a2", state="offline"),
    ]


EXPECTED = {
    "by_state": {"ready": 0, "on_call": 0, "wrap": 0, "paused": 1, "offline": 2},
    "list": [
        {"agent_id": "a1", "state": "paused", "since": "2026-05-08T00:01:00.000Z", "reason": "lunch",
         "calls": 1, "aht_ms": 39000.0,  # 51 s − 21 s + 9 s wrap
         "time_ms": {"ready": 21000, "on_call": 30000, "wrap": 9000, "paused": 40000},
         "occupancy": 39000 / 60000},
        {"agent_id": "a2", "state": "offline", "since": "2026-05-08T00:01:40.000Z", "reason": None,
         "calls": 0, "aht_ms": None, "time_ms": {"ready": 95000, "on_call": 0, "wrap": 0, "paused": 0},
         "occupancy": 0.0},
        {"agent_id": "b9", "state": "offline", "since": None, "reason": None,  # named by its bridge only
         "calls": 1, "aht_ms": 19500.0, "time_ms": {"ready": 0, "on_call": 0, "wrap": 0, "paused": 0},
         "occupancy": None},
    ],
}


def engine_body(events: list[dict], **fold_options) -> dict:
    f = Fold(**fold_options)
    for e in events:
        f.apply(validate_event(e))
    return f.snapshot(("o1", "c1"))


def test_the_reference_model_gives_the_hand_computed_floor():
    assert reference_stats(floor())[("o1", "c1")]["agents"] == EXPECTED


@pytest.mark.parametrize("seed", range(6))
def test_the_engine_gives_it_in_any_arrival_order(seed):
    events = floor()
    if seed:
        random.Random(seed).shuffle(events)
        events.sort(key=lambda e: e["ts"] // 25_000)  # shuffled within 25 s slices: none beyond the 30 s bound
    assert engine_body(events)["agents"] == EXPECTED


def test_a_state_delivered_late_re_splits_its_neighbours_time():
    events = floor()
    late = ev("agent.state", T0 + 75 * S, agent_id="a2", state="paused", reason="coaching")  # 25 s late
    body = engine_body([*events, late])["agents"]["list"][1]
    assert body["time_ms"] == {"ready": 70000, "on_call": 0, "wrap": 0, "paused": 25000}
    assert body["state"] == "offline" and body["reason"] is None  # the latest state is still offline's
    assert reference_stats([*events, late])[("o1", "c1")]["agents"]["list"][1] == body


def test_an_earlier_bridge_naming_another_agent_moves_the_call():
    call = [ev("agent.state", T0, agent_id="a1", state="ready"),
            ev("call.dialed", T0 + 80 * S, attempt_id="x3", contact_id="k3"),
            ev("call.answered", T0 + 85 * S, attempt_id="x3"),
            ev("call.bridged", T0 + 90 * S, attempt_id="x3", agent_id="a1"),
            ev("call.ended", T0 + 99 * S, attempt_id="x3")]
    earlier = ev("call.bridged", T0 + 86 * S, attempt_id="x3", agent_id="a2")  # arrives last, 13 s late
    agents = engine_body([*call, earlier])["agents"]
    by_id = {a["agent_id"]: a for a in agents["list"]}
    assert by_id["a1"]["calls"] == 0 and by_id["a1"]["aht_ms"] is None
    assert by_id["a2"]["calls"] == 1 and by_id["a2"]["aht_ms"] == 13000.0 and by_id["a2"]["state"] == "offline"
    assert agents == reference_stats([*call, earlier])[("o1", "c1")]["agents"]
    # an agent named only by a bridge that stops counting is gone
    only = [ev("call.dialed", T0, attempt_id="y", contact_id="k"),
            ev("call.bridged", T0 + 9 * S, attempt_id="y", agent_id="ghost")]
    assert [a["agent_id"] for a in engine_body(only)["agents"]["list"]] == ["ghost"]
    again = [*only, ev("call.bridged", T0 + 8 * S, attempt_id="y")]  # earlier, naming nobody
    assert engine_body(again)["agents"] == {"by_state": dict.fromkeys(
        ("ready", "on_call", "wrap", "paused", "offline"), 0), "list": []}


def test_a_long_shift_keeps_a_few_events_per_agent_and_the_same_figures():
    """Segments behind the lateness horizon are folded into totals: memory stays flat over a long shift, and
    the figures equal the reference (which keeps every event)."""
    rng = random.Random(7)
    events = [ev("campaign.created", T0)]
    t = T0
    states = ["ready", "on_call", "wrap", "paused", "offline"]
    for _ in range(3000):
        t += rng.randint(1, 20) * S
        events.append(ev("agent.state", t, agent_id=f"a{rng.randint(1, 5)}", state=rng.choice(states),
                         **({"reason": "break"} if rng.random() < 0.2 else {})))
    f = Fold()
    for e in events:
        f.apply(validate_event(e))
    st = f.state(("o1", "c1"))
    assert max(len(ag.events) for ag in st.agents.values()) < 20  # ~30 s of events each, not 600
    assert f.snapshot(("o1", "c1"))["agents"] == reference_stats(events)[("o1", "c1")]["agents"]


def test_agents_survive_the_recovery_format():
    events = floor()
    f = Fold()
    for e in events[:9]:
        f.apply(validate_event(e))
    f.gate, f.campaigns = decode(encode((f.gate, f.campaigns)))
    for e in events[9:]:
        f.apply(validate_event(e))
    assert f.snapshot(("o1", "c1"))["agents"] == EXPECTED


def test_attempts_with_an_agent_seal_with_it_and_unseal_exactly():
    events = [ev("campaign.created", T0)]
    for i in range(6):
        t = T0 + i * 60 * S
        events += [ev("call.dialed", t, attempt_id=f"x{i}", contact_id=f"k{i}"),
                   ev("call.answered", t + S, attempt_id=f"x{i}"),
                   ev("call.bridged", t + 2 * S, attempt_id=f"x{i}", **({"agent_id": "a1"} if i % 2 else {})),
                   ev("call.ended", t + 30 * S, attempt_id=f"x{i}", wrap_ms=i * S)]
    events.append(ev("agent.state", T0 + 3600 * S, agent_id="a1", state="ready"))
    f = Fold()
    for e in events:
        f.apply(validate_event(e))
    st = f.state(("o1", "c1"))
    assert not st.attempts and st.sealed.live == 6  # all sealed, the agent kept beside the row
    assert st.sealed.agent_names == ["a1"] and list(st.sealed.agent) == [-1, 0, -1, 0, -1, 0]
    a1 = f.snapshot(("o1", "c1"))["agents"]["list"][0]
    assert (a1["calls"], a1["aht_ms"]) == (3, 28000 + 3000.0)  # 28 s talk + 1, 3, 5 s of wrap
    # a late fact unseals x3: its agent comes back with it, so the retraction takes back what it added
    late = ev("call.amd", T0 + 3600 * S + 1, attempt_id="x3", result="human")
    f.apply(validate_event(late))
    assert "x3" in st.attempts and st.attempts["x3"].agent == "a1"
    body = f.snapshot(("o1", "c1"))
    after = body["agents"]["list"][0]
    assert (after["calls"], after["aht_ms"]) == (a1["calls"], a1["aht_ms"])
    assert body["agents"] == reference_stats([*events, late])[("o1", "c1")]["agents"]
    # and through the recovery format
    f.gate, f.campaigns = decode(encode((f.gate, f.campaigns)))
    assert f.snapshot(("o1", "c1"))["agents"] == body["agents"]


@pytest.mark.parametrize("fields, code, field", [
    ({"state": "lunch"}, "invalid_value", "state"),
    ({"state": "ready", "agent_id": ""}, "invalid_value", "agent_id"),
    ({"state": "ready", "reason": "x" * 257}, "too_large", "reason"),
    ({"state": 3}, "invalid_type", "state"),
])
def test_a_bad_agent_state_is_rejected_with_its_field(fields, code, field):
    e = {"event_id": "e", "type": "agent.state", "ts": T0, "org_id": "o1", "campaign_id": "c1", "agent_id": "a1",
         **fields}
    with pytest.raises(EventRejected) as exc:
        validate_event(e)
    assert (exc.value.code, exc.value.field) == (code, field)
    missing = {k: v for k, v in e.items() if k != "agent_id"} | {"state": "ready"}
    with pytest.raises(EventRejected) as exc:
        validate_event(missing)
    assert exc.value.field == "agent_id"


# ------------------------------------------------------------------ the simulator's floor (--agents N)

def _sim(**kw) -> list[dict]:
    from callpulse.simulator import SimConfig, generate

    return [e for e in generate(SimConfig(**kw)) if isinstance(e, dict)]


def test_without_agents_the_simulated_streams_are_the_ones_before_agents_existed():
    """Digests of these streams as generated by the commit before the floor (4d88548): the floor draws from
    its own RNG, so a run without --agents is byte for byte what it was."""
    import hashlib

    import orjson

    for cfg, digest in (
            ({"seed": 5, "contacts": 300}, "3108372bde2606d4c9fb2e4758988bd0a52a4c2541f92bdb1fa42f5ffbf77bf1"),
            ({"seed": 8, "contacts": 200, "channel": "mixed", "campaigns": 2, "restart": True, "duplicate_pct": 3,
              "jitter_ms": 2000}, "54c9a3d5dbc80b01e2e586d0e19074c41c498b82fe8f210d2870629e32860e02")):
        from callpulse.simulator import SimConfig, generate

        h = hashlib.sha256()
        for e in generate(SimConfig(**cfg)):
            h.update(orjson.dumps(e) if isinstance(e, dict) else repr(e).encode())
        assert h.hexdigest() == digest, cfg


def test_a_simulated_floor_is_consistent_and_folds_to_the_reference():
    events = _sim(seed=12, contacts=150, agents=3)
    states = [e for e in events if e["type"] == "agent.state"]
    bridged = [e for e in events if e["type"] == "call.bridged"]
    assert {e["agent_id"] for e in states} == {"agent-01", "agent-02", "agent-03"}
    assert {e.get("agent_id") for e in bridged} >= {"agent-01", "agent-02", "agent-03", "bot-1"}
    assert {e["reason"] for e in states if e["state"] == "paused"} >= {"team break"}
    for agent in ("agent-01", "agent-02", "agent-03"):  # one consistent day: on_call -> wrap -> ready
        seq = [e["state"] for e in sorted((e for e in states if e["agent_id"] == agent), key=lambda e: e["ts"])]
        assert seq[0] == "ready" and seq[-1] == "offline"
        assert all(b == "wrap" for a, b in zip(seq, seq[1:]) if a == "on_call")
    body = engine_body_of(events)
    ref = reference_stats(events)[(events[0]["org_id"], events[0]["campaign_id"])]
    assert body["diagnostics"]["late"] == 0  # the floor never sends a state behind what it sent
    assert body["agents"] == ref["agents"] and body["outcomes"] == ref["outcomes"]
    # every call the floor connects is taken by an agent or the bot line
    assert sum(a["calls"] for a in body["agents"]["list"]) == body["outcomes"]["connected"]


def engine_body_of(events: list[dict]) -> dict:
    f = Fold()
    for e in events:
        f.apply(validate_event(e))
    return f.snapshot((events[0]["org_id"], events[0]["campaign_id"]))


def test_a_short_staffed_floor_abandons_more():
    def abandon_rate(agents: int) -> float:
        events = _sim(seed=5, contacts=300, agents=agents)
        return engine_body_of(events)["abandon"]["windows"]["lifetime"]["rate"]

    assert abandon_rate(2) > abandon_rate(12)
