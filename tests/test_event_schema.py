"""Issue #11: the published event schema (api/event_schema.py) says what the validator accepts.

The schema is generated from engine/validation/events.py's field tables; these tests hold it to the validator:
every valid event (tests/strategies.py, written from the spec) matches its schema, events with one
defect are refused by the schema too (but for the few rules JSON Schema cannot state), and every
field of every type has a schema (a new kind of checker in the validator fails here, by name).
"""

from __future__ import annotations

import jsonschema_rs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from api.event_schema import component_name, components, unmapped
from engine.validation.events import EVENT_FIELDS, EVENT_TYPES, EventRejected, validate_event
from tests.strategies import mutated_event, valid_event

pytestmark = pytest.mark.unit

COMPONENTS = components()


def validator(name: str):
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": COMPONENTS}}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


EVENT = validator("Event")
BODY = validator("IngestBody")

# Rules the schema cannot state: a real IANA zone name, a calendar-valid date-time inside
# 1970..9999 once its offset is applied (the date-time format catches most but not all), the
# size of the whole event, and "future" (wall clock)
_NOT_EXPRESSIBLE = {("invalid_value", "time_window.tz"), ("invalid_value", "tz"), ("too_large", None),
                    ("invalid_value", "calling_hours.end"),  # end after start: an order of two strings
                    ("invalid_value", "time_window.end")}  # end different from start: two strings compared


def test_every_field_has_a_schema():
    assert unmapped() == []


def test_every_event_type_is_published_with_its_fields():
    union = COMPONENTS["Event"]
    assert set(union["discriminator"]["mapping"]) == set(EVENT_TYPES)
    for t in EVENT_TYPES:
        schema = COMPONENTS[component_name(t)]
        fields = set(EVENT_FIELDS[t]) - {"usd_micros"}  # derived by the validator, not sent
        assert set(schema["properties"]) == fields, t
        assert schema["properties"]["type"] == {"const": t}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_event())
def test_valid_events_match_the_schema(event):
    validate_event(event)  # the spec's valid event is valid for the validator
    errors = [e.message for e in EVENT.iter_errors(event)]
    assert not errors, (event, errors)
    assert BODY.is_valid([event]) and BODY.is_valid(event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event())
def test_defective_events_are_refused_by_the_schema(case):
    event, code, field = case
    try:
        validate_event(event)
    except EventRejected as err:
        code, field = err.code, err.field
    else:
        raise AssertionError(f"the validator accepted a defective event {event}")
    if (code, field) in _NOT_EXPRESSIBLE or (code == "invalid_value" and field in ("ts", "due_at")):
        return
    value = event.get(field) if field else None
    if code == "invalid_type" and isinstance(value, float) and value.is_integer():
        return  # JSON Schema counts 1.0 as an integer; the validator (like the spec) does not
    assert not EVENT.is_valid(event), (code, field, orjson.dumps(event)[:300])


def test_retry_number_is_required_with_retrying_only():
    base = {"event_id": "e1", "type": "contact.status", "ts": 1, "org_id": "o", "campaign_id": "c",
            "contact_id": "k"}
    assert EVENT.is_valid(dict(base, status="pending"))
    assert not EVENT.is_valid(dict(base, status="retrying"))
    assert EVENT.is_valid(dict(base, status="retrying", retry_number=2))


def test_body_shapes():
    ok = {"event_id": "e1", "type": "call.answered", "ts": "2026-05-08T09:00:00Z", "org_id": "o",
          "campaign_id": "c", "attempt_id": "a1", "unknown_field": [1]}
    assert BODY.is_valid([ok, ok]) and BODY.is_valid(ok) and BODY.is_valid([])
    assert not BODY.is_valid("text") and not BODY.is_valid([dict(ok, type="call.unknown")])
