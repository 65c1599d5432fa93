"""Hypothesis strategies for callpulse events (SPEC §1).

``valid_event(type=None)`` draws a raw, valid event of one type (or of any
type): random ids, times as epoch-ms integers or RFC 3339 strings with random
offsets and fractions, optional fields present / absent / ``null``, and
unknown extra fields (including other types' field names with junk values).
Its ``orjson.dumps`` fits in one event (64 KiB). ``expected_normalised(ev)``
is what ``validate_event`` must return for it. Other test modules reuse them.

``mutated_event(type=None)`` draws ``(event, code, field)``: a valid event
with exactly one defect, and the rejection ``code``/``field`` that the
defect must produce.

The schema below is written independently of ``engine.validation.events`` (from the
SPEC), so the property tests cross-check the module against it.
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import orjson
from hypothesis import assume
from hypothesis import strategies as st

MAX_TIME_MS = 253402300799999
MAX_EVENT_BYTES = 65536
ENVELOPE = ("event_id", "type", "ts", "org_id", "campaign_id")

CONTACT_STATUSES = (
    "pending", "dispatched", "in_progress", "retrying", "followup_scheduled",
    "completed", "failed", "busy", "no_answer", "skipped", "max_retries_reached",
    "window_closed", "manual_stopped",
)
VALID_TZS = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Etc/GMT+5")

# Field kinds: ("id",) ("time",) ("int", lo, hi|None) ("ceiling",) ("usd",)
# ("enum", values) ("str", limit, nonempty) ("email",) ("bool",) ("config",)
# ("time_window",) ("variables",) ("results",)
ID = ("id",)
TIME = ("time",)


def INT(lo, hi=None):
    return ("int", lo, hi)


def ENUM(*values):
    return ("enum", values)


def STR(limit, nonempty=False):
    return ("str", limit, nonempty)


R, O, RETRYING = True, False, "retrying"  # noqa: E741 - required / optional / required when status=retrying

SCHEMA: dict[str, tuple[tuple[str, tuple, object], ...]] = {
    "campaign.created": (
        ("name", STR(256), O),
        ("channel", ENUM("voice", "email"), O),
        ("concurrency_limit", INT(1), O),
        ("max_attempts", INT(1), O),
        ("abandon_ceiling", ("ceiling",), O),
        ("abandon_threshold_ms", INT(0), O),
        ("abandon_from", ENUM("answer", "greeting_end"), O),
        ("time_window", ("time_window",), O),
        ("kind", STR(64, True), O),
        ("config", ("config",), O),
        ("calling_hours", ("calling_hours",), O),
        ("abandon_redial_hours", INT(0), O),
        ("complaint_ceiling", ("unit_open",), O),
        ("complaint_warning", ("unit_open",), O),
    ),
    "campaign.status": (("status", ENUM("draft", "active", "paused", "stopped", "completed", "cancelled"), R),),
    "campaign.run_started": (("run", INT(2), R),),
    "campaign.run_cancelled": (("run", INT(2), R),),
    "batch.created": (("batch_id", ID, R),),
    "batch.status": (
        ("batch_id", ID, R),
        ("status", ENUM("pending", "in_progress", "paused", "completed", "cancelled"), R),
    ),
    "pass.started": (("pass", INT(1), R), ("eligible", INT(0), R)),
    "contact.added": (
        ("contact_id", ID, R),
        ("batch_id", ID, O),
        ("phone_number", STR(32), O),
        ("email", ("email",), O),
        ("variables", ("variables",), O),
        ("tz", ("tz",), O),
    ),
    "contact.status": (
        ("contact_id", ID, R),
        ("status", ENUM(*CONTACT_STATUSES), R),
        ("retry_number", INT(1), RETRYING),
        ("due_at", TIME, O),
    ),
    "call.dialed": (
        ("contact_id", ID, R),
        ("attempt_id", ID, R),
        ("phone_number", STR(32), O),
        ("pass", INT(1), O),
        ("follow_up", ("bool",), O),
    ),
    "call.answered": (("attempt_id", ID, R),),
    "call.amd": (("attempt_id", ID, R), ("result", ENUM("human", "machine", "unknown"), R)),
    "call.bridged": (("attempt_id", ID, R), ("agent_id", ID, O)),
    "call.ended": (
        ("attempt_id", ID, R),
        ("sip_code", INT(100, 699), O),
        ("wrap_ms", INT(0), O),
        ("conversation_id", ID, O),
        ("recording_url", STR(2048), O),
    ),
    "call.transcript": (
        ("attempt_id", ID, R),
        ("role", ENUM("assistant", "user"), R),
        ("content", STR(32768), R),
    ),
    "conversation.evaluated": (
        ("attempt_id", ID, R),
        ("conversation_id", ID, R),
        ("results", ("results",), R),
    ),
    "callback.requested": (("contact_id", ID, R), ("due_at", TIME, R)),
    "callback.completed": (("contact_id", ID, R),),
    "callback.cancelled": (("contact_id", ID, R),),
    "email.sent": (("contact_id", ID, R), ("message_id", ID, R)),
    "email.delivered": (("message_id", ID, R),),
    "email.bounced": (("message_id", ID, R),),
    "email.opened": (("message_id", ID, R),),
    "email.clicked": (("message_id", ID, R),),
    "email.unsubscribed": (("message_id", ID, R),),
    "email.complained": (("message_id", ID, R),),
    "email.replied": (
        ("message_id", ID, R),
        ("sentiment", ENUM("positive", "neutral", "negative"), R),
        ("preview", STR(2000), O),
        ("name", STR(256), O),
        ("company", STR(256), O),
        ("from_email", STR(256), O),
    ),
    "meeting.booked": (("contact_id", ID, R),),
    "cost.incurred": (("category", STR(64, True), R), ("usd", ("usd",), R)),
    "agent.state": (
        ("agent_id", ID, R),
        ("state", ENUM("ready", "on_call", "wrap", "paused", "offline"), R),
        ("reason", STR(256), O),
    ),
}

TYPES = tuple(SCHEMA)
ALL_FIELD_NAMES = sorted({name for spec in SCHEMA.values() for name, _, _ in spec})

# --------------------------------------------------------------------------
# Reference helpers (independent of engine.validation.events)
# --------------------------------------------------------------------------

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def reference_time_ms(value) -> int:
    """Epoch ms of an int or an RFC 3339 string, via datetime (reference)."""
    if isinstance(value, int):
        return value
    s = value.replace("t", "T").replace(" ", "T")
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    body, off = s[:-6], s[-6:]
    if "." in body:
        main, frac = body.split(".")
        body = main + "." + (frac + "000000")[:6]
    dt = _dt.datetime.fromisoformat(body + off)
    return (dt - _EPOCH) // _dt.timedelta(milliseconds=1)


def reference_micros(usd) -> int:
    d = Decimal(repr(usd)) if isinstance(usd, float) else Decimal(usd)
    with localcontext() as ctx:
        ctx.prec = 1000
        return int((d * 10**6).to_integral_value(rounding=ROUND_HALF_EVEN))


def expected_normalised(event: dict) -> dict:
    """What validate_event must return for a valid raw ``event``."""
    spec = SCHEMA[event["type"]]
    out = {k: event[k] for k in ENVELOPE}
    out["ts"] = reference_time_ms(event["ts"])
    for name, kind, _ in spec:
        v = event.get(name)
        if v is None:
            continue
        if kind[0] == "time":
            v = reference_time_ms(v)
        elif kind[0] == "time_window":
            v = {k: v[k] for k in ("start", "end", "tz") if v.get(k) is not None}
        out[name] = v
    if event["type"] == "cost.incurred":
        out["usd_micros"] = reference_micros(event["usd"])
    return out


# --------------------------------------------------------------------------
# Value strategies
# --------------------------------------------------------------------------

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"
ids = st.one_of(
    st.text(ID_ALPHABET, min_size=1, max_size=16),
    st.text(ID_ALPHABET, min_size=120, max_size=128),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@st.composite
def rfc3339(draw, ms: int | None = None) -> str:
    """An RFC 3339 rendering of ``ms`` with a random offset/fraction/separator."""
    if ms is None:
        ms = draw(st.integers(86_400_000, MAX_TIME_MS - 86_400_000))
    off_min = draw(st.one_of(st.just(0), st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    local = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=ms + off_min * 60_000)
    sep = draw(st.sampled_from("TTTt "))
    text = local.strftime("%Y-%m-%d") + sep + local.strftime("%H:%M:%S")
    milli = ms % 1000
    digits = f"{milli:03d}"
    extra = draw(st.text("0123456789", max_size=6))  # beyond ms: truncated
    style = draw(st.sampled_from(("none", "short", "full")))
    if style == "none" and milli == 0 and not extra:
        frac = ""
    elif style == "short" and not extra:
        frac = "." + (digits.rstrip("0") or "0")
    else:
        frac = "." + digits + extra
    if off_min == 0 and draw(st.booleans()):
        off = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "+" if off_min >= 0 else "-"
        h, m = divmod(abs(off_min), 60)
        off = f"{sign}{h:02d}:{m:02d}"
    return text + frac + off


@st.composite
def times(draw):
    ms = draw(st.one_of(
        st.integers(86_400_000, MAX_TIME_MS - 86_400_000),
        st.integers(1_700_000_000_000, 1_900_000_000_000),
        st.sampled_from([0, MAX_TIME_MS]),
    ))
    if ms in (0, MAX_TIME_MS) or draw(st.booleans()):
        return ms
    return draw(rfc3339(ms))


def ints(lo, hi):
    top = hi if hi is not None else 2**63 - 1
    return st.one_of(st.integers(lo, min(top, lo + 1000)), st.integers(lo, top))


def strings(limit, nonempty):
    short = st.text(min_size=1 if nonempty else 0, max_size=min(limit, 30))
    full = st.builds(lambda a, b: (a * limit)[: limit - 1] + b, st.sampled_from("abx -_é"), st.sampled_from("yz"))
    return st.one_of(short, short, short, full)


emails = st.builds(
    lambda a, b: f"{a}@{b}",
    st.text(st.characters(blacklist_characters="@", blacklist_categories=("Cs",)), min_size=1, max_size=20),
    st.text(st.characters(blacklist_characters="@", blacklist_categories=("Cs",)), min_size=1, max_size=20),
).filter(lambda s: len(s) <= 254)

hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))


@st.composite
def calling_hours(draw):
    """start < end, end possibly 24:00; exactly the two keys."""
    start = draw(hhmm)
    ends = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 15, 30, 45, 59)] + ["24:00"]
    end = draw(st.sampled_from([e for e in ends if e > start] or ["24:00"]))
    return {"start": start, "end": end}


@st.composite
def time_windows(draw):
    start = draw(hhmm)
    end = draw(hhmm.filter(lambda e: e != start))
    tw = {"start": start, "end": end}
    tz = draw(st.one_of(st.just("absent"), st.none(), st.sampled_from(VALID_TZS)))
    if tz != "absent":
        tw["tz"] = tz
    if draw(st.booleans()):
        tw["extra"] = draw(json_values)
    return tw


variable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from("ab").map(lambda c: c * 2048),
)
variables = st.dictionaries(st.text(min_size=1, max_size=64), variable_scalars, max_size=8)

result_keys = st.builds(
    lambda a, b: f"{a}.{b}",
    st.text(min_size=1, max_size=20).filter(lambda s: "." not in s),
    st.text(min_size=1, max_size=20),
)
results = st.dictionaries(result_keys, json_scalars, max_size=8)


def value_for(kind: tuple):
    k = kind[0]
    if k == "id":
        return ids
    if k == "time":
        return times()
    if k == "int":
        return ints(kind[1], kind[2])
    if k == "ceiling":
        return st.one_of(
            st.floats(0, 1, exclude_max=True),
            st.sampled_from([0, 0.03, 0.05, 0.999]),
        )
    if k == "usd":
        return st.one_of(
            st.floats(0, 1e6),
            st.integers(0, 10**6),
            st.sampled_from([0.1, 0.0000015, 0.0000025, 1e-7, 0.03, 123.456789]),
        )
    if k == "enum":
        return st.sampled_from(kind[1])
    if k == "str":
        return strings(kind[1], kind[2])
    if k == "email":
        return emails
    if k == "bool":
        return st.booleans()
    if k == "config":
        return st.dictionaries(st.text(max_size=8), json_values, max_size=4)
    if k == "time_window":
        return time_windows()
    if k == "calling_hours":
        return calling_hours()
    if k == "unit_open":
        return st.one_of(st.floats(0, 1, exclude_min=True, exclude_max=True), st.sampled_from([0.003, 0.001, 0.5]))
    if k == "tz":
        return st.sampled_from(VALID_TZS)
    if k == "variables":
        return variables
    if k == "results":
        return results
    raise AssertionError(kind)


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@st.composite
def _valid_event(draw, etype: str | None) -> dict:
    if etype is None:
        etype = draw(st.sampled_from(TYPES))
    ev: dict = {
        "event_id": draw(ids),
        "type": etype,
        "ts": draw(times()),
        "org_id": draw(ids),
        "campaign_id": draw(ids),
    }
    for name, kind, req in SCHEMA[etype]:
        if req is RETRYING:
            req = ev.get("status") == "retrying"
        if req is True:
            ev[name] = draw(value_for(kind))
            continue
        how = draw(st.sampled_from(("present", "absent", "null")))
        if how == "present":
            ev[name] = draw(value_for(kind))
        elif how == "null":
            ev[name] = None
    own = {n for n, _, _ in SCHEMA[etype]} | set(ENVELOPE)
    foreign = [n for n in ALL_FIELD_NAMES if n not in own] + ["x_extra", "usd_micros", "meta", "_id"]
    extras = draw(st.dictionaries(st.sampled_from(foreign), json_values, max_size=3))
    ev.update(extras)
    # Shuffle the key order: validation must not depend on it.
    keys = draw(st.permutations(list(ev)))
    ev = {k: ev[k] for k in keys}
    assume(len(orjson.dumps(ev)) <= MAX_EVENT_BYTES)  # fits one ingest line
    return ev


def valid_event(type: str | None = None):
    """Strategy: a raw, valid event dict of ``type`` (any type when None)."""
    return _valid_event(type)


# --------------------------------------------------------------------------
# Mutations: (value, code) pairs that make a field invalid
# --------------------------------------------------------------------------

_COMMON_WRONG_TYPES = [[], {}, [1, 2]]


def bad_values(kind: tuple) -> list[tuple[object, str]]:
    k = kind[0]
    if k == "id":
        return [(v, "invalid_type") for v in (123, 1.5, True, False, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in ("", "a b", "é", "x" * 129, "a/b", "a\n", "a@b", "\u0661")
        ]
    if k == "time":
        return [(v, "invalid_type") for v in (1.5, 1.7e12, 1700000000000.0, True, False, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value")
            for v in (
                -1, MAX_TIME_MS + 1, 10**20,
                "2026-05-08T09:00:00", "2026-05-08T09:00:00.123", "2026-05-08", "",
                "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z", "2026-05-08T24:00:00Z", "2026-05-08T09:60:00Z",
                "2026-05-08T09:00:60Z", "2026-05-08T09:00:00+24:00", "2026-05-08T09:00:00+05:60",
                "1969-12-31T23:59:59.999Z", "2026-05-08T09:00:00+0200", "2026-05-08T09:00:00.Z",
                "2026-05-08T9:00:00Z", "garbage", "1700000000000", "2026-05-08T09:00:00Z ",
                "\u0662\u0660\u0662\u0666-05-08T09:00:00Z",
            )
        ]
    if k == "int":
        lo, hi = kind[1], kind[2]
        out = [(v, "invalid_type") for v in (1.0, 2.5, "3", True, False, *_COMMON_WRONG_TYPES)]
        out += [(lo - 1, "invalid_value"), (lo - 1000, "invalid_value")]
        if hi is not None:
            out += [(hi + 1, "invalid_value")]
        else:
            out += [(2**63, "invalid_value")]
        return out
    if k == "ceiling":
        return [(v, "invalid_type") for v in ("0.03", True, False, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in (1, 1.0, -0.01, -1, 2, float("inf"), float("nan"))
        ]
    if k == "usd":
        return [(v, "invalid_type") for v in ("1.5", True, False, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in (-0.01, -1, float("inf"), float("nan"))
        ]
    if k == "enum":
        vals = kind[1]
        return [(v, "invalid_type") for v in (1, True, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in ("", "bogus", vals[0].upper(), vals[0] + " ")
        ]
    if k == "str":
        limit, nonempty = kind[1], kind[2]
        out = [(v, "invalid_type") for v in (1, 1.5, True, *_COMMON_WRONG_TYPES)]
        out += [("x" * (limit + 1), "too_large")]
        if nonempty:
            out += [("", "invalid_value")]
        return out
    if k == "email":
        return [(v, "invalid_type") for v in (1, True, *_COMMON_WRONG_TYPES)] + [
            ("a@" + "b" * 253, "too_large"),
        ] + [(v, "invalid_value") for v in ("", "noat", "@x", "x@", "a@b@c", "@")]
    if k == "bool":
        return [(v, "invalid_type") for v in (0, 1, "true", "false", 1.0, *_COMMON_WRONG_TYPES)]
    if k == "config":
        return [(v, "invalid_type") for v in ([], [1], "x", 1, True)]
    if k == "unit_open":
        return [(v, "invalid_type") for v in ("0.003", True, False, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in (0, 0.0, 1, 1.0, -0.01, 2, float("inf"), float("nan"))
        ]
    if k == "tz":
        return [(v, "invalid_type") for v in (5, True, *_COMMON_WRONG_TYPES)] + [
            (v, "invalid_value") for v in ("Mars/Olympus_Mons", "", "../etc/passwd", "utc/x")
        ] + [("A" * 65, "too_large")]
    raise AssertionError(kind)


def nested_bad(name: str, kind: tuple) -> list[tuple[object, str, str]]:
    """(whole value, code, field) for the object-valued fields."""
    k = kind[0]
    if k == "time_window":
        ok = {"start": "09:00", "end": "17:00"}
        return [
            ([], "invalid_type", name), ("09:00-17:00", "invalid_type", name), (1, "invalid_type", name),
            ({"end": "17:00"}, "missing_field", f"{name}.start"),
            ({"start": None, "end": "17:00"}, "missing_field", f"{name}.start"),
            ({"start": "09:00"}, "missing_field", f"{name}.end"),
            ({"start": 900, "end": "17:00"}, "invalid_type", f"{name}.start"),
            ({"start": "09:00", "end": 1700}, "invalid_type", f"{name}.end"),
            ({"start": "9:00", "end": "17:00"}, "invalid_value", f"{name}.start"),
            ({"start": "24:00", "end": "17:00"}, "invalid_value", f"{name}.start"),
            ({"start": "09:00", "end": "17:60"}, "invalid_value", f"{name}.end"),
            ({"start": "09:00:00", "end": "17:00"}, "invalid_value", f"{name}.start"),
            ({"start": "09:00", "end": "09:00"}, "invalid_value", f"{name}.end"),
            ({**ok, "tz": "Mars/Olympus_Mons"}, "invalid_value", f"{name}.tz"),
            ({**ok, "tz": ""}, "invalid_value", f"{name}.tz"),
            ({**ok, "tz": "../etc/passwd"}, "invalid_value", f"{name}.tz"),
            ({**ok, "tz": 5}, "invalid_type", f"{name}.tz"),
            ({**ok, "tz": "A" * 65}, "too_large", f"{name}.tz"),
        ]
    if k == "calling_hours":
        ok = {"start": "08:00", "end": "21:00"}
        return [
            ([], "invalid_type", name), ("08:00-21:00", "invalid_type", name), (1, "invalid_type", name),
            ({"end": "21:00"}, "missing_field", f"{name}.start"),
            ({"start": None, "end": "21:00"}, "missing_field", f"{name}.start"),
            ({"start": "08:00"}, "missing_field", f"{name}.end"),
            ({"start": 800, "end": "21:00"}, "invalid_type", f"{name}.start"),
            ({"start": "08:00", "end": 2100}, "invalid_type", f"{name}.end"),
            ({"start": "8:00", "end": "21:00"}, "invalid_value", f"{name}.start"),
            ({"start": "24:00", "end": "21:00"}, "invalid_value", f"{name}.start"),
            ({"start": "08:00", "end": "24:01"}, "invalid_value", f"{name}.end"),
            ({"start": "08:00", "end": "25:00"}, "invalid_value", f"{name}.end"),
            ({"start": "21:00", "end": "08:00"}, "invalid_value", f"{name}.end"),
            ({"start": "08:00", "end": "08:00"}, "invalid_value", f"{name}.end"),
            ({**ok, "tz": "UTC"}, "invalid_value", f"{name}.tz"),
            ({**ok, "b": 1, "a": None}, "invalid_value", f"{name}.a"),
        ]
    if k == "variables":
        return [
            ([], "invalid_type", name), ("x", "invalid_type", name), (1, "invalid_type", name),
            ({"plan": {"a": 1}}, "invalid_type", f"{name}.plan"),
            ({"ok": 1, "tags": [1, 2]}, "invalid_type", f"{name}.tags"),
            ({"note": "x" * 2049}, "too_large", f"{name}.note"),
            ({"k" * 65: 1}, "too_large", f"{name}.{'k' * 65}"),
            ({"": 1}, "invalid_value", f"{name}."),
            ({f"k{i}": i for i in range(201)}, "too_large", name),
        ]
    if k == "results":
        return [
            ([], "invalid_type", name), ("x", "invalid_type", name), (None, "missing_field", name),
            ({"nodot": 1}, "invalid_value", f"{name}.nodot"),
            ({".x": 1}, "invalid_value", f"{name}..x"),
            ({"x.": 1}, "invalid_value", f"{name}.x."),
            ({"a.b": 1, "c.d": {"e": 1}}, "invalid_type", f"{name}.c.d"),
            ({"a.b": [1]}, "invalid_type", f"{name}.a.b"),
            ({f"m.c{i}": True for i in range(201)}, "too_large", name),
        ]
    return [(v, code, name) for v, code in bad_values(kind)]


@st.composite
def _mutated_event(draw, etype: str | None):
    ev = draw(valid_event(etype))
    etype = ev["type"]
    spec = SCHEMA[etype]
    targets = list(ENVELOPE) + [name for name, _, _ in spec]
    target = draw(st.sampled_from(targets))
    ev = dict(ev)
    if target == "type":
        value, code = draw(st.sampled_from([
            (None, "missing_field"), ("call.unknown", "unknown_type"), ("", "unknown_type"),
            (etype.upper(), "unknown_type"), (etype + " ", "unknown_type"),
            (1, "invalid_type"), (True, "invalid_type"), ([etype], "invalid_type"),
        ]))
        field = "type"
    else:
        kind = TIME if target == "ts" else ID if target in ENVELOPE else next(k for n, k, _ in spec if n == target)
        req = True if target in ENVELOPE else next(r for n, _, r in spec if n == target)
        if req is RETRYING:
            req = ev.get("status") == "retrying"
        choices = nested_bad(target, kind)
        if req is True:
            choices = choices + [(None, "missing_field", target), ("<remove>", "missing_field", target)]
        value, code, field = draw(st.sampled_from(choices))
    if value == "<remove>":
        ev.pop(target, None)
    else:
        ev[target] = value
    return ev, code, field


def mutated_event(type: str | None = None):
    """Strategy: ``(event, expected_code, expected_field)`` with one defect."""
    return _mutated_event(type)
