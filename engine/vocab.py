"""The vocabularies of the domain, one definition each: contact, campaign and batch statuses, channels,
call outcomes, alert windows and series, and the other enumerations SPEC §1 and §3 name.

Plain tuples of strings (not ``StrEnum``): the validator returns the caller's own ``str`` objects and
the state indexes by position (``CONTACT_STATUSES[code]``), so an enum would add a conversion on the
hot path and change nothing a reader sees.
"""

from __future__ import annotations

NONFINAL_CONTACT_STATUSES: tuple[str, ...] = (
    "pending",
    "dispatched",
    "in_progress",
    "retrying",
    "followup_scheduled",
)
FINAL_CONTACT_STATUSES: tuple[str, ...] = (
    "completed",
    "failed",
    "busy",
    "no_answer",
    "skipped",
    "max_retries_reached",
    "window_closed",
    "manual_stopped",
)
CONTACT_STATUSES: tuple[str, ...] = NONFINAL_CONTACT_STATUSES + FINAL_CONTACT_STATUSES

CAMPAIGN_STATUSES: tuple[str, ...] = ("draft", "active", "paused", "stopped", "completed", "cancelled")
BATCH_STATUSES: tuple[str, ...] = ("pending", "in_progress", "paused", "completed", "cancelled")
CHANNELS: tuple[str, ...] = ("voice", "email")
ABANDON_FROM: tuple[str, ...] = ("answer", "greeting_end")  # where the abandon threshold is measured from
AMD_RESULTS: tuple[str, ...] = ("human", "machine", "unknown")
TRANSCRIPT_ROLES: tuple[str, ...] = ("assistant", "user")
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "negative")
#: An agent's state (`agent.state`, SPEC *Agent events*), in the order of the body's `agents.by_state`.
AGENT_STATES: tuple[str, ...] = ("ready", "on_call", "wrap", "paused", "offline")
#: The states whose time the body reports per agent (`agents.list[].time_ms`; offline time is not).
AGENT_TIME_STATES: tuple[str, ...] = AGENT_STATES[:4]

#: Contact statuses that end a contact without success (the snapshot's ``exhausted`` bucket).
EXHAUSTED_CONTACT_STATUSES: tuple[str, ...] = tuple(s for s in FINAL_CONTACT_STATUSES if s != "completed")

#: Outcome of an ended call attempt (engine.state.entities decides it); the order is the sealed table's code.
OUTCOMES: tuple[str, ...] = ("connected", "abandoned", "machine", "busy", "no_answer", "failed")

#: Abandon-rate windows of the alert levels (SPEC §3), in body order.
WINDOWS: tuple[str, ...] = ("lifetime", "today", "24h", "30d")
#: Windows the abandon forecast covers.
FORECAST_WINDOWS: tuple[str, ...] = ("today", "30d")
#: Windows of the spam-complaint levels (SPEC §3 *Spam complaints*).
COMPLAINT_WINDOWS: tuple[str, ...] = ("lifetime", "30d")
#: Alert kinds: a level change, a breach forecast, a dial outside the calling hours, a redial after an
#: abandoned call, a spam-complaint level change.
ALERT_KINDS: tuple[str, ...] = ("level", "forecast", "calling_hours", "abandon_redial", "complaint_level")
#: Every alert series, numbered 1, 2, ... each: the level alerts of the four windows, the forecast alerts
#: (``forecast-<window>``), then (added in issue #23, so older cursors keep their positions) the two
#: compliance guards and the complaint levels (``complaint-<window>``). Its order is the order of a stream
#: cursor's alert counters.
ALERT_SERIES: tuple[str, ...] = (WINDOWS + tuple(f"forecast-{w}" for w in FORECAST_WINDOWS)
                                 + ("calling_hours", "abandon_redial")
                                 + tuple(f"complaint-{w}" for w in COMPLAINT_WINDOWS))

# compliance guards (SPEC §3 *Compliance guards*): the kinds of violation an attempt's record lists
VIOLATION_KINDS = ("calling_hours", "abandon_redial")

# Email event types in their SPEC order (the email counts, the sealed message layout).
EMAIL_TYPES = ("email.sent", "email.delivered", "email.bounced", "email.opened",
               "email.clicked", "email.replied", "email.unsubscribed", "email.complained")
