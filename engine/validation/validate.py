"""Event validation (SPEC §1): the per-type field tables and `validate_event`.

Pure functions: no Redis, no Bytewax, no HTTP and no wall clock. The caller
passes ``now_ms`` to enable the live-mode ``future`` check.

``validate_event`` returns the *normalised* event: the envelope plus the
fields SPEC §1 defines for the event's type, in SPEC order; unknown fields are
dropped, an optional field given as ``null`` is omitted, ``ts``/``due_at``
become integer epoch milliseconds, and ``cost.incurred`` gains ``usd_micros``.
No defaults are filled in. Anything else fails with :class:`EventRejected`
naming a machine code and the dotted path of the offending field. Fields are
checked in a fixed order (envelope ``event_id, type, ts, org_id,
campaign_id``, then the type's fields in SPEC order), so for a given event
the reported field is deterministic. See ``docs/events.md``.

Kept hand-written rather than declared with msgspec/pydantic: the rejection codes, the dotted paths
and the field order that decides which failure is reported are part of the contract
(tests/test_events.py), and a declarative decoder reports its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from engine.timefmt import clear_time_caches, parse_time
from engine.validation.checkers import (
    ID_OK,
    SEEN_IDS,
    check_bool,
    check_calling_hours,
    check_ceiling,
    check_config,
    check_email,
    check_id,
    check_id_cached,
    check_results,
    check_time,
    check_time_window,
    check_tz,
    check_unit_open,
    check_usd,
    check_variables,
    clear_checker_caches,
    enum_checker,
    int_checker,
    string_checker,
)
from engine.validation.limits import FUTURE_TOLERANCE_MS, MAX_EVENT_BYTES, MAX_TIME_MS, STRING_LIMITS
from engine.validation.money import usd_to_micros
from engine.validation.rejection import EventRejected, bad_type, json_type, missing_field, show_value
from engine.vocab import (
    ABANDON_FROM,
    AGENT_STATES,
    AMD_RESULTS,
    BATCH_STATUSES,
    CAMPAIGN_STATUSES,
    CHANNELS,
    CONTACT_STATUSES,
    SENTIMENTS,
    TRANSCRIPT_ROLES,
)

Checker = Callable[[Any, str], Any]  # (value, field) -> the normalised value, or raise EventRejected
# A field of a type's table: (name, checker, required), where required is True, False, or a
# callable(out_so_far) -> bool (`retry_number_required`). Plain tuples: `validate_event` unpacks them per event.
FieldSpec = tuple[str, Checker, Any]

_REQ = True
_OPT = False


def retry_number_required(out: dict) -> bool:
    return out.get("status") == "retrying"


def _s(name: str, **kw) -> Callable[[Any, str], str]:
    return string_checker(STRING_LIMITS[name], **kw)


_ID = check_id_cached
_TIME = check_time

# The validator's table, public: type -> its fields in SPEC order. api/event_schema.py reads it (with the
# checkers of engine.validation.checkers, by identity and by factory) to build the events' JSON Schema.
TYPE_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "campaign.created": (
        ("name", _s("name"), _OPT),
        ("channel", enum_checker(CHANNELS), _OPT),
        ("concurrency_limit", int_checker(1), _OPT),
        ("max_attempts", int_checker(1), _OPT),
        ("abandon_ceiling", check_ceiling, _OPT),
        ("abandon_threshold_ms", int_checker(0), _OPT),
        ("abandon_from", enum_checker(ABANDON_FROM), _OPT),
        ("time_window", check_time_window, _OPT),
        ("kind", _s("kind", nonempty=True), _OPT),
        ("config", check_config, _OPT),
        ("calling_hours", check_calling_hours, _OPT),
        ("abandon_redial_hours", int_checker(0), _OPT),
        ("complaint_ceiling", check_unit_open, _OPT),
        ("complaint_warning", check_unit_open, _OPT),
    ),
    "campaign.status": (("status", enum_checker(CAMPAIGN_STATUSES), _REQ),),
    "campaign.run_started": (("run", int_checker(2), _REQ),),
    "campaign.run_cancelled": (("run", int_checker(2), _REQ),),
    "batch.created": (("batch_id", _ID, _REQ),),
    "batch.status": (
        ("batch_id", _ID, _REQ),
        ("status", enum_checker(BATCH_STATUSES), _REQ),
    ),
    "pass.started": (
        ("pass", int_checker(1), _REQ),
        ("eligible", int_checker(0), _REQ),
    ),
    "contact.added": (
        ("contact_id", _ID, _REQ),
        ("batch_id", _ID, _OPT),
        ("phone_number", _s("phone_number"), _OPT),
        ("email", check_email, _OPT),
        ("variables", check_variables, _OPT),
        ("tz", check_tz, _OPT),
    ),
    "contact.status": (
        ("contact_id", _ID, _REQ),
        ("status", enum_checker(CONTACT_STATUSES), _REQ),
        ("retry_number", int_checker(1), retry_number_required),
        ("due_at", _TIME, _OPT),
    ),
    "call.dialed": (
        ("contact_id", _ID, _REQ),
        ("attempt_id", _ID, _REQ),
        ("phone_number", _s("phone_number"), _OPT),
        ("pass", int_checker(1), _OPT),
        ("follow_up", check_bool, _OPT),
    ),
    "call.answered": (("attempt_id", _ID, _REQ),),
    "call.amd": (
        ("attempt_id", _ID, _REQ),
        ("result", enum_checker(AMD_RESULTS), _REQ),
    ),
    "call.bridged": (
        ("attempt_id", _ID, _REQ),
        ("agent_id", _ID, _OPT),
    ),
    "call.ended": (
        ("attempt_id", _ID, _REQ),
        ("sip_code", int_checker(100, 699), _OPT),
        ("wrap_ms", int_checker(0), _OPT),
        ("conversation_id", _ID, _OPT),
        ("recording_url", _s("recording_url"), _OPT),
    ),
    "call.transcript": (
        ("attempt_id", _ID, _REQ),
        ("role", enum_checker(TRANSCRIPT_ROLES), _REQ),
        ("content", _s("content"), _REQ),
    ),
    "conversation.evaluated": (
        ("attempt_id", _ID, _REQ),
        ("conversation_id", _ID, _REQ),
        ("results", check_results, _REQ),
    ),
    "callback.requested": (
        ("contact_id", _ID, _REQ),
        ("due_at", _TIME, _REQ),
    ),
    "callback.completed": (("contact_id", _ID, _REQ),),
    "callback.cancelled": (("contact_id", _ID, _REQ),),
    "email.sent": (
        ("contact_id", _ID, _REQ),
        ("message_id", _ID, _REQ),
    ),
    "email.delivered": (("message_id", _ID, _REQ),),
    "email.bounced": (("message_id", _ID, _REQ),),
    "email.opened": (("message_id", _ID, _REQ),),
    "email.clicked": (("message_id", _ID, _REQ),),
    "email.unsubscribed": (("message_id", _ID, _REQ),),
    "email.complained": (("message_id", _ID, _REQ),),
    "email.replied": (
        ("message_id", _ID, _REQ),
        ("sentiment", enum_checker(SENTIMENTS), _REQ),
        ("preview", _s("preview"), _OPT),
        ("name", _s("name"), _OPT),
        ("company", _s("company"), _OPT),
        ("from_email", _s("from_email"), _OPT),
    ),
    "meeting.booked": (("contact_id", _ID, _REQ),),
    "agent.state": (
        ("agent_id", _ID, _REQ),
        ("state", enum_checker(AGENT_STATES), _REQ),
        ("reason", _s("reason"), _OPT),
    ),
    "cost.incurred": (
        ("category", _s("category", nonempty=True), _REQ),
        ("usd", check_usd, _REQ),
    ),
}

EVENT_TYPES: frozenset[str] = frozenset(TYPE_FIELDS)

#: Field names (envelope + type fields, SPEC order) of each type's normalised event
#: (``cost.incurred`` also carries the derived ``usd_micros``).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    t: ("event_id", "type", "ts", "org_id", "campaign_id")
    + tuple(name for name, _, _ in spec)
    + (("usd_micros",) if t == "cost.incurred" else ())
    for t, spec in TYPE_FIELDS.items()
}


def clear_caches() -> None:
    """Forget every cached validation result (ids, time pieces, zones)."""
    clear_time_caches()
    clear_checker_caches()


def decode_event(raw: bytes | str) -> object:
    """Decode one raw event with orjson.

    More than :data:`MAX_EVENT_BYTES` bytes -> ``too_large``; invalid JSON
    or invalid UTF-8 -> ``malformed``. Returns whatever JSON value it holds
    (:func:`validate_event` checks that it is an object).
    """
    if isinstance(raw, str):
        n = len(raw)
        if n > MAX_EVENT_BYTES or (n * 4 > MAX_EVENT_BYTES and len(raw.encode("utf-8", "surrogatepass")) > MAX_EVENT_BYTES):
            raise EventRejected(
                "too_large", None, f"event is larger than {MAX_EVENT_BYTES} bytes"
            )
    elif len(raw) > MAX_EVENT_BYTES:
        raise EventRejected(
            "too_large", None, f"event is {len(raw)} bytes, more than {MAX_EVENT_BYTES}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejected("malformed", None, f"event is not valid JSON: {exc}") from None
    except TypeError as exc:  # pragma: no cover - orjson raises JSONDecodeError for bad input types
        raise EventRejected("malformed", None, f"event is not valid JSON: {exc}") from None


def validate_event(obj: object, *, now_ms: int | None = None) -> dict:
    """Validate a decoded event and return its normalised form.

    Raises :class:`EventRejected` on the first failure, checking the
    envelope (``event_id, type, ts, org_id, campaign_id``) and then the
    type's fields in SPEC order. With ``now_ms`` (live mode), an otherwise
    valid event whose ``ts`` is more than :data:`FUTURE_TOLERANCE_MS` ahead of
    ``now_ms`` is rejected with code ``future``.
    """
    if not isinstance(obj, dict):
        raise EventRejected("malformed", None, f"event must be a JSON object, got {json_type(obj)}")
    get = obj.get

    # -- envelope ------------------------------------------------------
    v = get("event_id")
    if v is None:
        raise missing_field("event_id")
    event_id = v if (type(v) is str and ID_OK(v) is not None) else check_id(v, "event_id")

    etype = get("type")
    if etype is None:
        raise missing_field("type")
    spec = TYPE_FIELDS.get(etype) if type(etype) is str else None
    if spec is None:
        etype, spec = _known_type(etype)

    v = get("ts")
    if v is None:
        raise missing_field("ts")
    ts = v if (type(v) is int and 0 <= v <= MAX_TIME_MS) else parse_time(v, "ts")

    v = get("org_id")
    if v is None:
        raise missing_field("org_id")
    org_id = v if (type(v) is str and v in SEEN_IDS) else check_id_cached(v, "org_id")

    v = get("campaign_id")
    if v is None:
        raise missing_field("campaign_id")
    campaign_id = v if (type(v) is str and v in SEEN_IDS) else check_id_cached(v, "campaign_id")

    out: dict[str, Any] = {
        "event_id": event_id,
        "type": etype,
        "ts": ts,
        "org_id": org_id,
        "campaign_id": campaign_id,
    }

    # -- type fields -----------------------------------------------------
    seen = SEEN_IDS
    for name, check, required in spec:
        v = get(name)
        if v is None:
            if required is True or (required is not False and required(out)):
                raise missing_field(name)
            continue
        if check is _ID and type(v) is str and v in seen:
            out[name] = v
        else:
            out[name] = check(v, name)

    if etype == "cost.incurred":
        out["usd_micros"] = usd_to_micros(out["usd"])

    # -- live mode -------------------------------------------------------
    if now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        raise EventRejected("future", "ts", f"field 'ts' is {ts - now_ms} ms ahead of the clock "
                                            f"(more than {FUTURE_TOLERANCE_MS} ms in the future)")
    return out


def _known_type(etype: object) -> tuple[str, tuple]:
    """The slow path of the type check (a str subclass, or not a known type): the type and its field spec."""
    if not isinstance(etype, str):
        raise bad_type("type", "a string", etype)
    spec = TYPE_FIELDS.get(str(etype))
    if spec is None:
        raise EventRejected("unknown_type", "type", f"field 'type' is not a known event type: {show_value(etype)}")
    return str(etype), spec


def parse_event(raw: bytes | str, *, now_ms: int | None = None) -> dict:
    """``validate_event(decode_event(raw), now_ms=now_ms)``."""
    return validate_event(decode_event(raw), now_ms=now_ms)
