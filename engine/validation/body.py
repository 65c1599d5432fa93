"""Splitting an ingest body into events: a JSON array, one pretty-printed event, or NDJSON lines."""

from __future__ import annotations

import orjson

from engine.validation.limits import MAX_BATCH_EVENTS, MAX_BODY_BYTES, MAX_EVENT_BYTES
from engine.validation.rejection import EventRejected

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"


def split_body(body: bytes) -> list[bytes | object]:
    """Split an ingest body into events.

    * A body whose first non-blank byte is ``[`` and that parses as JSON is a
      JSON array: the decoded elements are returned (each then goes through
      :func:`validate_event`). An element whose compact JSON is larger than
      :data:`MAX_EVENT_BYTES` is returned re-serialised as ``bytes`` so that
      :func:`decode_event` rejects it as ``too_large``.
    * A body whose first non-blank byte is ``{`` and that parses as one JSON
      value (a pretty-printed single event) is returned as one raw line.
    * Anything else is NDJSON: the raw lines (``bytes``, surrounding
      whitespace stripped), blank lines skipped. A line that is not JSON
      fails on its own as ``malformed`` in :func:`decode_event`.

    A leading UTF-8 byte-order mark is ignored. A body over
    :data:`MAX_BODY_BYTES` or with more than :data:`MAX_BATCH_EVENTS` events
    raises ``EventRejected("too_large", None, ...)``.
    """
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif not isinstance(body, bytes):
        body = bytes(body)
    if len(body) > MAX_BODY_BYTES:
        raise EventRejected(
            "too_large", None, f"body is {len(body)} bytes, more than {MAX_BODY_BYTES}"
        )
    if body.startswith(_BOM):
        body = body[3:]
    stripped = body.strip(_WS)
    if not stripped:
        return []
    first = stripped[:1]
    if first == b"[":
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            if len(items) > MAX_BATCH_EVENTS:
                raise _too_many(len(items))
            if len(stripped) > MAX_EVENT_BYTES:
                dumps = orjson.dumps
                for i, item in enumerate(items):
                    if isinstance(item, dict):
                        try:
                            enc = dumps(item)
                        except TypeError:  # pragma: no cover - decoded JSON always dumps
                            continue
                        if len(enc) > MAX_EVENT_BYTES:
                            items[i] = enc
            return items
    elif first == b"{" and b"\n" in stripped:
        try:
            orjson.loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            return [stripped]
    lines: list[bytes | object] = [line for line in (raw.strip(_WS) for raw in stripped.split(b"\n")) if line]
    if len(lines) > MAX_BATCH_EVENTS:
        raise _too_many(len(lines))
    return lines


def _too_many(n: int) -> EventRejected:
    return EventRejected(
        "too_large", None, f"body holds {n} events, more than {MAX_BATCH_EVENTS}"
    )
