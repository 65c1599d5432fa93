"""The three SSE routes in the OpenAPI document: each stream's events, typed (api/openapi_doc.py calls this).

OpenAPI 3.1 (the version FastAPI writes) has no keyword for the items of a stream. The convention that
OpenAPI 3.2 made official (``itemSchema``) and that tools already apply to 3.1 documents (schemathesis reads a
``text/event-stream`` schema as the schema of one event) is followed here: the response's ``schema`` describes
**one event** as an object ``{event, id, data, retry?}``, the event name a ``const``, the union of a route's
events a ``oneOf`` discriminated by ``event``. ``data`` is the JSON text of the event (a string on the wire):
``contentMediaType: application/json`` with ``contentSchema`` referencing the model of what it decodes to.

Every event of ours has an ``event:`` name, an ``id:`` and one ``data:`` line (docs/api.md, *Framing*);
``retry`` comes with the first event of a connection. ``x-sse-events`` (event name → data schema) is kept for
the clients that read it.
"""

from __future__ import annotations

REF = "#/components/schemas/"
ALERT_MODELS = ("LevelAlert", "ForecastAlert", "GuardAlert", "ComplaintAlert")

# event name -> (component name of the event object, models its data decodes to)
EVENTS = {
    "frame": ("LiveFrameEvent", ("LiveFrame",)),
    "alert": ("AlertEvent", ALERT_MODELS),
    "snapshot": ("OrgLiveSnapshotEvent", ("OrgLiveSnapshot",)),
    "campaign": ("OrgLiveSummaryEvent", ("OrgLiveSummary",)),
}
_ABOUT = {
    "frame": "a campaign frame: the /stats body plus `seq`",
    "alert": "an alert record: a level change, a forecast, a guard violation or a spam-complaint level change",
    "snapshot": "every campaign of the org, first event of each (re)connect",
    "campaign": "one campaign's summary, sent when anything but as_of changed",
}
_ID = {
    "frame": "the resume cursor `<seq>.<l>.<t>.<h>.<d>.<ft>.<fd>` as it stands after this event",
    "alert": "on /v1/campaigns/{campaign_id}/live the resume cursor, on /v1/alerts the org alert stream entry id",
    "snapshot": "`<server ms>-<n>`", "campaign": "`<server ms>-<n>`",
}

# route -> (component name of its event union, its events)
STREAMS = {
    "campaign": ("CampaignLiveEvent", ("frame", "alert")),
    "org_live": ("OrgLiveEvent", ("snapshot", "campaign")),
    "alerts": ("AlertEvent", ("alert",)),
}


def _data_schema(models: tuple[str, ...]) -> dict:
    refs = [{"$ref": REF + m} for m in models]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _event_schema(name: str) -> dict:
    _, models = EVENTS[name]
    return {
        "type": "object", "title": EVENTS[name][0], "required": ["event", "id", "data"],
        "description": f"`event: {name}`: {_ABOUT[name]}",
        "properties": {
            "event": {"type": "string", "const": name},
            "id": {"type": "string", "description": _ID[name]},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": _data_schema(models),
                     "description": "the event's JSON, one line"},
            "retry": {"type": "integer", "description": "the reconnect delay in ms (first event of a connection)"},
        },
    }


def add_components(comps: dict) -> None:
    """One component per event object, one per stream's union of events."""
    for name, (component, _) in EVENTS.items():
        comps[component] = _event_schema(name)
    for union, events in STREAMS.values():
        if len(events) > 1:
            comps[union] = {
                "title": union, "description": "one event of the stream (a text/event-stream is a sequence of these)",
                "oneOf": [{"$ref": REF + EVENTS[e][0]} for e in events],
                "discriminator": {"propertyName": "event",
                                  "mapping": {e: REF + EVENTS[e][0] for e in events}}}


def response(stream: str, description: str) -> dict:
    """The 200 of an SSE route: ``text/event-stream`` whose schema is one event of the stream."""
    union, events = STREAMS[stream]
    return {"description": description,
            "content": {"text/event-stream": {"schema": {"$ref": REF + union}}},
            "x-sse-events": {e: _data_schema(EVENTS[e][1]) for e in events}}
