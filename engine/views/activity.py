"""A campaign's activity log and the drill-down filters of its call table (issue #14, docs/api.md).

**Activity.** The flow stores every *applied* `campaign.created`, `campaign.status` and
`batch.status` event once, keyed by its event_id (`activity_source`; `engine.storage.keys.activity_key`).
The API sorts that history by (`ts`, `event_id`) and folds it here (`event_entries`) into entries,
merged with the campaign's abandon alerts (`alert_entry`). Because every read folds the whole stored
history, the log is what the events give delivered once each in order (SPEC §1 *Order*): a late or
re-sent event lands where its (`ts`, `event_id`) puts it, and a repeat of a status already in force
(the latest counts, SPEC §1 *Duplicates*) is no change, hence no entry. Alert entries are the alert
records as the engine raised them (alert history may depend on arrival order, SPEC §1).

**Filters.** `callback_states` and `outcome_class` say which filter indexes a contact or an attempt
record belongs in; the sink keeps the indexes, the API reads them.
"""

from __future__ import annotations

from engine.state.config import DEFAULTS as CONFIG_DEFAULTS
from engine.timefmt import format_time, parse_time
from engine.validation.validate import EVENT_FIELDS
from engine.vocab import OUTCOMES

ACTIVITY_TYPES = frozenset({"campaign.created", "campaign.status", "batch.status"})
ACTIVITY_KINDS = ("created", "config", "status", "paused", "resumed", "batch_status", "alert")

OUTCOME_FILTERS = OUTCOMES + ("active",)
CALLBACK_FILTERS = ("requested", "pending", "completed", "cancelled")


# ------------------------------------------------------------------ filters

def outcome_class(att: dict) -> str | None:
    """The outcome filter an attempt record answers to: its outcome once ended, ``active`` while
    dialed and not ended, None for an attempt never dialed and not ended (only seen by other facts)."""
    if att.get("ended_at") is not None:
        return att.get("outcome")
    return "active" if att.get("started_at") is not None else None


def callback_summary(contrib: tuple | None) -> dict:
    """``{requested, pending, completed, cancelled}`` of one contact from its folded callbacks
    (`engine.state.entities.fold_callbacks`: a close without an open callback is ignored)."""
    requested, completed, cancelled = contrib[:3] if contrib else (0, 0, 0)
    return {"requested": requested, "pending": requested - completed - cancelled,
            "completed": completed, "cancelled": cancelled}


def callback_states(summary: dict | None) -> set[str]:
    """The callback filters a contact answers to: each state whose count is above zero."""
    return {s for s in CALLBACK_FILTERS if summary and summary.get(s, 0) > 0}


# ------------------------------------------------------------------ activity

def activity_source(ev: dict) -> dict:
    """What the activity log keeps of an applied event: its own fields, without org and campaign."""
    return {k: ev[k] for k in EVENT_FIELDS[ev["type"]] if k in ev and k not in ("org_id", "campaign_id")}


def _entry(at_ms: int, kind: str, summary: str, **fields) -> dict:
    out = {"at": format_time(at_ms), "kind": kind, "summary": summary, "event_id": None, "alert_id": None,
           "batch_id": None, "from": None, "to": None, "changes": None, "alert": None}
    out.update(fields)
    return out


def _shown(field: str, value):
    """A config value as the /stats body shows it (a time window with its zone filled in)."""
    if field == "time_window" and isinstance(value, dict):
        return {"start": value.get("start"), "end": value.get("end"), "tz": value.get("tz") or "UTC"}
    return value


def event_entries(sources: list[dict]) -> list[tuple[tuple, dict]]:
    """``(sort key, entry)`` of the stored events, oldest first; the key is (`ts`, 0, `event_id`)."""
    out = []
    status = "draft"
    batch_status: dict[str, str] = {}
    config = {f: _shown(f, v) for f, v in CONFIG_DEFAULTS.items()}
    created = False
    for ev in sorted(sources, key=lambda e: (e["ts"], e["event_id"])):
        key, t, eid = (ev["ts"], 0, ev["event_id"]), ev["type"], ev["event_id"]
        if t == "campaign.status":
            new = ev["status"]
            if new == status:
                continue
            kind = "paused" if new == "paused" else "resumed" if status == "paused" and new == "active" else "status"
            text = {"paused": "campaign paused", "resumed": "campaign resumed"}.get(
                kind, f"campaign status {status} \u2192 {new}")
            out.append((key, _entry(ev["ts"], kind, text, event_id=eid, **{"from": status, "to": new})))
            status = new
        elif t == "batch.status":
            bid, new = ev["batch_id"], ev["status"]
            old = batch_status.get(bid, "pending")
            if new == old:
                continue
            batch_status[bid] = new
            out.append((key, _entry(ev["ts"], "batch_status", f"batch {bid} {old} \u2192 {new}", event_id=eid,
                                    batch_id=bid, **{"from": old, "to": new})))
        elif t == "campaign.created":
            changes = []
            for f in CONFIG_DEFAULTS:
                new = _shown(f, ev[f]) if f in ev else config[f]  # a field it does not carry keeps its value
                if new != config[f]:
                    changes.append({"field": f, "from": config[f], "to": new})
                    config[f] = new
            if not created:
                created = True
                out.append((key, _entry(ev["ts"], "created", "campaign created", event_id=eid, changes=changes)))
            elif changes:
                names = ", ".join(c["field"] for c in changes)
                out.append((key, _entry(ev["ts"], "config", f"config changed: {names}", event_id=eid,
                                        changes=changes)))
    return out


def alert_entry(rec: dict, position: int) -> tuple[tuple, dict]:
    """``(sort key, entry)`` of an alert record; the key is (`at`, 1, stream position)."""
    try:
        at_ms = parse_time(rec.get("at"), "at")
    except Exception:
        at_ms = 0
    window, kind = rec.get("window"), rec.get("kind")
    extra = {}
    if kind == "forecast":
        text = f"abandon forecast ({window}): breach in {rec.get('breach_in_s')} s"
    elif kind == "calling_hours":
        text = (f"dial outside calling hours: attempt {rec.get('attempt_id')} of {rec.get('contact_id')} "
                f"at {rec.get('local_time')} {rec.get('tz')}")
    elif kind == "abandon_redial":
        text = f"redial after an abandoned call: attempt {rec.get('attempt_id')} of {rec.get('contact_id')}"
    elif kind == "complaint_level":
        text = f"spam complaint level ({window}) {rec.get('from')} \u2192 {rec.get('to')}"
        extra = {"from": rec.get("from"), "to": rec.get("to")}
    else:
        text = f"abandon level ({window}) {rec.get('from')} \u2192 {rec.get('to')}"
        extra = {"from": rec.get("from"), "to": rec.get("to")}
    return (at_ms, 1, position), _entry(at_ms, "alert", text, alert_id=rec.get("alert_id"), alert=rec, **extra)


def activity_log(sources: list[dict], alerts: list[dict]) -> list[dict]:
    """Every entry, newest first. ``alerts``: the campaign's alert records in stream order."""
    rows = event_entries(sources) + [alert_entry(rec, i) for i, rec in enumerate(alerts)]
    rows.sort(key=lambda x: x[0], reverse=True)
    return [e for _k, e in rows]
