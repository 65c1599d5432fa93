"""The ingest path of POST /v1/events (SPEC §1): body checks, validation and the append.

Everything here is sync and runs in the thread pool (api/routes/ingest.py), so a 10 000-event body
does not stall the SSE fan-out. The append is `flows.ingest_claims.accept_events`, the very path
`callpulse ingest` takes, so both agree on validation and de-dup.
"""

from __future__ import annotations

import time

import orjson

from api.late_notice import LateCheck
from api.settings import ApiSettings
from engine.validation.events import EventRejected, parse_event, split_body, validate_event

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")


def json_body_problem(body: bytes, content_type: str) -> str | None:
    """Why a JSON-array body (or any body sent as application/json) cannot be split, or None.

    NDJSON goes line by line (a bad line is one rejection); but a JSON array with one bad element
    (NaN, invalid UTF-8, ...) would otherwise be taken for one NDJSON line and reported as a single
    ``malformed`` at index 0, so it is refused whole, saying where it breaks."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in NDJSON_TYPES:
        return None  # the sender says NDJSON: line by line, a bad line (even a first line "[...") is one rejection
    text = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    stripped = text.lstrip(b" \t\r\n")
    is_json = media_type == "application/json"
    if not stripped or not (is_json or stripped[:1] == b"["):
        return None
    try:
        text.decode("utf-8")  # orjson would place an invalid byte at offset 0; this finds it
    except UnicodeDecodeError as exc:
        start = exc.start + (len(body) - len(text))
        line = body.count(b"\n", 0, start) + 1
        return (f"the body is not valid JSON: invalid UTF-8 at byte offset {start} (line {line}); "
                f"send a JSON array of events, or NDJSON (one event per line)")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if not is_json and stripped[:1] != b"[":
            return None
        return (f"the body is not valid JSON: {exc.msg} at byte offset {exc.pos} (line {exc.lineno}, "
                f"column {exc.colno}); send a JSON array of events, or NDJSON (one event per line)")
    if is_json and not isinstance(value, (list, dict)):
        return "a JSON body must be an array of events or one event object"
    return None


def ingest_body(client, body: bytes, org_id: str, settings: ApiSettings) -> dict:
    """Split, validate (live mode) and append a POST /v1/events body: the answer body
    ``{accepted, duplicates, rejected, late}``.

    Raises EventRejected("too_large") for a body over the limits. The append is
    `flows.ingest_claims.accept_events`, the path `callpulse ingest` takes, with the partitions and the replica
    acknowledgement of ``settings`` (`ApiSettings`).
    """
    return ingest_items(client, split_body(body), org_id, settings)


def ingest_items(client, items: list, org_id: str, settings: ApiSettings) -> dict:
    """Validate (live mode) and append the items of a split POST /v1/events body (see `ingest_body`)."""
    from flows.ingest_claims import accept_events  # one of the few flows imports (api/__init__.py)

    now_ms = int(time.time() * 1000)
    valid, positions, rejected = [], [], []
    for i, item in enumerate(items):
        try:
            ev = parse_event(item, now_ms=now_ms) if isinstance(item, bytes) else validate_event(item, now_ms=now_ms)
        except EventRejected as err:
            rejected.append({"index": i, **err.as_dict()})
            continue
        if ev["org_id"] != org_id:
            rejected.append({"index": i, "code": "forbidden_org", "field": "org_id",
                             "reason": f"field 'org_id' names org {ev['org_id']!r}; this key may only "
                                       f"write to org {org_id!r}"})
            continue
        valid.append(ev)
        positions.append(i)
    if not valid:
        return {"accepted": 0, "duplicates": 0, "rejected": rejected, "late": []}
    check = LateCheck(client)
    check.read(valid)  # before the append: the watermark as it stands without this body (api/late_notice.py)
    fresh = accept_events(client, valid, partitions=settings.partitions, ack=settings.ack)
    late = [{"index": i, "reason": why} for i, why in check.late(valid, fresh, positions)]
    accepted = sum(1 for f in fresh if f)
    return {"accepted": accepted, "duplicates": len(fresh) - accepted, "rejected": rejected, "late": late}
