"""Size and range limits of an ingest event and body (SPEC §1): bytes, counts, characters, integers."""

from __future__ import annotations

MAX_EVENT_BYTES = 65536
MAX_BATCH_EVENTS = 10000
MAX_BODY_BYTES = 8 * 1024 * 1024
FUTURE_TOLERANCE_MS = 300_000

#: Largest accepted time: 9999-12-31T23:59:59.999Z.
MAX_TIME_MS = 253402300799999
#: Upper bound of every integer field without a SPEC upper bound (int64).
MAX_INT = 2**63 - 1
#: Largest accepted ``usd`` of one ``cost.incurred`` (keeps micro-dollar sums
#: well inside int64).
MAX_USD = 1_000_000_000

MAX_ID_CHARS = 128
MAX_VARIABLES = 200
MAX_VARIABLE_KEY_CHARS = 64
MAX_VARIABLE_VALUE_CHARS = 2048
MAX_RESULTS = 200
MAX_RESULT_KEY_CHARS = 128
MAX_RESULT_VALUE_CHARS = 2048
MAX_TZ_CHARS = 64

#: Per-field string length limits (characters, i.e. ``len(str)``).
STRING_LIMITS: dict[str, int] = {
    "name": 256,
    "company": 256,
    "from_email": 256,
    "kind": 64,
    "category": 64,
    "phone_number": 32,
    "email": 254,
    "recording_url": 2048,
    "preview": 2000,
    "content": 32768,
    "reason": 256,
}
