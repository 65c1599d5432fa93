"""Event parsing and validation (SPEC §1): engine/validation/events.py."""

from __future__ import annotations

import math
import pickle

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.validation import events as E
from engine.validation.events import (
    CONTACT_STATUSES,
    EVENT_TYPES,
    FINAL_CONTACT_STATUSES,
    FUTURE_TOLERANCE_MS,
    MAX_BATCH_EVENTS,
    MAX_BODY_BYTES,
    MAX_EVENT_BYTES,
    NONFINAL_CONTACT_STATUSES,
    EventRejected,
    decode_event,
    format_time,
    parse_event,
    parse_time,
    split_body,
    validate_event,
)

try:
    from tests.strategies import (
        ENVELOPE,
        MAX_TIME_MS,
        SCHEMA,
        expected_normalised,
        mutated_event,
        nested_bad,
        reference_time_ms,
        rfc3339,
        valid_event,
    )
except ImportError:  # pragma: no cover - tests/ on sys.path, not a package
    from strategies import (
        ENVELOPE,
        MAX_TIME_MS,
        SCHEMA,
        expected_normalised,
        mutated_event,
        nested_bad,
        reference_time_ms,
        rfc3339,
        valid_event,
    )

pytestmark = pytest.mark.unit

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T0 = 1778230800000  # 2026-05-08T09:00:00.000Z
ENV = {"event_id": "ev-1", "ts": T0, "org_id": "org_1", "campaign_id": "camp:1"}

MINIMAL: dict[str, dict] = {
    "campaign.created": {},
    "campaign.status": {"status": "active"},
    "campaign.run_started": {"run": 2},
    "campaign.run_cancelled": {"run": 2},
    "batch.created": {"batch_id": "b1"},
    "batch.status": {"batch_id": "b1", "status": "in_progress"},
    "pass.started": {"pass": 1, "eligible": 0},
    "contact.added": {"contact_id": "c1"},
    "contact.status": {"contact_id": "c1", "status": "dispatched"},
    "call.dialed": {"contact_id": "c1", "attempt_id": "a1"},
    "call.answered": {"attempt_id": "a1"},
    "call.amd": {"attempt_id": "a1", "result": "machine"},
    "call.bridged": {"attempt_id": "a1"},
    "call.ended": {"attempt_id": "a1"},
    "call.transcript": {"attempt_id": "a1", "role": "user", "content": "hello"},
    "conversation.evaluated": {"attempt_id": "a1", "conversation_id": "cv1", "results": {"quality.tone": 4}},
    "callback.requested": {"contact_id": "c1", "due_at": T0 + 3_600_000},
    "callback.completed": {"contact_id": "c1"},
    "callback.cancelled": {"contact_id": "c1"},
    "email.sent": {"contact_id": "c1", "message_id": "m1"},
    "email.delivered": {"message_id": "m1"},
    "email.bounced": {"message_id": "m1"},
    "email.opened": {"message_id": "m1"},
    "email.clicked": {"message_id": "m1"},
    "email.unsubscribed": {"message_id": "m1"},
    "email.complained": {"message_id": "m1"},
    "email.replied": {"message_id": "m1", "sentiment": "positive"},
    "meeting.booked": {"contact_id": "c1"},
    "cost.incurred": {"category": "telephony", "usd": 0.25},
    "agent.state": {"agent_id": "ag1", "state": "ready"},
}


def ev(etype: str, **fields) -> dict:
    out = {**ENV, "type": etype, **MINIMAL[etype]}
    for k, v in fields.items():
        if v is _DEL:
            out.pop(k, None)
        else:
            out[k] = v
    return out


_DEL = object()


def rejected(obj, **kw) -> EventRejected:
    with pytest.raises(EventRejected) as info:
        validate_event(obj, **kw)
    err = info.value
    assert err.field is None or err.field.split(".")[0] in err.reason or err.field in err.reason
    return err


def assert_rejected(obj, code, field, **kw):
    err = rejected(obj, **kw)
    assert (err.code, err.field) == (code, field), err.as_dict()


# --------------------------------------------------------------------------
# Constants and the exception
# --------------------------------------------------------------------------


def test_vocabularies():
    assert len(EVENT_TYPES) == 30 and set(EVENT_TYPES) == set(MINIMAL) == set(SCHEMA)
    assert isinstance(EVENT_TYPES, frozenset)
    assert NONFINAL_CONTACT_STATUSES == ("pending", "dispatched", "in_progress", "retrying", "followup_scheduled")
    assert FINAL_CONTACT_STATUSES == (
        "completed", "failed", "busy", "no_answer", "skipped",
        "max_retries_reached", "window_closed", "manual_stopped",
    )
    assert CONTACT_STATUSES == NONFINAL_CONTACT_STATUSES + FINAL_CONTACT_STATUSES
    assert len(CONTACT_STATUSES) == 13
    assert (MAX_EVENT_BYTES, MAX_BATCH_EVENTS, MAX_BODY_BYTES, FUTURE_TOLERANCE_MS) == (
        65536, 10000, 8 * 1024 * 1024, 300_000,
    )


def test_event_rejected_shape():
    err = EventRejected("invalid_value", "ts", "field 'ts' is bad")
    assert isinstance(err, ValueError)
    assert err.as_dict() == {"code": "invalid_value", "field": "ts", "reason": "field 'ts' is bad"}
    assert str(err) == "field 'ts' is bad"
    back = pickle.loads(pickle.dumps(err))
    assert back.as_dict() == err.as_dict()


# --------------------------------------------------------------------------
# Every type: minimal event accepted and normalised
# --------------------------------------------------------------------------


@pytest.mark.parametrize("etype", sorted(MINIMAL))
def test_minimal_event_of_each_type(etype):
    raw = ev(etype, unknown_field={"x": 1}, another=None)
    out = validate_event(raw)
    expected = {"event_id": "ev-1", "type": etype, "ts": T0, "org_id": "org_1", "campaign_id": "camp:1", **MINIMAL[etype]}
    if etype == "cost.incurred":
        expected["usd_micros"] = 250000
    assert out == expected
    assert list(out)[:5] == ["event_id", "type", "ts", "org_id", "campaign_id"]
    # The same through JSON bytes and str.
    assert parse_event(orjson.dumps(raw)) == expected
    assert parse_event(orjson.dumps(raw).decode()) == expected


@pytest.mark.parametrize("etype", sorted(MINIMAL))
def test_required_fields_of_each_type(etype):
    for name in MINIMAL[etype]:
        assert_rejected(ev(etype, **{name: _DEL}), "missing_field", name)
        assert_rejected(ev(etype, **{name: None}), "missing_field", name)


def test_full_events_keep_fields_in_spec_order_and_no_defaults():
    raw = ev(
        "campaign.created",
        config={"a": [1, {"b": None}]},
        kind="sales-outreach",
        time_window={"start": "09:00", "end": "17:30", "tz": "Europe/Paris", "x": 1},
        abandon_threshold_ms=2000,
        abandon_ceiling=0.03,
        max_attempts=3,
        concurrency_limit=10,
        channel="email",
        name="Spring push",
    )
    out = validate_event(raw)
    assert list(out) == [
        "event_id", "type", "ts", "org_id", "campaign_id", "name", "channel", "concurrency_limit",
        "max_attempts", "abandon_ceiling", "abandon_threshold_ms", "time_window", "kind", "config",
    ]
    assert out["time_window"] == {"start": "09:00", "end": "17:30", "tz": "Europe/Paris"}
    assert out["config"] == {"a": [1, {"b": None}]}
    # No defaults: absent fields stay absent.
    bare = validate_event(ev("campaign.created"))
    assert "channel" not in bare and "concurrency_limit" not in bare and "time_window" not in bare
    # null = absent
    nulls = validate_event(ev("campaign.created", channel=None, time_window=None, kind=None, config=None))
    assert nulls == bare
    tw = validate_event(ev("campaign.created", time_window={"start": "22:00", "end": "06:00", "tz": None}))
    assert tw["time_window"] == {"start": "22:00", "end": "06:00"}


def test_call_dialed_and_ended_optionals():
    out = validate_event(ev("call.dialed", phone_number="+15551234567", follow_up=True, **{"pass": 2}))
    assert out["phone_number"] == "+15551234567" and out["follow_up"] is True and out["pass"] == 2
    assert "follow_up" not in validate_event(ev("call.dialed", follow_up=None))
    out = validate_event(ev("call.ended", sip_code=486, wrap_ms=0, conversation_id="cv:1", recording_url="https://x/y.wav"))
    assert (out["sip_code"], out["wrap_ms"], out["conversation_id"]) == (486, 0, "cv:1")
    for code in (100, 699):
        assert validate_event(ev("call.ended", sip_code=code))["sip_code"] == code
    assert_rejected(ev("call.ended", sip_code=99), "invalid_value", "sip_code")
    assert_rejected(ev("call.ended", sip_code=700), "invalid_value", "sip_code")
    assert_rejected(ev("call.ended", sip_code=486.0), "invalid_type", "sip_code")
    assert_rejected(ev("call.ended", wrap_ms=-1), "invalid_value", "wrap_ms")
    assert_rejected(ev("call.ended", conversation_id="a b"), "invalid_value", "conversation_id")
    assert_rejected(ev("call.ended", recording_url="u" * 2049), "too_large", "recording_url")
    assert_rejected(ev("call.dialed", follow_up=1), "invalid_type", "follow_up")
    assert_rejected(ev("call.dialed", follow_up="true"), "invalid_type", "follow_up")
    assert_rejected(ev("call.dialed", **{"pass": 0}), "invalid_value", "pass")
    assert_rejected(ev("call.dialed", phone_number="1" * 33), "too_large", "phone_number")
    assert_rejected(ev("call.dialed", phone_number=15551234567), "invalid_type", "phone_number")


# --------------------------------------------------------------------------
# Whole-event and envelope rules
# --------------------------------------------------------------------------


@pytest.mark.parametrize("obj", [[], [ENV], "x", 1, 1.5, None, True])
def test_event_must_be_an_object(obj):
    assert_rejected(obj, "malformed", None)


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a':1}", b"{\"a\":1} x", b"\xff\xfe{}", b"NaN", b"\xef\xbb\xbf{}"])
def test_decode_malformed(raw):
    with pytest.raises(EventRejected) as info:
        decode_event(raw)
    assert (info.value.code, info.value.field) == ("malformed", None)


def test_decode_size_limit():
    base = orjson.dumps(ev("campaign.created", config={"pad": ""}))
    pad = MAX_EVENT_BYTES - len(base)
    ok = orjson.dumps(ev("campaign.created", config={"pad": "x" * pad}))
    assert len(ok) == MAX_EVENT_BYTES
    assert parse_event(ok)["config"] == {"pad": "x" * pad}
    big = orjson.dumps(ev("campaign.created", config={"pad": "x" * (pad + 1)}))
    for raw in (big, big.decode()):
        with pytest.raises(EventRejected) as info:
            decode_event(raw)
        assert (info.value.code, info.value.field) == ("too_large", None)
    # str input is measured in UTF-8 bytes
    wide = orjson.dumps(ev("call.transcript", content="€" * 22000)).decode()
    assert len(wide) < MAX_EVENT_BYTES < len(wide.encode())
    with pytest.raises(EventRejected) as info:
        decode_event(wide)
    assert info.value.code == "too_large"


@pytest.mark.parametrize("field", ["event_id", "org_id", "campaign_id"])
def test_envelope_ids(field):
    assert_rejected(ev("call.answered", **{field: _DEL}), "missing_field", field)
    assert_rejected(ev("call.answered", **{field: None}), "missing_field", field)
    for bad in (1, 1.0, True, [], {}):
        assert_rejected(ev("call.answered", **{field: bad}), "invalid_type", field)
    for bad in ("", "a b", "x" * 129, "é", "a/b", "a\n", "a,b", "\u0661"):
        assert_rejected(ev("call.answered", **{field: bad}), "invalid_value", field)
    for good in ("a", "x" * 128, "A-z_0.9:-", "tenant:42", "..."):
        assert validate_event(ev("call.answered", **{field: good}))[field] == good


@pytest.mark.parametrize("field", ["contact_id", "attempt_id", "batch_id", "message_id", "conversation_id"])
def test_type_ids(field):
    etype = {"contact_id": "contact.added", "attempt_id": "call.amd", "batch_id": "batch.status",
             "message_id": "email.replied", "conversation_id": "conversation.evaluated"}[field]
    assert_rejected(ev(etype, **{field: 7}), "invalid_type", field)
    assert_rejected(ev(etype, **{field: "has space"}), "invalid_value", field)
    assert_rejected(ev(etype, **{field: "x" * 129}), "invalid_value", field)
    assert validate_event(ev(etype, **{field: "x" * 128}))[field] == "x" * 128


def test_type_field():
    assert_rejected(ev("call.answered", type=_DEL), "missing_field", "type")
    assert_rejected(ev("call.answered", type=None), "missing_field", "type")
    for bad in ("call.unknown", "", "CALL.ANSWERED", "call.answered ", "call"):
        assert_rejected(ev("call.answered", type=bad), "unknown_type", "type")
    for bad in (1, True, ["call.answered"], {"a": 1}):
        assert_rejected(ev("call.answered", type=bad), "invalid_type", "type")


def test_first_failure_in_field_order():
    bad = {"event_id": "bad id", "type": "nope", "ts": 1.5, "org_id": 1, "campaign_id": None}
    assert_rejected(bad, "invalid_value", "event_id")
    bad["event_id"] = "ok"
    assert_rejected(bad, "unknown_type", "type")
    bad["type"] = "call.amd"
    assert_rejected(bad, "invalid_type", "ts")
    bad["ts"] = T0
    assert_rejected(bad, "invalid_type", "org_id")
    bad["org_id"] = "o"
    assert_rejected(bad, "missing_field", "campaign_id")
    bad["campaign_id"] = "c"
    assert_rejected(bad, "missing_field", "attempt_id")
    bad["result"] = "robot"
    assert_rejected(bad, "missing_field", "attempt_id")
    bad["attempt_id"] = "a"
    assert_rejected(bad, "invalid_value", "result")
    bad["result"] = "human"
    assert validate_event(bad)["result"] == "human"
    # Type fields in SPEC order.
    assert_rejected(ev("email.replied", message_id=1, sentiment="meh", preview=1), "invalid_type", "message_id")
    assert_rejected(ev("email.replied", sentiment="meh", preview=1), "invalid_value", "sentiment")
    assert_rejected(ev("email.replied", preview=1, from_email=1), "invalid_type", "preview")


# --------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------

RFC_OK = [
    ("2026-05-08T09:00:00Z", T0),
    ("2026-05-08T09:00:00z", T0),
    ("2026-05-08t09:00:00Z", T0),
    ("2026-05-08 09:00:00Z", T0),
    ("2026-05-08T09:00:00+00:00", T0),
    ("2026-05-08T09:00:00-00:00", T0),
    ("2026-05-08T11:00:00+02:00", T0),
    ("2026-05-08T03:30:00-05:30", T0),
    ("2026-05-09T08:59:00+23:59", T0),
    ("2026-05-07T09:01:00-23:59", T0),
    ("2026-05-08T09:00:00.5Z", T0 + 500),
    ("2026-05-08T09:00:00.05Z", T0 + 50),
    ("2026-05-08T09:00:00.123Z", T0 + 123),
    ("2026-05-08T09:00:00.1239Z", T0 + 123),
    ("2026-05-08T09:00:00.999999999Z", T0 + 999),
    ("2026-05-08T09:00:00.000000001Z", T0),
    ("2026-05-08T11:00:00.1239+02:00", T0 + 123),
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T01:00:00+01:00", 0),
    ("9999-12-31T23:59:59.999Z", MAX_TIME_MS),
    ("2024-02-29T00:00:00Z", 1709164800000),
    ("2000-02-29T12:00:00Z", 951825600000),
]


@pytest.mark.parametrize("text,ms", RFC_OK)
def test_rfc3339_accepted(text, ms):
    assert parse_time(text, "ts") == ms
    assert reference_time_ms(text) == ms
    assert validate_event(ev("call.answered", ts=text))["ts"] == ms
    assert validate_event(ev("callback.requested", due_at=text))["due_at"] == ms


RFC_BAD = [
    "2026-05-08T09:00:00",  # no offset
    "2026-05-08T09:00:00.123",
    "2026-05-08",
    "09:00:00Z",
    "2026-05-08T09:00Z",
    "2026-05-08T09:00:00+0200",
    "2026-05-08T09:00:00+02",
    "2026-05-08T09:00:00 Z",
    "2026-05-08T09:00:00.Z",
    "2026-05-08T09:00:00,5Z",
    " 2026-05-08T09:00:00Z",
    "2026-05-08T09:00:00Z\n",
    "2026-5-08T09:00:00Z",
    "26-05-08T09:00:00Z",
    "+2026-05-08T09:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-05-00T00:00:00Z",
    "2026-02-29T00:00:00Z",  # not a leap year
    "1900-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-05-08T24:00:00Z",
    "2026-05-08T09:60:00Z",
    "2026-12-31T23:59:60Z",  # leap second: rejected
    "2026-05-08T09:00:00+24:00",
    "2026-05-08T09:00:00+05:60",
    "1969-12-31T23:59:59.999Z",  # before the epoch
    "1970-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59-00:01",  # after 9999-12-31T23:59:59.999Z
    "",
    "now",
    "1778230800000",
    "\u0662\u0660\u0662\u0666-05-08T09:00:00Z",
]


@pytest.mark.parametrize("text", RFC_BAD)
def test_rfc3339_rejected(text):
    with pytest.raises(EventRejected) as info:
        parse_time(text, "due_at")
    assert (info.value.code, info.value.field) == ("invalid_value", "due_at")
    assert_rejected(ev("call.answered", ts=text), "invalid_value", "ts")
    assert_rejected(ev("contact.status", due_at=text), "invalid_value", "due_at")


@pytest.mark.parametrize("value", [1.5, 1778230800000.0, 0.0, True, False, [], {}, [T0]])
def test_time_wrong_json_type(value):
    assert_rejected(ev("call.answered", ts=value), "invalid_type", "ts")
    assert_rejected(ev("callback.requested", due_at=value), "invalid_type", "due_at")


@pytest.mark.parametrize("value", [-1, MAX_TIME_MS + 1, 2**64])
def test_time_int_out_of_range(value):
    assert_rejected(ev("call.answered", ts=value), "invalid_value", "ts")


def test_time_int_bounds():
    assert validate_event(ev("call.answered", ts=0))["ts"] == 0
    assert validate_event(ev("call.answered", ts=MAX_TIME_MS))["ts"] == MAX_TIME_MS


def test_format_time():
    assert format_time(T0) == "2026-05-08T09:00:00.000Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(T0 + 7) == "2026-05-08T09:00:00.007Z"
    assert format_time(MAX_TIME_MS) == "9999-12-31T23:59:59.999Z"
    assert format_time(951825600000) == "2000-02-29T12:00:00.000Z"
    with pytest.raises(ValueError):
        format_time(-1)
    with pytest.raises(TypeError):
        format_time(1.5)


@PROPS
@given(st.integers(0, MAX_TIME_MS))
@example(0)
@example(MAX_TIME_MS)
@example(951782400000)  # 2000-02-29
@example(4107456000000)  # 2100-02-28 ... not leap
def test_format_parse_round_trip(ms):
    text = format_time(ms)
    assert parse_time(text, "ts") == ms
    assert reference_time_ms(text) == ms


@PROPS
@given(st.data())
def test_rfc3339_any_offset_and_fraction(data):
    ms = data.draw(st.integers(86_400_000, MAX_TIME_MS - 86_400_000))
    text = data.draw(rfc3339(ms))
    assert parse_time(text, "ts") == ms


def test_time_caches_do_not_change_results():
    E.clear_caches()
    # Warm the pieces of two valid strings, then combine pieces across them.
    assert parse_time("2026-05-08T09:00:00.123Z", "ts") == T0 + 123
    assert parse_time("2026-05-08T09:00:00.123Z", "ts") == T0 + 123  # cached
    assert parse_time("2026-05-08T10:01:59+01:00", "ts") == T0 + 60_000 + 59_000
    # prefix of the first + tail of the second (both cached): still exact
    assert parse_time("2026-05-08T09:00:59+01:00", "ts") == T0 + 59_000 - 3_600_000
    assert parse_time("2026-05-08T10:01:00.123Z", "ts") == T0 + 3_660_000 + 123
    # both pieces cached but the whole is out of range
    parse_time("1970-01-01T00:30:00Z", "ts")
    parse_time("2026-05-08T09:30:00+01:00", "ts")
    for _ in range(2):
        with pytest.raises(EventRejected) as info:
            parse_time("1970-01-01T00:30:00+01:00", "ts")
        assert info.value.code == "invalid_value"
    # a bad string is never cached as good
    for _ in range(2):
        for bad in ("2026-05-08T09:00:60Z", "2026-05-08T09:00:00+24:00", "2026-02-30T09:00:00Z"):
            with pytest.raises(EventRejected):
                parse_time(bad, "ts")
    # the same through the id cache
    for _ in range(2):
        assert_rejected(ev("call.answered", org_id="bad id"), "invalid_value", "org_id")
        assert validate_event(ev("call.answered", org_id="good"))["org_id"] == "good"


@PROPS
@given(st.data())
def test_rfc3339_cache_cold_equals_warm(data):
    texts = [data.draw(rfc3339()) for _ in range(4)]
    E.clear_caches()
    cold = [parse_time(t, "ts") for t in texts]
    warm = [parse_time(t, "ts") for t in texts]
    assert cold == warm == [reference_time_ms(t) for t in texts]
    # pieces recombined across strings
    for a in texts:
        for b in texts:
            mixed = a[:16] + b[16:]
            try:
                got = parse_time(mixed, "ts")
            except EventRejected as err:
                assert err.code == "invalid_value"
                ref = reference_time_ms(mixed)
                assert not 0 <= ref <= MAX_TIME_MS
            else:
                assert got == reference_time_ms(mixed)


def test_future_check():
    assert validate_event(ev("call.answered", ts=T0 + FUTURE_TOLERANCE_MS), now_ms=T0)["ts"] == T0 + FUTURE_TOLERANCE_MS
    assert_rejected(ev("call.answered", ts=T0 + FUTURE_TOLERANCE_MS + 1), "future", "ts", now_ms=T0)
    assert_rejected(ev("call.answered", ts="2026-05-08T09:05:00.001Z"), "future", "ts", now_ms=T0)
    # replay mode: no check
    assert validate_event(ev("call.answered", ts=T0 + 10**9))["ts"] == T0 + 10**9
    # the past is fine
    assert validate_event(ev("call.answered", ts=0), now_ms=T0)["ts"] == 0
    # structural problems are reported before the clock check
    assert_rejected(ev("call.amd", ts=T0 + 10**9, result="x"), "invalid_value", "result", now_ms=T0)
    # due_at is not limited
    assert validate_event(ev("callback.requested", due_at=T0 + 10**10), now_ms=T0)["due_at"] == T0 + 10**10


# --------------------------------------------------------------------------
# Integers, numbers, enums
# --------------------------------------------------------------------------

INT_FIELDS = [
    ("pass.started", "pass", 1, None),
    ("pass.started", "eligible", 0, None),
    ("contact.status", "retry_number", 1, None),
    ("campaign.created", "concurrency_limit", 1, None),
    ("campaign.created", "max_attempts", 1, None),
    ("campaign.created", "abandon_threshold_ms", 0, None),
    ("call.ended", "wrap_ms", 0, None),
    ("call.ended", "sip_code", 100, 699),
    ("call.dialed", "pass", 1, None),
]


@pytest.mark.parametrize("etype,field,lo,hi", INT_FIELDS)
def test_integer_fields(etype, field, lo, hi):
    assert validate_event(ev(etype, **{field: lo}))[field] == lo
    assert_rejected(ev(etype, **{field: lo - 1}), "invalid_value", field)
    if hi is not None:
        assert validate_event(ev(etype, **{field: hi}))[field] == hi
        assert_rejected(ev(etype, **{field: hi + 1}), "invalid_value", field)
    for bad in (float(lo), lo + 0.5, True, False, str(lo), [lo], {"v": lo}):
        assert_rejected(ev(etype, **{field: bad}), "invalid_type", field)


def test_numbers():
    for c in (0, 0.0, 0.03, 0.999999):
        assert validate_event(ev("campaign.created", abandon_ceiling=c))["abandon_ceiling"] == c
    for c in (1, 1.0, -0.0001, -1, 5):
        assert_rejected(ev("campaign.created", abandon_ceiling=c), "invalid_value", "abandon_ceiling")
    for c in (True, False, "0.03", [0.03]):
        assert_rejected(ev("campaign.created", abandon_ceiling=c), "invalid_type", "abandon_ceiling")
    for c in (math.inf, -math.inf, math.nan):
        assert_rejected(ev("campaign.created", abandon_ceiling=c), "invalid_value", "abandon_ceiling")
        assert_rejected(ev("cost.incurred", usd=c), "invalid_value", "usd")
    assert_rejected(ev("cost.incurred", usd=-0.01), "invalid_value", "usd")
    assert_rejected(ev("cost.incurred", usd=True), "invalid_type", "usd")
    assert_rejected(ev("cost.incurred", usd="1.50"), "invalid_type", "usd")
    assert_rejected(ev("cost.incurred", usd=E.MAX_USD * 2), "invalid_value", "usd")


@pytest.mark.parametrize("usd,micros", [
    (0, 0), (0.0, 0), (3, 3_000_000), (0.1, 100_000), (0.03, 30_000), (0.25, 250_000),
    (1.23456789, 1_234_568), (123.456789, 123_456_789), (0.0000015, 2), (0.0000025, 2),
    (0.0000005, 0), (0.0000035, 4), (1e-7, 0), (0.9999995, 999_999 + 1), (1e9, 10**15),
    (0.30000000000000004, 300_000),
])
def test_usd_micros(usd, micros):
    out = validate_event(ev("cost.incurred", usd=usd))
    assert out["usd"] == usd and type(out["usd"]) is type(usd)
    assert out["usd_micros"] == micros and type(out["usd_micros"]) is int


def test_cost_category():
    assert_rejected(ev("cost.incurred", category=""), "invalid_value", "category")
    assert_rejected(ev("cost.incurred", category="c" * 65), "too_large", "category")
    assert_rejected(ev("cost.incurred", category=5), "invalid_type", "category")
    assert validate_event(ev("cost.incurred", category="c" * 64))["category"] == "c" * 64


ENUMS = [
    ("campaign.created", "channel", ("voice", "email")),
    ("campaign.status", "status", ("draft", "active", "paused", "stopped", "completed", "cancelled")),
    ("batch.status", "status", ("pending", "in_progress", "paused", "completed", "cancelled")),
    ("contact.status", "status", CONTACT_STATUSES),
    ("call.amd", "result", ("human", "machine", "unknown")),
    ("call.transcript", "role", ("assistant", "user")),
    ("email.replied", "sentiment", ("positive", "neutral", "negative")),
]


@pytest.mark.parametrize("etype,field,values", ENUMS)
def test_enums(etype, field, values):
    for v in values:
        extra = {"retry_number": 1} if v == "retrying" else {}
        assert validate_event(ev(etype, **{field: v}, **extra))[field] == v
    for bad in ("", "bogus", values[0].upper(), " " + values[0]):
        assert_rejected(ev(etype, **{field: bad}), "invalid_value", field)
    for bad in (1, True, [values[0]], {}):
        assert_rejected(ev(etype, **{field: bad}), "invalid_type", field)


def test_other_statuses_rejected_across_enums():
    assert_rejected(ev("campaign.status", status="in_progress"), "invalid_value", "status")
    assert_rejected(ev("batch.status", status="active"), "invalid_value", "status")
    assert_rejected(ev("contact.status", status="active"), "invalid_value", "status")


@pytest.mark.parametrize("etype", ["campaign.run_started", "campaign.run_cancelled"])
def test_run_number(etype):
    """`run` is an integer >= 2 (run 1 needs no event); `true` is not an integer."""
    assert validate_event(ev(etype, run=2))["run"] == 2
    assert validate_event(ev(etype, run=7, extra="x")) == {**ENV, "type": etype, "run": 7}
    for bad in (1, 0, -3):
        assert_rejected(ev(etype, run=bad), "invalid_value", "run")
    for bad in (True, False, 2.0, "2", [2], {}):
        assert_rejected(ev(etype, run=bad), "invalid_type", "run")
    assert_rejected(ev(etype, run=None), "missing_field", "run")
    assert_rejected(ev(etype, run=_DEL), "missing_field", "run")


def test_contact_status_retry_number():
    assert_rejected(ev("contact.status", status="retrying"), "missing_field", "retry_number")
    assert_rejected(ev("contact.status", status="retrying", retry_number=None), "missing_field", "retry_number")
    out = validate_event(ev("contact.status", status="retrying", retry_number=2, due_at="2026-05-08T10:00:00+01:00"))
    assert (out["retry_number"], out["due_at"]) == (2, T0)
    assert "retry_number" not in validate_event(ev("contact.status", status="failed"))
    assert validate_event(ev("contact.status", status="failed", retry_number=3))["retry_number"] == 3
    assert_rejected(ev("contact.status", status="failed", retry_number=0), "invalid_value", "retry_number")
    # retry_number is checked before due_at (SPEC order)
    assert_rejected(ev("contact.status", status="retrying", due_at=1.5), "missing_field", "retry_number")


# --------------------------------------------------------------------------
# Strings, objects
# --------------------------------------------------------------------------

STRING_FIELDS = [
    ("campaign.created", "name", 256),
    ("campaign.created", "kind", 64),
    ("contact.added", "phone_number", 32),
    ("call.dialed", "phone_number", 32),
    ("call.ended", "recording_url", 2048),
    ("call.transcript", "content", 32768),
    ("email.replied", "preview", 2000),
    ("email.replied", "name", 256),
    ("email.replied", "company", 256),
    ("email.replied", "from_email", 256),
    ("cost.incurred", "category", 64),
]


@pytest.mark.parametrize("etype,field,limit", STRING_FIELDS)
def test_string_limits(etype, field, limit):
    assert validate_event(ev(etype, **{field: "é" * limit}))[field] == "é" * limit
    assert_rejected(ev(etype, **{field: "x" * (limit + 1)}), "too_large", field)
    for bad in (1, 1.5, True, ["x"], {"x": 1}):
        assert_rejected(ev(etype, **{field: bad}), "invalid_type", field)


def test_empty_strings():
    assert validate_event(ev("campaign.created", name=""))["name"] == ""
    assert validate_event(ev("call.transcript", content=""))["content"] == ""
    assert_rejected(ev("campaign.created", kind=""), "invalid_value", "kind")


def test_contact_email():
    for good in ("a@b", "jane.doe+x@example.co.uk", "x" * 240 + "@example.com"):
        assert validate_event(ev("contact.added", email=good))["email"] == good
    for bad in ("", "no-at", "@example.com", "jane@", "a@b@c", "@"):
        assert_rejected(ev("contact.added", email=bad), "invalid_value", "email")
    assert_rejected(ev("contact.added", email="a@" + "b" * 253), "too_large", "email")
    assert_rejected(ev("contact.added", email=["a@b"]), "invalid_type", "email")


def test_contact_added_full():
    raw = ev("contact.added", batch_id="b-7", phone_number="+33 1 23 45 67 89", email="a@b.c",
             variables={"plan": "pro", "seats": 12, "score": 0.5, "vip": True, "notes": None})
    out = validate_event(raw)
    assert out["variables"] == {"plan": "pro", "seats": 12, "score": 0.5, "vip": True, "notes": None}
    assert list(out)[5:] == ["contact_id", "batch_id", "phone_number", "email", "variables"]
    assert_rejected(ev("contact.added", batch_id=""), "invalid_value", "batch_id")


def test_variables():
    assert validate_event(ev("contact.added", variables={}))["variables"] == {}
    assert_rejected(ev("contact.added", variables=[]), "invalid_type", "variables")
    assert_rejected(ev("contact.added", variables="plan=pro"), "invalid_type", "variables")
    assert_rejected(ev("contact.added", variables={"plan": {"tier": 1}}), "invalid_type", "variables.plan")
    assert_rejected(ev("contact.added", variables={"a": 1, "tags": ["x"]}), "invalid_type", "variables.tags")
    assert_rejected(ev("contact.added", variables={"note": "n" * 2049}), "too_large", "variables.note")
    assert validate_event(ev("contact.added", variables={"note": "n" * 2048}))
    assert_rejected(ev("contact.added", variables={"k" * 65: 1}), "too_large", "variables." + "k" * 65)
    assert validate_event(ev("contact.added", variables={"k" * 64: 1}))
    assert_rejected(ev("contact.added", variables={"": 1}), "invalid_value", "variables.")
    assert validate_event(ev("contact.added", variables={f"k{i}": i for i in range(200)}))
    assert_rejected(ev("contact.added", variables={f"k{i}": i for i in range(201)}), "too_large", "variables")
    assert_rejected(ev("contact.added", variables={"x": math.inf}), "invalid_value", "variables.x")


def test_results():
    good = {"quality.tone": 4, "quality.empathy": 0.5, "outcome.booked": True, "notes.summary": "ok",
            "x.y.z": None}
    assert validate_event(ev("conversation.evaluated", results=good))["results"] == good
    assert validate_event(ev("conversation.evaluated", results={}))["results"] == {}
    assert_rejected(ev("conversation.evaluated", results=[]), "invalid_type", "results")
    assert_rejected(ev("conversation.evaluated", results=None), "missing_field", "results")
    for key in ("nodot", ".tone", "quality.", "."):
        assert_rejected(ev("conversation.evaluated", results={key: 1}), "invalid_value", f"results.{key}")
    assert_rejected(ev("conversation.evaluated", results={"a.b": {"c": 1}}), "invalid_type", "results.a.b")
    assert_rejected(ev("conversation.evaluated", results={"a.b": [1]}), "invalid_type", "results.a.b")
    assert_rejected(ev("conversation.evaluated", results={f"m.c{i}": 1 for i in range(201)}), "too_large", "results")
    assert validate_event(ev("conversation.evaluated", results={f"m.c{i}": 1 for i in range(200)}))


def test_time_window():
    def tw(**w):
        return ev("campaign.created", time_window=w)

    assert validate_event(tw(start="00:00", end="23:59"))["time_window"] == {"start": "00:00", "end": "23:59"}
    assert validate_event(tw(start="22:00", end="06:00", tz="America/New_York"))["time_window"]["tz"] == "America/New_York"
    assert validate_event(tw(start="08:00", end="18:00", tz="UTC"))
    assert_rejected(tw(start="09:00", end="09:00"), "invalid_value", "time_window.end")
    assert_rejected(tw(end="17:00"), "missing_field", "time_window.start")
    assert_rejected(tw(start="09:00"), "missing_field", "time_window.end")
    for bad in ("9:00", "09:0", "24:00", "09:60", "0900", "09:00:00", " 09:00", "09h00", "٠٩:٠٠"):
        assert_rejected(tw(start=bad, end="17:00"), "invalid_value", "time_window.start")
        assert_rejected(tw(start="07:00", end=bad), "invalid_value", "time_window.end")
    assert_rejected(tw(start=900, end="17:00"), "invalid_type", "time_window.start")
    for bad in ("Mars/Olympus", "", "europe/paris_", "../../etc/passwd", "/etc/localtime", "Europe"):
        assert_rejected(tw(start="09:00", end="17:00", tz=bad), "invalid_value", "time_window.tz")
    assert_rejected(tw(start="09:00", end="17:00", tz=1), "invalid_type", "time_window.tz")
    assert_rejected(tw(start="09:00", end="17:00", tz="A" * 65), "too_large", "time_window.tz")
    for bad in ([], "09:00-17:00", 1, True):
        assert_rejected(ev("campaign.created", time_window=bad), "invalid_type", "time_window")


def test_compliance_fields_of_campaign_created():
    def ch(**w):
        return ev("campaign.created", calling_hours=w)

    out = validate_event(ev("campaign.created", calling_hours={"start": "08:00", "end": "21:00"},
                            abandon_redial_hours=72, complaint_ceiling=0.003, complaint_warning=0.001))
    assert list(out)[-4:] == ["calling_hours", "abandon_redial_hours", "complaint_ceiling", "complaint_warning"]
    assert out["calling_hours"] == {"start": "08:00", "end": "21:00"}
    assert validate_event(ch(start="00:00", end="24:00"))["calling_hours"] == {"start": "00:00", "end": "24:00"}
    assert validate_event(ev("campaign.created", abandon_redial_hours=0))["abandon_redial_hours"] == 0
    for start, end in (("09:00", "09:00"), ("21:00", "08:00"), ("23:59", "00:00")):
        assert_rejected(ch(start=start, end=end), "invalid_value", "calling_hours.end")
    assert_rejected(ch(start="24:00", end="24:00"), "invalid_value", "calling_hours.start")
    assert_rejected(ch(start="08:00", end="24:30"), "invalid_value", "calling_hours.end")
    assert_rejected(ch(end="21:00"), "missing_field", "calling_hours.start")
    assert_rejected(ch(start="08:00"), "missing_field", "calling_hours.end")
    assert_rejected(ch(start="08:00", end="21:00", tz="UTC"), "invalid_value", "calling_hours.tz")
    assert_rejected(ch(start="08:00", end="21:00", z=None, b=1), "invalid_value", "calling_hours.b")
    assert_rejected(ch(start=800, end="21:00"), "invalid_type", "calling_hours.start")
    for bad in ([], "08:00-21:00", 1, True):
        assert_rejected(ev("campaign.created", calling_hours=bad), "invalid_type", "calling_hours")
    assert_rejected(ev("campaign.created", abandon_redial_hours=-1), "invalid_value", "abandon_redial_hours")
    assert_rejected(ev("campaign.created", abandon_redial_hours=1.5), "invalid_type", "abandon_redial_hours")
    for name in ("complaint_ceiling", "complaint_warning"):
        for bad in (0, 0.0, 1, 1.5, -0.001):
            assert_rejected(ev("campaign.created", **{name: bad}), "invalid_value", name)
        assert_rejected(ev("campaign.created", **{name: "0.003"}), "invalid_type", name)
        assert validate_event(ev("campaign.created", **{name: 0.999}))[name] == 0.999


def test_contact_zone_and_complaints():
    assert validate_event(ev("contact.added", tz="America/Chicago"))["tz"] == "America/Chicago"
    assert "tz" not in validate_event(ev("contact.added", tz=None))
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "EST5EDT/x"):
        assert_rejected(ev("contact.added", tz=bad), "invalid_value", "tz")
    assert_rejected(ev("contact.added", tz=5), "invalid_type", "tz")
    assert_rejected(ev("contact.added", tz="A" * 65), "too_large", "tz")
    assert validate_event(ev("email.complained"))["message_id"] == "m1"
    assert_rejected(ev("email.complained", message_id=_DEL), "missing_field", "message_id")


def test_config_and_kind():
    assert validate_event(ev("campaign.created", config={}))["config"] == {}
    for bad in ([], "x", 1, True):
        assert_rejected(ev("campaign.created", config=bad), "invalid_type", "config")
    assert_rejected(ev("campaign.created", channel="sms"), "invalid_value", "channel")


def test_transcript_content():
    assert_rejected(ev("call.transcript", content=_DEL), "missing_field", "content")
    assert_rejected(ev("call.transcript", content=5), "invalid_type", "content")
    assert_rejected(ev("call.transcript", content="c" * 32769), "too_large", "content")


# --------------------------------------------------------------------------
# split_body
# --------------------------------------------------------------------------


def test_split_body_json_array():
    a, b = ev("call.answered"), ev("call.bridged")
    assert split_body(orjson.dumps([a, b])) == [a, b]
    assert split_body(b"  \n[ ]\n") == []
    assert split_body(b"[1, \"x\", null]") == [1, "x", None]
    assert split_body(b"\xef\xbb\xbf" + orjson.dumps([a])) == [a]


def test_split_body_ndjson():
    a, b = orjson.dumps(ev("call.answered")), orjson.dumps(ev("call.bridged"))
    body = b"\n" + a + b"\r\n\n   \n" + b + b"  \t\n\n"
    assert split_body(body) == [a, b]
    assert split_body(a) == [a]
    assert split_body(b"") == [] and split_body(b"\n\n \r\n") == []
    # Lines that are not JSON split anyway and then fail alone.
    parts = split_body(a + b"\nnot json\n[1,\n" + b)
    assert parts == [a, b"not json", b"[1,", b]
    with pytest.raises(EventRejected) as info:
        parse_event(parts[1])
    assert info.value.code == "malformed"
    # A body starting like an array that is not one splits into lines.
    assert split_body(b"[1]\n[2]") == [b"[1]", b"[2]"]


def test_split_body_pretty_single_object():
    a = ev("call.answered")
    body = orjson.dumps(a, option=orjson.OPT_INDENT_2)
    (only,) = split_body(body)
    assert parse_event(only) == validate_event(a)


def test_split_body_limits():
    with pytest.raises(EventRejected) as info:
        split_body(b" " * (MAX_BODY_BYTES + 1))
    assert (info.value.code, info.value.field) == ("too_large", None)
    line = b'{"a":1}'
    assert len(split_body(b"\n".join([line] * MAX_BATCH_EVENTS))) == MAX_BATCH_EVENTS
    with pytest.raises(EventRejected) as info:
        split_body(b"\n".join([line] * (MAX_BATCH_EVENTS + 1)))
    assert (info.value.code, info.value.field) == ("too_large", None)
    with pytest.raises(EventRejected) as info:
        split_body(b"[" + b",".join([b"{}"] * (MAX_BATCH_EVENTS + 1)) + b"]")
    assert (info.value.code, info.value.field) == ("too_large", None)


def test_split_body_oversized_array_element():
    small = ev("call.answered")
    big = ev("call.transcript", content="x" * MAX_EVENT_BYTES)
    items = split_body(orjson.dumps([small, big]))
    assert items[0] == small and isinstance(items[1], bytes)
    with pytest.raises(EventRejected) as info:
        decode_event(items[1])
    assert info.value.code == "too_large"


# --------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------


@pytest.mark.parametrize("etype", sorted(SCHEMA))
def test_mutation_catalog_exhaustive(etype):
    """Every catalogued defect of every field of every type, on a minimal event."""
    checked = 0
    for name, kind, _ in [("ts", ("time",), True)] + [(n, ("id",), True) for n in ENVELOPE if n.endswith("_id")] + list(SCHEMA[etype]):
        extra = {"status": "retrying", "retry_number": 1} if etype == "contact.status" and name != "status" else {}
        for value, code, field in nested_bad(name, kind):
            assert_rejected(ev(etype, **{**extra, name: value}), code, field)
            checked += 1
    assert checked > 20


@PROPS
@given(valid_event())
def test_valid_events_accepted_and_normalised(raw):
    out = validate_event(raw)
    assert out == expected_normalised(raw)
    assert type(out["ts"]) is int
    allowed = {"event_id", "type", "ts", "org_id", "campaign_id", "usd_micros"} | {n for n, _, _ in SCHEMA[raw["type"]]}
    assert set(out) <= allowed
    assert all(v is not None for v in out.values())
    assert tuple(out) == tuple(k for k in E.EVENT_FIELDS[raw["type"]] if k in out)
    # validating the normalised event is the identity
    assert validate_event(out) == out
    # the same through JSON bytes
    data = orjson.dumps(raw)
    assert len(data) <= MAX_EVENT_BYTES
    assert parse_event(data) == out


@PROPS
@given(valid_event("contact.status"))
def test_valid_contact_status(raw):
    out = validate_event(raw)
    if out["status"] == "retrying":
        assert out["retry_number"] >= 1


@PROPS
@given(mutated_event())
def test_single_mutation_rejected_naming_the_field(case):
    raw, code, field = case
    with pytest.raises(EventRejected) as info:
        validate_event(raw)
    assert (info.value.code, info.value.field) == (code, field), (info.value.as_dict(), code, field)
    assert info.value.as_dict()["reason"]
    try:
        data = orjson.dumps(raw)
        same = orjson.loads(data) == raw
    except (TypeError, orjson.JSONEncodeError):
        return
    if same and len(data) <= MAX_EVENT_BYTES:
        with pytest.raises(EventRejected) as info:
            parse_event(data)
        assert (info.value.code, info.value.field) == (code, field)


@PROPS
@given(valid_event(), st.integers(0, MAX_TIME_MS))
def test_future_property(raw, now_ms):
    ts = reference_time_ms(raw["ts"])
    if ts > now_ms + FUTURE_TOLERANCE_MS:
        assert_rejected(raw, "future", "ts", now_ms=now_ms)
    else:
        assert validate_event(raw, now_ms=now_ms)["ts"] == ts
