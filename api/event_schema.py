"""JSON Schema of the ingest events, generated from the validator's own field tables (engine/validation/validate.py).

One source of truth: ``engine.validation.validate.TYPE_FIELDS`` keeps, per event type, a table of (field, checker,
required), its checkers public in ``engine.validation.checkers``.
This module reads those tables and turns each checker into the JSON Schema of what it accepts, so
a type or field added to the validator shows up in the OpenAPI document with no edit here. The
checkers are plain functions or closures of three factories (``int_checker``, ``enum_checker``,
``string_checker``), whose bounds are read back from their closure variables.

A checker this module does not know yields ``{}`` (any value) plus ``x-unmapped-checker``; the
test tests/test_event_schema.py fails on it, so a new kind of checker gets its schema here.

Rules of SPEC §1 mirrored: unknown fields are ignored (objects stay open); an optional field given
as ``null`` counts as absent (optional fields also admit ``null``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.timefmt import RFC3339, parse_time
from engine.validation import checkers as ck
from engine.validation import limits as lim
from engine.validation.validate import TYPE_FIELDS, retry_number_required

REF = "#/components/schemas/"
ENVELOPE = ("event_id", "type", "ts", "org_id", "campaign_id")


def _pattern(compiled_fullmatch) -> str:
    """The anchored pattern of a validator regex kept as ``re.compile(...).fullmatch``."""
    return f"^(?:{compiled_fullmatch.__self__.pattern})$"


ID = {"type": "string", "minLength": 1, "maxLength": lim.MAX_ID_CHARS, "pattern": _pattern(ck.ID_OK)}
TIME = {"description": "integer epoch milliseconds, or an RFC 3339 date-time with offset",
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": lim.MAX_TIME_MS},
                  {"type": "string", "pattern": _pattern(RFC3339)}]}  # not format date-time: a space may stand for T
_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _flat_object(max_keys: int, key: dict, max_value_chars: int) -> dict:
    return {"type": "object", "maxProperties": max_keys, "propertyNames": key,
            "additionalProperties": {"anyOf": [{"type": "string", "maxLength": max_value_chars},
                                               {"type": ["number", "boolean", "null"]}]}}


# checkers that are plain functions -> their schema
_FIXED: dict[Callable, dict] = {
    ck.check_id: ID,
    ck.check_id_cached: ID,
    ck.check_time: TIME,
    parse_time: TIME,
    ck.check_number: {"type": "number"},
    ck.check_ceiling: {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    ck.check_usd: {"type": "number", "minimum": 0, "maximum": lim.MAX_USD},
    ck.check_unit_open: {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    ck.check_tz: {"type": "string", "maxLength": lim.MAX_TZ_CHARS,
                   "description": "IANA time zone name the zone database knows"},
    ck.check_calling_hours: {
        "type": "object", "required": ["start", "end"], "additionalProperties": False,
        "description": "the called person's local hours in which a dial is allowed; exactly start and end, "
                       "start < end (no span over midnight)",
        "properties": {"start": {"type": "string", "pattern": _pattern(ck.HHMM), "description": "HH:MM"},
                       "end": {"type": "string", "pattern": _pattern(ck.HHMM_END),
                               "description": "HH:MM, or 24:00"}}},
    ck.check_bool: {"type": "boolean"},
    ck.check_email: {"type": "string", "maxLength": lim.STRING_LIMITS["email"], "pattern": "^[^@]+@[^@]+$",
                      "description": "an e-mail address: one '@' with text on both sides"},
    ck.check_config: {"type": "object", "description": "opaque; returned as sent"},
    ck.check_time_window: {
        "type": "object", "required": ["start", "end"],
        "description": "dialing hours; end before start spans midnight; start = end is invalid",
        "properties": {"start": {"type": "string", "pattern": _pattern(ck.HHMM), "description": "HH:MM"},
                       "end": {"type": "string", "pattern": _pattern(ck.HHMM), "description": "HH:MM"},
                       "tz": {"type": ["string", "null"], "maxLength": lim.MAX_TZ_CHARS,
                              "description": "IANA time zone name (default UTC)"}}},
    ck.check_variables: _flat_object(lim.MAX_VARIABLES, {"minLength": 1, "maxLength": lim.MAX_VARIABLE_KEY_CHARS},
                                      lim.MAX_VARIABLE_VALUE_CHARS),
    ck.check_results: _flat_object(lim.MAX_RESULTS, {"maxLength": lim.MAX_RESULT_KEY_CHARS,
                                                     "pattern": r"^[^.]+\.[\s\S]+$"},
                                    lim.MAX_RESULT_VALUE_CHARS),
}


def _from_factory(check: Callable) -> dict | None:
    """Schema of a checker made by one of the validator's checker factories, from its closure."""
    made = getattr(check, "made_by", None)  # engine.validation.checkers.made_by
    if made is None:
        return None
    factory, bound = made
    if factory == "int_checker":
        return {"type": "integer", "minimum": bound["lo"], "maximum": bound["hi"]}  # MAX_INT: a 64-bit int
    if factory == "enum_checker":
        return {"type": "string", "enum": bound["listing"].split("|")}
    if factory == "string_checker":
        return {"type": "string", "maxLength": bound["limit"], **({"minLength": 1} if bound["nonempty"] else {})}
    return None


def checker_schema(check: Callable) -> dict:
    fixed = _FIXED.get(check)
    if fixed is not None:
        return dict(fixed)
    made = _from_factory(check)
    if made is not None:
        return made
    return {"x-unmapped-checker": check.__qualname__}


def _conditions(required: Any, name: str) -> dict | None:
    """A field required only in some cases (``required`` is a callable of the event so far)."""
    if required is retry_number_required:
        return {"if": {"required": ["status"], "properties": {"status": {"const": "retrying"}}},
                # present and not null: an optional field given as null is absent (SPEC §1)
                "then": {"required": [name], "properties": {name: {"not": {"type": "null"}}}}}
    return None


def component_name(event_type: str) -> str:
    """``call.dialed`` -> ``CallDialedEvent``."""
    return "".join(p.capitalize() for p in event_type.replace("_", ".").split(".")) + "Event"


def _envelope_field(name: str) -> dict:
    if name == "ts":
        return dict(TIME, description="event time: " + TIME["description"])
    return dict(ID)


def event_schema(event_type: str, table: tuple) -> dict:
    props: dict[str, dict] = {}
    required = list(ENVELOPE)
    conditions = []
    for name in ENVELOPE:
        props[name] = {"const": event_type} if name == "type" else _envelope_field(name)
    for name, check, req in table:
        schema = checker_schema(check)
        if req is True:
            props[name] = schema
            required.append(name)
            continue
        props[name] = {"anyOf": [schema, {"type": "null"}]}  # an optional field given as null is absent
        cond = _conditions(req, name) if req is not False else None
        if cond is not None:
            conditions.append(cond)
        elif req is not False:
            props[name]["description"] = "required in some cases; see docs/events.md"
    out = {"title": event_type, "type": "object", "required": required, "properties": props,
           "description": f"`{event_type}` event; unknown fields are ignored"}
    if conditions:
        out["allOf"] = conditions
    return out


def components() -> dict[str, dict]:
    """Every event type's schema, plus ``Event`` (the union, discriminated by ``type``) and ``IngestBody``."""
    out: dict[str, dict] = {}
    mapping = {}
    for t in sorted(TYPE_FIELDS):
        name = component_name(t)
        out[name] = event_schema(t, TYPE_FIELDS[t])
        mapping[t] = REF + name
    out["Event"] = {"description": "one event (SPEC §1 of the product; docs/events.md), by `type`",
                    "oneOf": [{"$ref": ref} for ref in mapping.values()],
                    "discriminator": {"propertyName": "type", "mapping": mapping}}
    out["IngestBody"] = {
        "description": "a JSON array of events or one event object. Each event is validated on its own: "
                       "an invalid one is reported in `rejected` (with its index and reason), the others "
                       "are accepted",
        "oneOf": [{"type": "array", "maxItems": lim.MAX_BATCH_EVENTS, "items": {"$ref": REF + "Event"}},
                  {"$ref": REF + "Event"}]}
    return out


def unmapped() -> list[str]:
    """``type.field`` of every field whose checker this module cannot describe (should be empty)."""
    return [f"{t}.{name}" for t, table in TYPE_FIELDS.items() for name, check, _ in table
            if "x-unmapped-checker" in checker_schema(check)]
