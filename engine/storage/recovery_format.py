"""The recovery format: a campaign's state as bytes in a recovery snapshot or a campaign archive, and back.

A snapshot is ``MAGIC`` followed by a pickle (protocol 5, the standard library's documented encoding)
in which every object is a plain value (None, bool, int, float, str, bytes, tuple, list, dict, set, and
`collections.Counter`, `fractions.Fraction`, `array.array`) or a *record*: a stable type tag from
`RECORD_TYPES` with that type's declared state. Nothing in a snapshot names a Python module or class of
ours, so moving or renaming code never breaks a snapshot, and reading one runs no code but `record` and
`stored_piece`: any other global in the data is refused (`RecoveryFormatError`).

- A `CampaignState` is written as one record per part, field by field, as engine.state.parts declares
  (``{"identity": {"org_id": ...}, "clock": {...}, ...}``); a field that belongs to no part is refused
  when writing, so nothing is saved that the format does not name.
- Every other type's state is what its ``__getstate__`` declares (the entities and measures write tuples
  of their slots; their ``__setstate__`` read every older shape they had).
- Content-addressed pieces (`STORED_TYPES`: sealed chunks, blocks of contact columns) are written apart
  by the caller's ``put`` (flows.chunk_store) and named in the snapshot by key (`stored_piece`).

Snapshots from before this format (a pickled tuple naming our classes by module path, STATE_VERSION 1
to 5) are read by `decode` through the legacy reader; `LEGACY_NAMES` maps the paths of classes that
moved since. docs/architecture.md, *Recovery format*.
"""

from __future__ import annotations

import io
import pickle
import threading
from array import array
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from engine.compliance.forecast import ForecastAlarm
from engine.compliance.levels import AlertTracker
from engine.localtime import TimeWindow
from engine.state.agent_timeline import Agent
from engine.state.campaign import CampaignState
from engine.state.config import CampaignConfig, ConfigHistory
from engine.state.entities import Attempt, Batch, Message, Pass
from engine.state.followups import DueSchedule
from engine.state.gate import EventGate, KeyClock
from engine.state.measures import CallbackTotals, Latest, Mean
from engine.state.parts import FIELDS_OF, PART_OF
from engine.state.runs import Runs
from engine.state.windows import BucketSeries, RollingPair
from engine.storage.contact_blocks import BlockBook, ColumnBlock, ColumnBlockRef
from engine.storage.contact_table import ContactTable
from engine.storage.id_rows import IdRows
from engine.storage.sealed import SealedAttempts
from engine.storage.sealed_base import FrozenChunk
from engine.storage.sealed_messages import SealedMessages

MAGIC = b"callpulse-recovery/1\n"

# Stable tag -> type. A tag is never reused or renamed: it is what snapshots hold.
RECORD_TYPES: dict[str, type] = {
    "campaign_state": CampaignState,
    "event_gate": EventGate,
    "key_clock": KeyClock,
    "config_history": ConfigHistory,
    "campaign_config": CampaignConfig,
    "time_window": TimeWindow,
    "alert_tracker": AlertTracker,
    "forecast_alarm": ForecastAlarm,
    "contact_table": ContactTable,
    "block_book": BlockBook,
    "column_block": ColumnBlock,
    "id_rows": IdRows,
    "attempt": Attempt,
    "message": Message,
    "batch": Batch,
    "pass": Pass,
    "sealed_attempts": SealedAttempts,
    "sealed_messages": SealedMessages,
    "frozen_chunk": FrozenChunk,
    "runs": Runs,
    "due_schedule": DueSchedule,
    "mean": Mean,
    "latest": Latest,
    "callback_totals": CallbackTotals,
    "bucket_series": BucketSeries,
    "rolling_pair": RollingPair,
    "agent": Agent,
}
TAG_OF: dict[type, str] = {cls: tag for tag, cls in RECORD_TYPES.items()}

# Written once apart (content-addressed) when the caller stores pieces; each has `chunk_key` and
# `chunk_data()`. A `ColumnBlockRef` is a snapshot's handle on a block of the contact table.
STORED_TYPES = (FrozenChunk, ColumnBlock, ColumnBlockRef)


class RecoveryFormatError(ValueError):
    """Bytes that are not a recovery snapshot this release reads, or a state it cannot write."""


def _campaign_state_record(st: CampaignState) -> dict[str, dict[str, Any]]:
    flat = st.__getstate__()
    stray = [name for name in flat if name not in PART_OF]
    if stray:
        raise RecoveryFormatError(f"campaign state attributes {stray} belong to no part of engine/state/parts.py")
    return {part: {name: flat[name] for name in fields} for part, fields in FIELDS_OF.items()}


def _campaign_state_of(parts: dict[str, dict[str, Any]]) -> CampaignState:
    flat: dict[str, Any] = {}
    for fields in parts.values():
        flat.update(fields)
    st = CampaignState.__new__(CampaignState)
    st.__setstate__(flat)
    return st


def record(tag: str, state: Any) -> Any:
    """One record read back: the object of type ``tag`` with ``state``."""
    if tag == "campaign_state":
        return _campaign_state_of(state)
    cls = RECORD_TYPES.get(tag)
    if cls is None:
        raise RecoveryFormatError(f"unknown record type {tag!r} (written by a newer callpulse?)")
    obj: Any = object.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)  # (object has none: a type without one gets pickle's default)
    if setstate is not None:
        setstate(state)
    else:
        _default_setstate(obj, state)
    return obj


def _default_setstate(obj: Any, state: Any) -> None:
    """What pickle does for a type without ``__setstate__``: a ``__dict__``, or (``__dict__``, slots)."""
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    if state:
        obj.__dict__.update(state)
    for name, value in (slots or {}).items():
        setattr(obj, name, value)


_LOADING = threading.local()  # the ``get`` of the `decode` running in this thread


def stored_piece(key: str) -> Any:
    """A stored piece read back: from the ``get`` of the `decode` running in this thread."""
    get = getattr(_LOADING, "get", None)
    if get is None:
        raise RecoveryFormatError(f"the snapshot names stored piece {key}, and no store was given to read it")
    return get(key)


class _Writer(pickle.Pickler):
    """Every record type goes through the dispatch table (looked up in C), so nothing of ours is named by
    its module path; stored pieces are put apart and named by key."""

    def __init__(self, file, put: Callable[[Any], str] | None):
        super().__init__(file, protocol=5)
        self.put = put
        table: dict[type, Callable[[Any], tuple]] = {cls: self._reduce_record for cls in RECORD_TYPES.values()}
        table[CampaignState] = self._reduce_campaign_state
        table[ColumnBlockRef] = self._reduce_block_ref
        if put is not None:
            for cls in STORED_TYPES:
                table[cls] = self._reduce_stored
        self.dispatch_table = table

    @staticmethod
    def _reduce_record(obj) -> tuple:
        return record, (TAG_OF[type(obj)], obj.__getstate__())

    @staticmethod
    def _reduce_campaign_state(obj) -> tuple:
        return record, ("campaign_state", _campaign_state_record(obj))

    def _reduce_block_ref(self, ref) -> tuple:  # without a store: the block's content
        return self._reduce_record(ref.chunk_data())

    def _reduce_stored(self, piece) -> tuple:
        assert self.put is not None
        return stored_piece, (self.put(piece),)

    def reducer_override(self, obj):
        cls = type(obj)
        if cls.__module__.split(".")[0] in _OURS and cls not in self.dispatch_table:
            raise RecoveryFormatError(f"{cls.__module__}.{cls.__qualname__} has no record type in "
                                      "engine/storage/recovery_format.py RECORD_TYPES")
        return NotImplemented


_OURS = ("engine", "flows", "api", "callpulse")

# The globals a snapshot may name, and what they are.
_GLOBALS: dict[tuple[str, str], Any] = {
    ("engine.storage.recovery_format", "record"): record,
    ("engine.storage.recovery_format", "stored_piece"): stored_piece,
    # (where this module was when the format began: snapshots written then name these)
    ("engine.recovery_format", "record"): record,
    ("engine.recovery_format", "stored_piece"): stored_piece,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("collections", "Counter"): Counter,
    ("fractions", "Fraction"): Fraction,
    ("array", "array"): array,
    ("array", "_array_reconstructor"): __import__("array")._array_reconstructor,
}


class _Reader(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _GLOBALS.get((module, name))
        if found is None:
            raise RecoveryFormatError(f"a recovery snapshot may not name {module}.{name}")
        return found


# Legacy snapshots name our classes by the module they were in then: engine/ was flat until issue #26 gave
# it sub-packages. Old module path -> where its classes are now.
LEGACY_MODULES: dict[str, str] = {
    "engine.body": "engine.validation.body",
    "engine.checkers": "engine.validation.checkers",
    "engine.events": "engine.validation.events",
    "engine.limits": "engine.validation.limits",
    "engine.money": "engine.validation.money",
    "engine.rejection": "engine.validation.rejection",
    "engine.validation": "engine.validation.validate",
    "engine.state": "engine.state.campaign",
    "engine.state_parts": "engine.state.parts",
    "engine.state_attempts": "engine.state.attempts",
    "engine.state_contacts": "engine.state.contacts",
    "engine.state_email": "engine.state.email",
    "engine.state_alerts": "engine.state.alert_levels",
    "engine.state_details": "engine.state.details",
    "engine.state_extremes": "engine.state.extremes",
    "engine.state_grid": "engine.state.grid",
    "engine.state_upgrade": "engine.state.upgrade",
    "engine.entities": "engine.state.entities",
    "engine.measures": "engine.state.measures",
    "engine.windows": "engine.state.windows",
    "engine.config": "engine.state.config",
    "engine.runs": "engine.state.runs",
    "engine.followups": "engine.state.followups",
    "engine.gate": "engine.state.gate",
    "engine.fold": "engine.state.fold",
    "engine.state_guards": "engine.compliance.guards",
    "engine.alerts": "engine.compliance.levels",
    "engine.forecast": "engine.compliance.forecast",
    "engine.contact_table": "engine.storage.contact_table",
    "engine.contact_blocks": "engine.storage.contact_blocks",
    "engine.id_rows": "engine.storage.id_rows",
    "engine.sealed": "engine.storage.sealed",
    "engine.sealed_base": "engine.storage.sealed_base",
    "engine.sealed_layouts": "engine.storage.sealed_layouts",
    "engine.sealed_messages": "engine.storage.sealed_messages",
    "engine.recovery_format": "engine.storage.recovery_format",
    "engine.recovery_inspect": "engine.storage.recovery_inspect",
    "engine.keys": "engine.storage.keys",
    "engine.snapshot": "engine.views.snapshot",
    "engine.daily": "engine.views.daily",
    "engine.detail": "engine.views.detail",
    "engine.detail_batch": "engine.views.detail_batch",
    "engine.history": "engine.views.history",
    "engine.message_detail": "engine.views.message_detail",
    "engine.peer_percentiles": "engine.views.peer_percentiles",
    "engine.due_statuses": "engine.views.due_statuses",
    "engine.activity": "engine.views.activity",
}
# Single names that moved or were renamed: (module, name) then -> now.
LEGACY_NAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("flows.chunk_store", "_stored_piece"): ("engine.storage.recovery_format", "stored_piece"),
    ("engine.gate", "_Clock"): ("engine.state.gate", "KeyClock"),
}
_LEGACY_TAG = "callpulse-chunk"  # the persistent id of stored pieces in the oldest snapshots


class _LegacyReader(pickle.Unpickler):
    """Snapshots and archives written before this format: a pickle that names our classes by path."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = LEGACY_NAMES.get((module, name), (LEGACY_MODULES.get(module, module), name))
        if module.split(".")[0] not in _OURS + _LEGACY_LIBRARIES and (module, name) not in _GLOBALS:
            raise RecoveryFormatError(f"a legacy recovery snapshot may not name {module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        tag, key = pid
        if tag != _LEGACY_TAG:
            raise RecoveryFormatError(f"unknown persistent id {tag!r}")
        return stored_piece(key)


_LEGACY_LIBRARIES = ("builtins", "collections", "fractions", "array", "copyreg", "numpy", "_codecs")


def encode(value: Any, put: Callable[[Any], str] | None = None) -> bytes:
    """``value`` (a tuple of plain values and records) in the recovery format. ``put``: write a stored piece
    apart and return its key (None: pieces are written inline, as records)."""
    buf = io.BytesIO()
    buf.write(MAGIC)
    _Writer(buf, put).dump(value)
    return buf.getvalue()


def decode(data: bytes, get: Callable[[str], Any] | None = None) -> Any:
    """What `encode` wrote (or a legacy snapshot); ``get`` reads a stored piece by key."""
    previous = getattr(_LOADING, "get", None)
    _LOADING.get = get
    try:
        if data[:len(MAGIC)] == MAGIC:
            buf = io.BytesIO(data)
            buf.seek(len(MAGIC))
            return _Reader(buf).load()
        return _LegacyReader(io.BytesIO(data)).load()
    finally:
        _LOADING.get = previous


def is_current(data: bytes) -> bool:
    """Whether ``data`` is in this format (not a legacy pickle)."""
    return data[:len(MAGIC)] == MAGIC
