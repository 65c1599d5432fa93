"""Reading event files for `callpulse replay` and `callpulse ingest`: NDJSON or one JSON array.

SPEC §1: ingest accepts a JSON array or NDJSON. A file whose first
non-blank byte is ``[`` is read as one JSON array (position = 1-based index
in the array); otherwise as NDJSON (position = line number, blank lines
skipped). A leading UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import orjson

from engine.validation.events import EventRejected, parse_event, validate_event

BOM = b"\xef\xbb\xbf"


def iter_events(src: BinaryIO, *, now_ms: int | None = None, now=None) -> Iterator[tuple[int, dict | EventRejected]]:
    """Yield ``(position, normalised event or EventRejected)`` for every item of the file.

    ``now`` (a callable returning epoch ms) is read per item for the live-mode future check;
    ``now_ms`` is a fixed value; neither: replay mode (no future check).
    """
    head = src.read(4096)
    stripped = head[3:] if head.startswith(BOM) else head
    if stripped.lstrip()[:1] == b"[":
        data = stripped + src.read()
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield 1, EventRejected("malformed", None, f"the file is not a valid JSON array: {exc}")
            return
        for i, obj in enumerate(items, 1):
            try:
                yield i, validate_event(obj, now_ms=now() if now else now_ms)
            except EventRejected as err:
                yield i, err
        return
    buffered = stripped
    lineno = 0
    while True:
        chunk = src.read(1 << 16)
        buffered += chunk
        lines = buffered.split(b"\n")
        buffered = lines.pop() if chunk else b""
        for line in lines:
            lineno += 1
            if not line.strip():
                continue
            try:
                yield lineno, parse_event(line, now_ms=now() if now else now_ms)
            except EventRejected as err:
                yield lineno, err
        if not chunk:
            return
