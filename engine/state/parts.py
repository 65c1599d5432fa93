"""The parts of a campaign's state: which attributes each part owns, and their types.

`CampaignState` (engine.state.campaign) is one object whose concerns live in mixins (engine.state: contacts,
attempts, email, alert_levels, details, extremes, agents; engine.compliance.guards). This module is
the map of its attributes: each part below names the attributes it owns, with their types. The map does
three jobs:

- the recovery format (engine.storage.recovery_format) writes a state as one record per part, field by field
  from these declarations, never as a pickled ``__dict__`` (docs/architecture.md, *Recovery format*);
- the type checker reads the attributes' types from `StateAttributes`, which every mixin inherits;
- a test holds it complete: every attribute a state has belongs to exactly one part
  (tests/test_recovery_format.py).

Annotations only: nothing here creates an attribute or runs at import (the types are strings).
Attributes in `DERIVED` are rebuilt on load from the others and are not written.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.compliance.forecast import ForecastAlarm
    from engine.compliance.levels import AlertTracker
    from engine.state.agent_timeline import Agent
    from engine.state.config import ConfigHistory
    from engine.state.entities import Attempt, Batch, Message, Pass
    from engine.state.followups import DueSchedule
    from engine.state.measures import CallbackTotals, Latest, Mean
    from engine.state.runs import Runs
    from engine.state.windows import BucketSeries, RollingPair
    from engine.storage.contact_table import ContactTable
    from engine.storage.sealed import SealedAttempts
    from engine.storage.sealed_messages import SealedMessages

EventKey = tuple[int, str]  # (ts, event_id): the order of facts (SPEC §1 *Order*)


class IdentityPart:
    """Whose state it is and the options it was made with."""
    org_id: str
    campaign_id: str
    min_sample: int
    lateness_ms: int | None
    collect_details: bool


class ClockPart:
    """Event time: the watermark, the minute grid, and the queues of what to seal behind the horizon."""
    now: int | None
    max_event_ts: int | None
    sealed_below: int | None
    seal_queue: list[tuple[int, str]]
    message_seal_queue: list[tuple[int, str]]
    _minute: int | None


class CampaignPart:
    """The campaign's configuration and status, its batches, passes and runs."""
    config: ConfigHistory
    status_key: EventKey | None
    status: str
    batches: dict[str, Batch]
    batch_ids: list[str]
    batch_no: dict[str, int]
    passes: dict[int, Pass]
    runs: Runs


class ContactsPart:
    """The contact table and the counts by status that pacing and ETA read."""
    table: ContactTable
    by_status: Counter
    retry: Counter
    nonfinal_by_dialed: Counter
    due_schedule: DueSchedule
    open_contacts: int
    final_human: int


class AttemptsPart:
    """Call attempts (open and sealed) and the outcome figures they add up to."""
    attempts: dict[str, Attempt]
    sealed: SealedAttempts
    attempts_total: int
    follow_up: int
    active: int
    ringing: int
    in_progress: int
    ended: int
    outcomes: Counter
    answered: int
    human: int
    abandoned: int
    ring: Mean
    aht: Mean
    orphan_attempts: int
    first_dial: int | None
    last_dial: Latest
    last_end: Latest
    open_by_contact: dict[str, list[str]]
    waiting: dict[str, Attempt]


class EmailPart:
    """Email messages (open and sealed) and their counts."""
    messages: dict[str, Message]
    sealed_messages: SealedMessages
    email_counts: Counter
    orphan_messages: int
    first_send: int | None
    last_send: Latest


class ResultsPart:
    """What the campaign produced and cost, and what the gate turned away."""
    meetings: int
    callbacks: CallbackTotals
    cost_micros: int
    cost_by_category: Counter
    late: int
    duplicates: int


class SeriesPart:
    """Per-second series of the rates and the per-quarter-hour daily cells."""
    dials_1s: BucketSeries
    sends_1s: BucketSeries
    bridged_1s: BucketSeries
    ended_1s: BucketSeries
    ring_1s: BucketSeries
    daily: dict[int, list[int]]


class AbandonPart:
    """The abandon windows (today, 24 h, 30 d), their levels, and the alerts not yet taken."""
    today: RollingPair
    w24h: RollingPair
    w30d: RollingPair
    day_start: int | None
    day_end: int | None
    day_tz: str | None
    trackers: dict[str, AlertTracker]
    pending_alerts: list[dict]
    alerts_dirty: bool


class ForecastPart:
    """The abandon forecast: the trend window and the alarms per window."""
    trend: RollingPair
    forecast_alarms: dict[str, ForecastAlarm]
    forecast_stale: bool
    forecast_recheck_at: int
    forecast_reads_e: bool
    _breach_cache: tuple  # (inputs, t* per window), set on first use: recomputed after a load


class ComplaintsPart:
    """Email complaint windows and their levels."""
    complaints_30d: RollingPair
    complaint_trackers: dict[str, AlertTracker]
    complaints_dirty: bool


class CompliancePart:
    """The compliance guards (calling hours, abandoned redials) and the 30-day periods."""
    ch_violations: int
    ch_last: Latest
    ar_violations: int
    ar_last: Latest
    abandon_ends: dict[int, list[int]]
    guard_alerts: dict[str, int]
    guard_queue: list[tuple]
    guards_touched: list[tuple]
    period_origin: int | None
    periods: dict[int, list[int]]


class AgentsPart:
    """The agents: each one's state events (from the horizon on), time folded behind it, calls and AHT."""
    agents: dict[str, Agent]


class DetailsPart:
    """The outbox of detail records changed since the last frame (engine.state.details)."""
    dirty_contacts: set[str]
    dirty_attempts: set[str]
    dirty_batches: set[str]
    dirty_messages: set[str]
    dirty_quarters: set[int]
    transcript_lines: list[dict]
    profiles: dict[str, dict]
    trail_changes: list[tuple[str, str, int]]
    sealed_records: list[tuple[bool, dict]]
    activity_out: list[dict]


# Part name in the recovery record -> its declaration. The order is the record's.
PARTS: dict[str, type] = {
    "identity": IdentityPart,
    "clock": ClockPart,
    "campaign": CampaignPart,
    "contacts": ContactsPart,
    "attempts": AttemptsPart,
    "email": EmailPart,
    "results": ResultsPart,
    "series": SeriesPart,
    "abandon": AbandonPart,
    "forecast": ForecastPart,
    "complaints": ComplaintsPart,
    "compliance": CompliancePart,
    "details": DetailsPart,
    "agents": AgentsPart,
}

# Rebuilt on load from the open attempts and the contact table (CampaignState.__setstate__): not written.
DERIVED = frozenset({"due_schedule", "open_by_contact", "waiting", "_breach_cache"})


def part_fields(part: type) -> tuple[str, ...]:
    """The attributes a part owns, in declaration order."""
    return tuple(part.__annotations__)


FIELDS_OF: dict[str, tuple[str, ...]] = {name: tuple(f for f in part_fields(cls) if f not in DERIVED)
                                         for name, cls in PARTS.items()}
PART_OF: dict[str, str] = {f: name for name, cls in PARTS.items() for f in part_fields(cls)}


class StateAttributes(IdentityPart, ClockPart, CampaignPart, ContactsPart, AttemptsPart, EmailPart, ResultsPart,
                      SeriesPart, AbandonPart, ForecastPart, ComplaintsPart, CompliancePart, DetailsPart, AgentsPart):
    """Every attribute of a campaign state, typed: the base of the state's mixins (for the type checker)."""

    if TYPE_CHECKING:  # the methods one mixin calls on another (defined there; declared here for the checker)
        def first_dial_ts(self) -> int | None: ...  # state.alert_levels
        def _daily(self, ts: int, field: int, s: int) -> None: ...  # state.attempts
        def _pass(self, n: int) -> Pass: ...  # state.contacts
        def _contact_contrib(self, row: int, s: int) -> None: ...  # state.contacts
        def _guard_open(self, aid: str, a: Attempt) -> None: ...  # compliance.guards
        def _guard_retract_own(self, a: Attempt) -> None: ...  # compliance.guards
        def _abandon_end(self, cid: str, row: int, ets: int, s: int) -> None: ...  # compliance.guards
        def _redecide_touched(self) -> None: ...  # compliance.guards
        def _period_add(self, ets: int, ab: int, s: int) -> None: ...  # compliance.guards
        def attempt_detail(self, aid: str, a: Attempt) -> dict: ...  # compliance.guards
        def _agent_bridge(self, agent_id: str, s: int) -> None: ...  # state.agents
        def _agent_call(self, agent_id: str, handle_ms: int, s: int) -> None: ...  # state.agents
        def _compact_agents(self, horizon: int) -> None: ...  # state.agents
        def _init_agents(self) -> None: ...  # state.agents

