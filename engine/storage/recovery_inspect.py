"""What a recovery snapshot holds, for an operator (``callpulse flow --show-snapshot``): JSON-ready, no I/O.

`describe_snapshot` takes the value `engine.storage.recovery_format.decode` read from a campaign step's snapshot
``(STATE_VERSION, state, seq, dirty, last_frame, last_event, gate)`` and gives the frame bookkeeping, each
part of the state (engine.state.parts) with its fields summarised (numbers and short values as they are,
collections by their size, the big structures by what they hold), and the ``/stats`` body the state gives.
"""

from __future__ import annotations

from typing import Any

from engine.state.campaign import CampaignState
from engine.state.parts import FIELDS_OF
from engine.views.snapshot import build_snapshot

_SHORT = 12  # a list or tuple of plain values up to this long is shown whole


def describe_value(value: Any) -> Any:
    """A field's value as an operator reads it: plain values as they are; anything else summarised."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and len(value) <= _SHORT and all(
            v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    if isinstance(value, dict) and len(value) <= _SHORT and all(
            isinstance(v, (bool, int, float, str)) or v is None for v in value.values()):
        return {str(k): v for k, v in value.items()}
    kind = type(value).__name__
    slots = getattr(type(value), "__slots__", None)
    if slots and len(slots) <= _SHORT:  # a small value object (engine.state.measures): its fields
        fields = {name: getattr(value, name, None) for name in slots}
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in fields.values()):
            return fields
    rows = getattr(value, "live", None)
    if isinstance(rows, int):  # sealed rows (engine.storage.sealed_base.SealedRows)
        return f"{kind}: {rows} live rows, {len(value.chunks)} frozen chunks"
    try:
        return f"{kind} of {len(value)}"
    except TypeError:
        return kind


def describe_state(st: CampaignState) -> dict[str, dict[str, Any]]:
    """Each part of the state with its fields (as the recovery format writes them) summarised."""
    return {part: {name: describe_value(getattr(st, name, None)) for name in fields}
            for part, fields in FIELDS_OF.items()}


def describe_snapshot(value: tuple) -> dict[str, Any]:
    """A campaign step's snapshot value: version, frame bookkeeping, the state's parts and its /stats body."""
    version, st, seq, dirty, last_frame, last_event, *gate = value
    out: dict[str, Any] = {"state_version": version, "frame_seq": seq, "frame_pending": dirty,
                           "last_frame_wall_s": last_frame, "last_event_wall_s": last_event}
    if st is None:
        out["state"] = None
        return out
    out["campaign"] = f"{st.org_id}/{st.campaign_id}"
    out["parts"] = describe_state(st)
    out["stats"] = build_snapshot(st)
    return out
