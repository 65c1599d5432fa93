"""The event-ingest API of the engine, re-exported from the modules that hold each job.

Import from here or from the owning module: limits (`engine.limits`), vocabularies (`engine.vocab`),
the rejection (`engine.rejection`), time parsing and formatting (`engine.timefmt`), money
(`engine.money`), field checkers (`engine.checkers`), the field tables and `validate_event`
(`engine.validation`), body splitting (`engine.body`). Only public names: a reader of the validator's
table (api/event_schema.py) takes it from its owners, `engine.validation.TYPE_FIELDS` and `engine.checkers`.
"""

from __future__ import annotations

from engine.body import split_body
from engine.limits import (  # noqa: F401
                             FUTURE_TOLERANCE_MS,
                             MAX_BATCH_EVENTS,
                             MAX_BODY_BYTES,
                             MAX_EVENT_BYTES,
                             MAX_ID_CHARS,
                             MAX_INT,
                             MAX_RESULT_KEY_CHARS,
                             MAX_RESULT_VALUE_CHARS,
                             MAX_RESULTS,
                             MAX_TIME_MS,
                             MAX_TZ_CHARS,
                             MAX_USD,
                             MAX_VARIABLE_KEY_CHARS,
                             MAX_VARIABLE_VALUE_CHARS,
                             MAX_VARIABLES,
                             STRING_LIMITS,
)
from engine.money import usd_to_micros
from engine.rejection import EventRejected
from engine.timefmt import format_time, parse_time
from engine.validation import (
                             EVENT_FIELDS,
                             EVENT_TYPES,
                             clear_caches,
                             decode_event,
                             parse_event,
                             validate_event,
)
from engine.vocab import (  # noqa: F401
                             ABANDON_FROM,
                             AMD_RESULTS,
                             BATCH_STATUSES,
                             CAMPAIGN_STATUSES,
                             CHANNELS,
                             CONTACT_STATUSES,
                             FINAL_CONTACT_STATUSES,
                             NONFINAL_CONTACT_STATUSES,
                             SENTIMENTS,
                             TRANSCRIPT_ROLES,
)

__all__ = [
    "EventRejected",
    "EVENT_TYPES",
    "CONTACT_STATUSES",
    "FINAL_CONTACT_STATUSES",
    "NONFINAL_CONTACT_STATUSES",
    "CAMPAIGN_STATUSES",
    "BATCH_STATUSES",
    "MAX_EVENT_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_BODY_BYTES",
    "FUTURE_TOLERANCE_MS",
    "MAX_TIME_MS",
    "decode_event",
    "validate_event",
    "parse_event",
    "split_body",
    "parse_time",
    "format_time",
    "usd_to_micros",
    "clear_caches",
    "EVENT_FIELDS",
]
