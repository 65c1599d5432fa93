"""`DetailBatch`: the detail records a campaign's state hands the flow between two frames
(`CampaignState.take_details`), one named field per kind of record.

The state fills it (engine.state.details), the flow's campaign step sends it on in a `Details` item
(flows.messages) and the sink writes it (flows.detail_writer): one type, so a kind of record added here is
seen by all three. Records are the JSON-ready dicts of engine.views.detail, engine.views.message_detail and
engine.views.activity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DetailBatch:
    """Every field is empty when nothing of its kind changed (``DetailBatch()``: nothing at all)."""

    contacts: list[Record] = field(default_factory=list)  # changed contacts (engine.views.detail.contact_record)
    profiles: list[Record] = field(default_factory=list)  # contact profiles, by contact id
    trail: list[tuple[str, str, int]] = field(default_factory=list)  # (contact, attempt, +1 joined / -1 left)
    attempts: list[Record] = field(default_factory=list)  # full attempt records
    # records of attempts unsealed or re-decided after sealing: the sink lays each over the stored record
    attempt_patches: list[Record] = field(default_factory=list)
    batches: list[Record] = field(default_factory=list)
    replies: list[Record] = field(default_factory=list)  # email replies (engine.views.detail.reply_record)
    messages: list[Record] = field(default_factory=list)  # email messages (engine.views.message_detail)
    daily: dict[int, list[int]] = field(default_factory=dict)  # quarter-hour -> its counters (engine.state.grid)
    transcripts: list[Record] = field(default_factory=list)  # new transcript lines
    activity: list[Record] = field(default_factory=list)  # activity log sources (engine.views.activity)

    def has_records(self) -> bool:
        """Whether any field holds a record (the step sends no empty batch)."""
        return any(getattr(self, name) for name in FIELD_NAMES)


FIELD_NAMES = tuple(f.name for f in fields(DetailBatch))
