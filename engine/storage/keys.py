"""Redis key layout shared by every writer and reader.

Every key that belongs to one campaign carries the hash tag
``{org_id:campaign_id}`` so that all of a campaign's keys land in one Redis
Cluster slot. Ingest streams carry their partition number as the hash tag so
partitions spread over the cluster.

**Injective.** Ids may contain ``:`` (SPEC §1 charset), so every id is escaped
with `key_part` before it goes into a key: ``%`` and every character outside
``[A-Za-z0-9_.-]`` become ``%XX`` (UTF-8 bytes, upper-case hex). An escaped id
never contains ``:``, ``{`` or ``}``, so the ``:`` between the parts is a true
separator and distinct (org, campaign, …) tuples never share a key (without
it, org ``t1`` campaign ``a:b`` and org ``t1:a`` campaign ``b`` shared every
key: a cross-tenant read and write). Ids without ``:`` escape to themselves,
so their keys are the same as before the escaping (docs/streams.md, *Key
layout versions*).

Also the alert id (`AlertId`: its format and its parse) and the ingest partition count, parsed from a
setting the caller reads (the engine reads no environment; see `partitions_from`).
"""

from __future__ import annotations

import re
import zlib

from engine.vocab import ALERT_SERIES

PREFIX = "callpulse"
DEFAULT_PARTITIONS = 8
LAYOUT_VERSION = 2  # 2: ids escaped with key_part (1: raw ids, ambiguous when an id holds ':')
LAYOUT_KEY = f"{PREFIX}:layout"  # string: the LAYOUT_VERSION the data in this Redis was written with

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _escape_char(m: re.Match) -> str:
    return "".join(f"%{b:02X}" for b in m.group(0).encode())


def key_part(value: str) -> str:
    """An id as it appears in a key: injective, and free of ``:``, ``{``, ``}``, ``%``-ambiguity.

    ``%`` is outside the safe set, so it is escaped too: the encoding is reversible, hence injective."""
    return _UNSAFE.sub(_escape_char, value)


PARTITIONS_SETTING = "CALLPULSE_PARTITIONS"  # the environment variable the process's settings object reads


def partitions_from(setting: str | None) -> int:
    """Number of ingest stream partitions from the deployment's setting (None or blank: default 8); the
    settings objects (api/settings.py, flows/config.py, callpulse/settings.py) read it and pass the count on.

    Writers and the flow must agree on it; changing it on a live system
    re-routes campaigns, so treat it as fixed per deployment.
    """
    setting = (setting or "").strip()
    if not setting:
        return DEFAULT_PARTITIONS
    try:
        count = int(setting)
    except ValueError:
        raise ValueError(f"{PARTITIONS_SETTING}={setting!r}: not a whole number of partitions") from None
    if count < 1:
        raise ValueError(f"{PARTITIONS_SETTING}={setting!r}: at least 1 partition")
    return count


def partition_for(org_id: str, campaign_id: str, partitions: int) -> int:
    """Stable partition of a campaign: CRC-32 of its `route_key` (``org_id \\x1f campaign_id``).

    Stable across processes and Python versions (unlike ``hash()``), so one
    campaign's events always land in one stream and stay in order there.
    """
    return zlib.crc32(route_key(org_id, campaign_id).encode()) % partitions


def ingest_stream(partition: int) -> str:
    """Redis Stream that holds partition ``partition`` of the raw events."""
    return f"{PREFIX}:ingest:{{{partition}}}"


INGEST_FIELD = b"e"  # stream entry field holding the raw JSON event bytes
ROUTE_FIELD = b"k"  # stream entry field holding `route_key(org, campaign)`: the flow routes without decoding
# A duplicate marker: an ingest entry with `k` and this field = b"1" and no `e`. The ingest path drops a repeated
# event_id before it reaches a stream and appends this instead, so the flow counts it (diagnostics.duplicates).
DUPLICATE_FIELD = b"d"
# Beside `d`, the ingest path writes the repeat itself (its normalised JSON), so that the flow can tell a repeat
# of an event it found late (not "seen": judged again, late again) from a repeat of an applied one (a duplicate).
REPEAT_FIELD = b"r"


def route_key(org_id: str, campaign_id: str) -> str:
    """The flow's key of a campaign: ``org \x1f campaign`` (no id holds \x1f, so it is injective)."""
    return f"{org_id}\x1f{campaign_id}"


def split_route_key(route: str) -> tuple[str, str] | None:
    """``(org_id, campaign_id)`` of a `route_key`; None for a string that is none (no \x1f: a routing field
    a raw writer made up, or the flow's `UNROUTABLE`)."""
    org_id, sep, campaign_id = route.partition("\x1f")
    return (org_id, campaign_id) if sep else None


DEAD_LETTER_STREAM = f"{PREFIX}:deadletter"


def seen_key(org_id: str, event_id: str) -> str:
    """Ingest-side claim of an event_id for an hour (flows/ingest_claims.py): ids are unique per org."""
    return f"{PREFIX}:seen:{{{key_part(org_id)}}}:{key_part(event_id)}"


def stored_key(partition: int, minute: int) -> str:
    """Hash ``org \x1f event_id`` -> 1: the events appended to partition ``partition`` under claims made
    in wall-clock minute ``minute`` (flows/ingest_claims.py). Same hash tag as `ingest_stream`, so one
    Lua script appends an event and records it atomically, on a Redis Cluster too."""
    return f"{PREFIX}:stored:{{{partition}}}:{minute}"


# ---------------------------------------------------------------- flow output
# Everything the flow writes for one campaign shares the hash tag {org_id:campaign_id}.

def campaign_tag(org_id: str, campaign_id: str) -> str:
    """``{org:campaign}`` with both ids escaped: one cluster slot per campaign, never shared."""
    return f"{{{key_part(org_id)}:{key_part(campaign_id)}}}"


def org_tag(org_id: str) -> str:
    return f"{{{key_part(org_id)}}}"


def stats_key(org_id: str, campaign_id: str) -> str:
    """String: the latest `/stats` body (JSON), overwritten on every frame (idempotent on replay)."""
    return f"{PREFIX}:stats:{campaign_tag(org_id, campaign_id)}"


def watermark_key(org_id: str, campaign_id: str) -> str:
    """String: the campaign's event-time watermark (ms, decimal), the one the flow's lateness gate judges
    by (the largest applied event ts), written with every frame, in the same pipeline as `stats_key`.
    Unlike the body's ``as_of`` it never follows the wall clock; the ingest late notice reads it
    (api/late_notice.py). Never deleted: a retired campaign keeps it."""
    return f"{PREFIX}:watermark:{campaign_tag(org_id, campaign_id)}"


def history_key(org_id: str, campaign_id: str) -> str:
    """Sorted set of the campaign's minute points (`engine.views.history`), scored by epoch minute, one member per
    minute (the point of its last frame: the sink replaces it), trimmed to the newest `HISTORY_MINUTES`."""
    return f"{PREFIX}:history:{campaign_tag(org_id, campaign_id)}"


def followups_key(org_id: str, campaign_id: str) -> str:
    """String: the follow-ups view (`engine.state.followups.followups_view`, JSON), written with a frame when its
    schedule or the watermark's minute changed since the view the step sent last."""
    return f"{PREFIX}:followups:{campaign_tag(org_id, campaign_id)}"


def frames_stream(org_id: str, campaign_id: str) -> str:
    """Stream of live frames, capped; entry id ``<seq>-0`` so the SSE id is the frame seq."""
    return f"{PREFIX}:frames:{campaign_tag(org_id, campaign_id)}"


def alerts_stream(org_id: str, campaign_id: str) -> str:
    """Stream of the campaign's alert records (field ``a``: JSON, with its stable alert_id)."""
    return f"{PREFIX}:alerts:{campaign_tag(org_id, campaign_id)}"


def org_alerts_stream(org_id: str) -> str:
    """Stream of every alert record of an org (for `GET /v1/alerts`)."""
    return f"{PREFIX}:org-alerts:{org_tag(org_id)}"


def org_campaigns_key(org_id: str) -> str:
    """Set of the org's campaign ids (for `GET /v1/campaigns`)."""
    return f"{PREFIX}:campaigns:{org_tag(org_id)}"


LIVE_CHANNEL = f"{PREFIX}:live"  # pub/sub: one channel, every frame/alert; the API fans out in-process


# On a Redis Cluster the flow publishes with sharded pub/sub (SPUBLISH) instead, on channels that live in the
# slot of what they carry, so a message reaches one shard and only the API processes that subscribed there.

def live_campaign_channel(org_id: str, campaign_id: str) -> str:
    """Sharded channel (cluster only): the campaign's frames and alerts; the campaign's slot."""
    return f"{PREFIX}:live:{campaign_tag(org_id, campaign_id)}"


def live_org_channel(org_id: str) -> str:
    """Sharded channel (cluster only): every frame and alert of the org's campaigns, for the org-wide feeds
    (`/v1/live`, `/v1/alerts`); the org's slot (alerts are published after their org stream entry)."""
    return f"{PREFIX}:live-org:{org_tag(org_id)}"
FRAME_FIELD = b"f"
ALERT_FIELD = b"a"


class AlertId:
    """The alert id's one format and its parse: ``org:campaign:series:n``, the n-th alert (from 1) of the
    campaign's alert series (`engine.vocab.ALERT_SERIES`), both ids escaped like keys (so the id is
    unique across tenants and its last two parts split off at ``:``)."""

    SERIES_INDEX = {s: i for i, s in enumerate(ALERT_SERIES)}

    @staticmethod
    def format(org_id: str, campaign_id: str, series: str, n: int) -> str:
        return f"{key_part(org_id)}:{key_part(campaign_id)}:{series}:{n}"

    @classmethod
    def position(cls, alert_id: str) -> tuple[int, int] | None:
        """(series index, n) of an alert id; None if it has another shape (a stream cursor's counters)."""
        parts = alert_id.rsplit(":", 2)
        if len(parts) != 3 or parts[1] not in cls.SERIES_INDEX or not parts[2].isdigit():
            return None
        return cls.SERIES_INDEX[parts[1]], int(parts[2])


alert_id = AlertId.format
alert_position = AlertId.position


# ---------------------------------------------------------------- flow bookkeeping

def alert_ids_key(org_id: str, campaign_id: str) -> str:
    """Set of alert_ids already appended to the campaign's alert stream (the sink's de-dup on replay)."""
    return f"{PREFIX}:alert-ids:{campaign_tag(org_id, campaign_id)}"


def org_alert_ids_key(org_id: str) -> str:
    """Set of alert_ids already appended to the org's alert stream (same slot as `org_alerts_stream`)."""
    return f"{PREFIX}:org-alert-ids:{org_tag(org_id)}"


def dead_letter_ids_key() -> str:
    """Sorted set of source refs already dead-lettered (scored by wall ms, capped); same cluster slot
    as `DEAD_LETTER_STREAM` (a key without braces hashes its whole name)."""
    return f"{{{DEAD_LETTER_STREAM}}}:ids"


def flow_status_key() -> str:
    """Hash the flow keeps current for `/readyz`: ``tick_ms`` (last source poll, wall ms),
    ``write_ms`` (last sink write), ``p<N>`` (last stream id read from partition N),
    ``p<N>_ms`` (when), ``mode``, ``workers``, ``started_ms``."""
    return f"{PREFIX}:flow:status"


# ------------------------------------------------------------- detail (API)

def contact_details_key(org_id: str, campaign_id: str) -> str:
    """Hash contact_id -> contact record JSON (engine.views.detail.contact_record)."""
    return f"{PREFIX}:contacts:{campaign_tag(org_id, campaign_id)}"


def contact_index_key(org_id: str, campaign_id: str, status: str | None = None) -> str:
    """Sorted set of contact ids (all scores 0: ordered by id) — all contacts, or those now in ``status``.
    The sink moves a changed contact by ZREM from every other status index (no read, replay-safe)."""
    suffix = f":{key_part(status)}" if status else ""
    return f"{PREFIX}:contact-index:{campaign_tag(org_id, campaign_id)}{suffix}"


def archive_key(org_id: str, campaign_id: str) -> str:
    """String: the pickled compact state of a retired campaign (flows/retirement.py)."""
    return f"{PREFIX}:archive:{campaign_tag(org_id, campaign_id)}"


def contact_profiles_key(org_id: str, campaign_id: str) -> str:
    """Hash contact_id -> profile JSON (engine.views.detail.profile_record: batch, phone, email, variables,
    added_at), written when the contact's winning contact.added is applied; not kept in the flow's memory."""
    return f"{PREFIX}:contact-profiles:{campaign_tag(org_id, campaign_id)}"


def contact_attempts_key(org_id: str, campaign_id: str) -> str:
    """Sorted set (scores 0) of ``trail_member(contact, attempt)``: each contact's dialed attempts,
    read with ZRANGEBYLEX on the contact's prefix (replay-safe ZADD/ZREM, no list in memory)."""
    return f"{PREFIX}:contact-attempts:{campaign_tag(org_id, campaign_id)}"


def trail_member(contact_id: str, attempt_id: str) -> str:
    """``<contact>:<attempt>``, both escaped: the contact's members share the prefix ``<contact>:``."""
    return f"{key_part(contact_id)}:{key_part(attempt_id)}"


def attempt_details_key(org_id: str, campaign_id: str) -> str:
    """Hash attempt_id -> attempt record JSON (engine.views.detail.attempt_record)."""
    return f"{PREFIX}:attempts:{campaign_tag(org_id, campaign_id)}"


def attempt_index_key(org_id: str, campaign_id: str) -> str:
    """Sorted set of attempt ids scored by dial time (ms; attempts never dialed score 0)."""
    return f"{PREFIX}:attempt-index:{campaign_tag(org_id, campaign_id)}"


def transcript_key(org_id: str, campaign_id: str, attempt_id: str) -> str:
    """Hash event_id -> transcript line JSON {ts, role, content} (idempotent on replay); sort by ts to read."""
    return f"{PREFIX}:transcript:{campaign_tag(org_id, campaign_id)}:{key_part(attempt_id)}"


def batch_details_key(org_id: str, campaign_id: str) -> str:
    """Hash batch_id -> batch record JSON (engine.views.detail.batch_record: status, contacts by status, retries)."""
    return f"{PREFIX}:batches:{campaign_tag(org_id, campaign_id)}"


def daily_key(org_id: str, campaign_id: str) -> str:
    """Hash UTC quarter-hour number (ts // 900000) -> JSON list of the daily counters
    (engine.state.grid.DAILY_FIELDS order); `engine.views.daily.rows_from_quarters` turns them into local days."""
    return f"{PREFIX}:daily:{campaign_tag(org_id, campaign_id)}"


def replies_key(org_id: str, campaign_id: str) -> str:
    """Hash message_id -> reply record JSON (engine.views.detail.reply_record)."""
    return f"{PREFIX}:replies:{campaign_tag(org_id, campaign_id)}"


def replies_index_key(org_id: str, campaign_id: str) -> str:
    """Sorted set of message ids with a reply, scored by reply time (ms)."""
    return f"{PREFIX}:reply-index:{campaign_tag(org_id, campaign_id)}"


def message_details_key(org_id: str, campaign_id: str) -> str:
    """Hash message_id -> email message record JSON (engine.views.message_detail.message_record)."""
    return f"{PREFIX}:messages:{campaign_tag(org_id, campaign_id)}"


def message_index_key(org_id: str, campaign_id: str, status: str | None = None) -> str:
    """Sorted set of message ids scored by sent time (ms; 0 before its `email.sent`) — all, or those whose
    record's status is ``status`` now (engine.views.message_detail.MESSAGE_STATUSES). The sink moves a changed
    message by ZREM from every other status index (no read, replay-safe), like the attempt outcome classes."""
    suffix = f":{key_part(status)}" if status else ""
    return f"{PREFIX}:message-index:{campaign_tag(org_id, campaign_id)}{suffix}"


# ------------------------------------------------------------- drill-down indexes and activity (issue #14)

def attempt_outcome_index_key(org_id: str, campaign_id: str, outcome: str) -> str:
    """Sorted set of attempt ids scored by dial time, one per outcome class (`engine.views.activity`'s
    OUTCOME_FILTERS: the six outcomes and ``active`` = dialed, not ended). The sink moves a changed
    attempt by ZREM from every other class (no read, replay-safe), like the contact status indexes."""
    return f"{PREFIX}:attempt-outcomes:{campaign_tag(org_id, campaign_id)}:{key_part(outcome)}"


def attempt_violation_index_key(org_id: str, campaign_id: str, kind: str) -> str:
    """Sorted set of attempt ids scored by dial time, one per compliance guard (`engine.vocab`'s
    VIOLATION_KINDS): the attempts whose record lists that violation now. Kept by the sink like the
    outcome classes (ZREM from the others, ZADD to its own: no read, replay-safe)."""
    return f"{PREFIX}:attempt-violations:{campaign_tag(org_id, campaign_id)}:{key_part(kind)}"


def callback_index_key(org_id: str, campaign_id: str, state: str) -> str:
    """Sorted set (scores 0) of contact ids whose callbacks are in ``state`` (requested, pending,
    completed, cancelled: `engine.views.activity.callback_states`); kept by the sink from the contact records."""
    return f"{PREFIX}:contact-callbacks:{campaign_tag(org_id, campaign_id)}:{key_part(state)}"


def activity_key(org_id: str, campaign_id: str) -> str:
    """Hash event_id -> the applied campaign.created / campaign.status / batch.status event (compact
    JSON, `engine.views.activity.activity_source`): the history the activity log is derived from at read time."""
    return f"{PREFIX}:activity:{campaign_tag(org_id, campaign_id)}"


def plan_key(org_id: str) -> str:
    """Hash of the org's plan (`callpulse orgs set-plan`): name, email_limit, price_usd, updated_ms."""
    return f"{PREFIX}:plan:{org_tag(org_id)}"
