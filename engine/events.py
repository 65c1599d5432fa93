"""The event-ingest API of the engine, re-exported from the modules that hold each job.

Import from here or from the owning module: limits (`engine.limits`), vocabularies (`engine.vocab`),
the rejection (`engine.rejection`), time parsing and formatting (`engine.timefmt`), money
(`engine.money`), field checkers (`engine.checkers`), the field tables and `validate_event`
(`engine.validation`), body splitting (`engine.body`). `api/event_schema.py` reads the checkers and
`_TYPE_FIELDS` through this module, so those private names stay reachable here.
"""

from __future__ import annotations

from engine.body import split_body
from engine.checkers import (  # noqa: F401
                             _HHMM,
                             _HHMM_END,
                             _ID_OK,
                             _SEEN_IDS,
                             _TZ_CACHE,
                             _check_bool,
                             _check_calling_hours,
                             _check_ceiling,
                             _check_config,
                             _check_email,
                             _check_id,
                             _check_id_cached,
                             _check_number,
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
)
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
from engine.timefmt import _MINUTE_CACHE, _RFC3339, _TAIL_CACHE, format_time, parse_time  # noqa: F401
from engine.validation import (  # noqa: F401
                             _TYPE_FIELDS,
                             EVENT_FIELDS,
                             EVENT_TYPES,
                             _retry_number_required,
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
