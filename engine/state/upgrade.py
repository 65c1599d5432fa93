"""Read campaign states pickled by earlier layouts into the current one.

`upgrade`: release 1 (one Python object per contact) into the columnar layout.
`adopt_value_objects`: the aggregates kept as loose attributes (before issue #13) into the
value objects of engine.state.measures.

Recovery snapshots written before the contact table (engine.storage.contact_table)
hold a `CampaignState.__dict__` with a ``contacts`` dict of `Contact` objects
and passes with per-contact Counters. `upgrade` rebuilds the table, the
passes and the batch numbering from them, and queues every profile and trail
entry for the detail sink, so the upgraded flow writes the new detail keys
(contact profiles, attempt trails) for every contact it already had.
"""

from __future__ import annotations

from array import array

from engine.state.measures import CallbackTotals, Latest, Mean
from engine.storage.contact_table import STATUS_CODE, ContactTable
from engine.storage.sealed import SealedAttempts
from engine.timefmt import format_time


def upgrade(d: dict) -> dict:
    """The attribute dict of a new-layout `CampaignState` from a release-1 one."""
    old_contacts = d.pop("contacts")
    batches = d["batches"]
    d["batch_ids"] = list(batches)
    d["batch_no"] = {b: i for i, b in enumerate(d["batch_ids"])}
    table = ContactTable()
    profiles, trail = {}, []
    for cid, c in old_contacts.items():
        row = table.add(cid)
        table.status[row] = STATUS_CODE[c.status]
        table.retry[row] = c.retry_number or 0
        table.dialed[row] = c.dialed
        table.batch[row] = d["batch_no"][c.batch] if c.batch is not None else -1
        if c.status_key is not None:
            table.status_ts[row], table.status_eid[row] = c.status_key
        if c.added_key is not None:
            table.added_ts[row], table.added_eid[row] = c.added_key
            profiles[cid] = {"contact_id": cid, "batch_id": c.batch, "phone_number": c.phone_number,
                             "email": c.email, "variables": c.variables, "added_at": format_time(c.added_key[0])}
        table.meeting[row] = 1 if c.meeting_key is not None else 0
        if c.callback_events:
            table.set_callbacks(row, list(c.callback_events))
        trail += [(cid, aid, 1) for aid in c.attempt_ids]
    for p in d["passes"].values():
        dials, connects = p.dials, p.connects  # release 1: Counters by contact id (entities.Pass.__setstate__)
        p.dials, p.connects = array("i"), array("i")
        p.attempted = p.connected = 0
        for cid, n in dials.items():
            for _ in range(n):
                p.add_dial(table.row_of(cid), 1)
        for cid, n in connects.items():
            for _ in range(n):
                p.add_connect(table.row_of(cid), 1)
    d["table"] = table
    d["sealed"] = SealedAttempts()
    d.setdefault("lateness_ms", None)  # the flow sets its bound when it resumes the campaign
    d.setdefault("max_event_ts", None)
    d.setdefault("sealed_below", None)
    d["sealed_records"] = []
    d["seal_queue"] = sorted((a.latest_fact_ts(), aid) for aid, a in d["attempts"].items() if a.end is not None)
    d["profiles"] = profiles if d.get("collect_details") else {}
    d["trail_changes"] = trail if d.get("collect_details") else []
    return d


def adopt_value_objects(d: dict) -> dict:
    """The attribute dict of a `CampaignState` pickled with loose aggregates: ``ring_sum``/``ring_n``,
    ``aht_sum``/``aht_n``, ``last_*`` with ``last_*_stale``, ``callbacks`` as a list of six."""
    d["ring"] = Mean(d.pop("ring_sum"), d.pop("ring_n"))
    d["aht"] = Mean(d.pop("aht_sum"), d.pop("aht_n"))
    for name in ("last_dial", "last_send", "last_end"):
        d[name] = Latest(d[name], d.pop(f"{name}_stale"))
    d["callbacks"] = CallbackTotals(*d["callbacks"])
    return d
