"""The event-ingest API of the engine, re-exported from the modules that hold each job.

Import from here or from the owning module: limits (`engine.validation.limits`), vocabularies (`engine.vocab`),
the rejection (`engine.validation.rejection`), time parsing and formatting (`engine.timefmt`), money
(`engine.validation.money`), field checkers (`engine.validation.checkers`), the field tables and `validate_event`
(`engine.validation.validate`), body splitting (`engine.validation.body`). Only public names: a reader of the validator's
table (api/event_schema.py) takes it from its owners, `engine.validation.validate.TYPE_FIELDS` and `engine.validation.checkers`.
"""

from __future__ import annotations

from engine.timefmt import format_time, parse_time
from engine.validation.body import split_body
from engine.validation.limits import (  # noqa: F401
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
from engine.validation.money import usd_to_micros
from engine.validation.rejection import EventRejected
from engine.validation.validate import (
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
