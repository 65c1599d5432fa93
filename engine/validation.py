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

from engine.checkers import (
    _ID_OK,
    _SEEN_IDS,
    _check_bool,
    _check_calling_hours,
    _check_ceiling,
    _check_config,
    _check_email,
    _check_id,
    _check_id_cached,
    _check_results,
    _check_time,
    _check_time_window,
    _check_tz,
    _check_unit_open,
    _check_usd,
    _check_variables,
    _enum_checker,
    _int_checker,
    _string_checker,
    clear_checker_caches,
)
from engine.limits import FUTURE_TOLERANCE_MS, MAX_EVENT_BYTES, MAX_TIME_MS, STRING_LIMITS
from engine.money import usd_to_micros
from engine.rejection import EventRejected, _bad_type, _jtype, _missing, _show
from engine.timefmt import clear_time_caches, parse_time
from engine.vocab import (
    ABANDON_FROM,
    AMD_RESULTS,
    BATCH_STATUSES,
    CAMPAIGN_STATUSES,
    CHANNELS,
    CONTACT_STATUSES,
    SENTIMENTS,
    TRANSCRIPT_ROLES,
)

# A field: (name, checker(value, name) -> normalised value, required), where
# required is True, False, or a callable(out_so_far) -> bool.
_Spec = tuple[tuple[str, Callable[[Any, str], Any], Any], ...]

_REQ = True
_OPT = False


def _retry_number_required(out: dict) -> bool:
    return out.get("status") == "retrying"


def _s(name: str, **kw) -> Callable[[Any, str], str]:
    return _string_checker(STRING_LIMITS[name], **kw)


_ID = _check_id_cached
_TIME = _check_time

_TYPE_FIELDS: dict[str, _Spec] = {
    "campaign.created": (
        ("name", _s("name"), _OPT),
        ("channel", _enum_checker(CHANNELS), _OPT),
        ("concurrency_limit", _int_checker(1), _OPT),
        ("max_attempts", _int_checker(1), _OPT),
        ("abandon_ceiling", _check_ceiling, _OPT),
        ("abandon_threshold_ms", _int_checker(0), _OPT),
        ("abandon_from", _enum_checker(ABANDON_FROM), _OPT),
        ("time_window", _check_time_window, _OPT),
        ("kind", _s("kind", nonempty=True), _OPT),
        ("config", _check_config, _OPT),
        ("calling_hours", _check_calling_hours, _OPT),
        ("abandon_redial_hours", _int_checker(0), _OPT),
        ("complaint_ceiling", _check_unit_open, _OPT),
        ("complaint_warning", _check_unit_open, _OPT),
    ),
    "campaign.status": (("status", _enum_checker(CAMPAIGN_STATUSES), _REQ),),
    "campaign.run_started": (("run", _int_checker(2), _REQ),),
    "campaign.run_cancelled": (("run", _int_checker(2), _REQ),),
    "batch.created": (("batch_id", _ID, _REQ),),
    "batch.status": (
        ("batch_id", _ID, _REQ),
        ("status", _enum_checker(BATCH_STATUSES), _REQ),
    ),
    "pass.started": (
        ("pass", _int_checker(1), _REQ),
        ("eligible", _int_checker(0), _REQ),
    ),
    "contact.added": (
        ("contact_id", _ID, _REQ),
        ("batch_id", _ID, _OPT),
        ("phone_number", _s("phone_number"), _OPT),
        ("email", _check_email, _OPT),
        ("variables", _check_variables, _OPT),
        ("tz", _check_tz, _OPT),
    ),
    "contact.status": (
        ("contact_id", _ID, _REQ),
        ("status", _enum_checker(CONTACT_STATUSES), _REQ),
        ("retry_number", _int_checker(1), _retry_number_required),
        ("due_at", _TIME, _OPT),
    ),
    "call.dialed": (
        ("contact_id", _ID, _REQ),
        ("attempt_id", _ID, _REQ),
        ("phone_number", _s("phone_number"), _OPT),
        ("pass", _int_checker(1), _OPT),
        ("follow_up", _check_bool, _OPT),
    ),
    "call.answered": (("attempt_id", _ID, _REQ),),
    "call.amd": (
        ("attempt_id", _ID, _REQ),
        ("result", _enum_checker(AMD_RESULTS), _REQ),
    ),
    "call.bridged": (("attempt_id", _ID, _REQ),),
    "call.ended": (
        ("attempt_id", _ID, _REQ),
        ("sip_code", _int_checker(100, 699), _OPT),
        ("wrap_ms", _int_checker(0), _OPT),
        ("conversation_id", _ID, _OPT),
        ("recording_url", _s("recording_url"), _OPT),
    ),
    "call.transcript": (
        ("attempt_id", _ID, _REQ),
        ("role", _enum_checker(TRANSCRIPT_ROLES), _REQ),
        ("content", _s("content"), _REQ),
    ),
    "conversation.evaluated": (
        ("attempt_id", _ID, _REQ),
        ("conversation_id", _ID, _REQ),
        ("results", _check_results, _REQ),
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
        ("sentiment", _enum_checker(SENTIMENTS), _REQ),
        ("preview", _s("preview"), _OPT),
        ("name", _s("name"), _OPT),
        ("company", _s("company"), _OPT),
        ("from_email", _s("from_email"), _OPT),
    ),
    "meeting.booked": (("contact_id", _ID, _REQ),),
    "cost.incurred": (
        ("category", _s("category", nonempty=True), _REQ),
        ("usd", _check_usd, _REQ),
    ),
}

EVENT_TYPES: frozenset[str] = frozenset(_TYPE_FIELDS)

#: Field names (envelope + type fields, SPEC order) of each type's normalised event
#: (``cost.incurred`` also carries the derived ``usd_micros``).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    t: ("event_id", "type", "ts", "org_id", "campaign_id")
    + tuple(name for name, _, _ in spec)
    + (("usd_micros",) if t == "cost.incurred" else ())
    for t, spec in _TYPE_FIELDS.items()
}

# type -> ((name, checker, required), ...); required is True, False or a
# callable(out_so_far) -> bool.
_TABLE = _TYPE_FIELDS


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
        raise EventRejected(
            "malformed", None, f"event must be a JSON object, got {_jtype(obj)}"
        )
    get = obj.get

    # -- envelope ------------------------------------------------------
    v = get("event_id")
    if v is None:
        raise _missing("event_id")
    event_id = v if (type(v) is str and _ID_OK(v) is not None) else _check_id(v, "event_id")

    etype = get("type")
    if etype is None:
        raise _missing("type")
    spec = _TABLE.get(etype) if type(etype) is str else None
    if spec is None:
        if not isinstance(etype, str):
            raise _bad_type("type", "a string", etype)
        spec = _TABLE.get(str(etype))
        if spec is None:
            raise EventRejected(
                "unknown_type", "type", f"field 'type' is not a known event type: {_show(etype)}"
            )
        etype = str(etype)

    v = get("ts")
    if v is None:
        raise _missing("ts")
    ts = v if (type(v) is int and 0 <= v <= MAX_TIME_MS) else parse_time(v, "ts")

    v = get("org_id")
    if v is None:
        raise _missing("org_id")
    org_id = v if (type(v) is str and v in _SEEN_IDS) else _check_id_cached(v, "org_id")

    v = get("campaign_id")
    if v is None:
        raise _missing("campaign_id")
    campaign_id = v if (type(v) is str and v in _SEEN_IDS) else _check_id_cached(v, "campaign_id")

    out = {
        "event_id": event_id,
        "type": etype,
        "ts": ts,
        "org_id": org_id,
        "campaign_id": campaign_id,
    }

    # -- type fields -----------------------------------------------------
    seen = _SEEN_IDS
    for name, check, required in spec:
        v = get(name)
        if v is None:
            if required is True or (required is not False and required(out)):
                raise _missing(name)
            continue
        if check is _ID and type(v) is str and v in seen:
            out[name] = v
        else:
            out[name] = check(v, name)

    if etype == "cost.incurred":
        out["usd_micros"] = usd_to_micros(out["usd"])

    # -- live mode -------------------------------------------------------
    if now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        raise EventRejected(
            "future",
            "ts",
            f"field 'ts' is {ts - now_ms} ms ahead of the clock "
            f"(more than {FUTURE_TOLERANCE_MS} ms in the future)",
        )
    return out


def parse_event(raw: bytes | str, *, now_ms: int | None = None) -> dict:
    """``validate_event(decode_event(raw), now_ms=now_ms)``."""
    return validate_event(decode_event(raw), now_ms=now_ms)
