"""The sink's writes of detail records (a `DetailBatch`, engine.views.detail_batch) into Redis (docs/flow.md).

Every write is an overwrite (``HSET`` by id) or a set operation (``ZADD``/``ZREM`` of an index), so a
batch written again after a recovery rewinds leaves the same keys. An index of classes (contacts by
status, attempts by outcome and by violation, messages by status, contacts by callback state) is kept
right without remembering anyone's former class: each changed member joins the index of its classes and
leaves every other one (`file_by_class`).

`write_details` appends one campaign's commands to the sink's pipeline, kind by kind, in a fixed order;
`merge_attempt_patches` writes the records of unsealed attempts (engine.storage.sealed) last, laid over the
attempt's latest record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from engine.storage.keys import (
    activity_key,
    attempt_details_key,
    attempt_index_key,
    attempt_outcome_index_key,
    attempt_violation_index_key,
    batch_details_key,
    callback_index_key,
    contact_attempts_key,
    contact_details_key,
    contact_index_key,
    contact_profiles_key,
    daily_key,
    message_details_key,
    message_index_key,
    replies_index_key,
    replies_key,
    trail_member,
    transcript_key,
)
from engine.views.activity import CALLBACK_FILTERS, OUTCOME_FILTERS, callback_states, outcome_class
from engine.views.detail_batch import DetailBatch, Record
from engine.views.message_detail import MESSAGE_STATUSES
from engine.vocab import CONTACT_STATUSES, VIOLATION_KINDS

Commands = list[tuple]  # the sink's pipeline: one tuple of bytes a command
Member = tuple[bytes, bytes, set]  # (id, score, its classes) for `file_by_class`


def write_details(org: str, camp: str, d: DetailBatch, cmds: Commands) -> None:
    """One campaign's detail records: HSET by id, ZADD to the indexes (all idempotent). Attempt patches
    get their index entries here and their records in `merge_attempt_patches`."""
    _write_profiles(org, camp, d.profiles, cmds)
    _write_trail(org, camp, d.trail, cmds)
    _write_by_id(batch_details_key(org, camp), "batch_id", d.batches, cmds)
    if d.daily:
        cmds.append((b"HSET", daily_key(org, camp).encode(),
                     *[x for q, cell in d.daily.items() for x in (b"%d" % q, orjson.dumps(cell))]))
    _write_replies(org, camp, d.replies, cmds)
    _write_messages(org, camp, d.messages, cmds)
    _write_contacts(org, camp, d.contacts, cmds)
    _write_attempts(org, camp, d.attempts, d.attempt_patches, cmds)
    if d.activity:  # keyed by event_id: a replayed event overwrites itself
        cmds.append((b"HSET", activity_key(org, camp).encode(),
                     *[x for ev in d.activity for x in (ev["event_id"].encode(), orjson.dumps(ev))]))
    _write_transcripts(org, camp, d.transcripts, cmds)


def _write_by_id(key: str, id_field: str, records: list[Record], cmds: Commands) -> None:
    """``HSET key <id> <record JSON> ...``, one command for every record (none when there are none)."""
    if records:
        cmds.append((b"HSET", key.encode(), *[x for r in records for x in (r[id_field].encode(), orjson.dumps(r))]))


def _write_profiles(org: str, camp: str, profiles: list[Record], cmds: Commands) -> None:
    _write_by_id(contact_profiles_key(org, camp), "contact_id", profiles, cmds)


def _write_trail(org: str, camp: str, trail: list[tuple[str, str, int]], cmds: Commands) -> None:
    """In order: an attempt that moved between contacts leaves one trail and joins the other."""
    key = contact_attempts_key(org, camp).encode()
    for contact_id, attempt_id, d in trail:
        member = trail_member(contact_id, attempt_id).encode()
        cmds.append((b"ZADD", key, b"0", member) if d > 0 else (b"ZREM", key, member))


def _write_replies(org: str, camp: str, replies: list[Record], cmds: Commands) -> None:
    if not replies:
        return
    _write_by_id(replies_key(org, camp), "message_id", replies, cmds)
    cmds.append((b"ZADD", replies_index_key(org, camp).encode(),
                 *[x for r in replies for x in (b"%d" % r["replied_ms"], r["message_id"].encode())]))


def _write_messages(org: str, camp: str, messages: list[Record], cmds: Commands) -> None:
    """Email messages: by id, by sent time, and by status now (like attempt outcomes)."""
    if not messages:
        return
    msgs = [(m["message_id"].encode(), b"%d" % m.get("sent_ms", 0), m) for m in messages]
    cmds.append((b"HSET", message_details_key(org, camp).encode(),
                 *[x for mid, _s, m in msgs for x in (mid, orjson.dumps(m))]))
    cmds.append((b"ZADD", message_index_key(org, camp).encode(), *[x for mid, s, _m in msgs for x in (s, mid)]))
    file_by_class(cmds, [(mid, s, {m["status"]}) for mid, s, m in msgs],
                  {st: message_index_key(org, camp, st).encode() for st in MESSAGE_STATUSES})


def _write_contacts(org: str, camp: str, contacts: list[Record], cmds: Commands) -> None:
    """Contacts by id, in the index of all, by status and by callback state."""
    if not contacts:
        return
    fields: list[bytes] = []
    by_status: dict[str, list[bytes]] = {}
    for c in contacts:
        cid = c["contact_id"].encode()
        fields += [cid, orjson.dumps(c)]
        by_status.setdefault(c["status"], []).append(cid)
    cmds.append((b"HSET", contact_details_key(org, camp).encode(), *fields))
    everyone = [cid for ids in by_status.values() for cid in ids]
    cmds.append((b"ZADD", contact_index_key(org, camp).encode(), *[x for i in everyone for x in (b"0", i)]))
    _file_by_status(org, camp, by_status, cmds)
    file_by_class(cmds, [(c["contact_id"].encode(), b"0", callback_states(c.get("callbacks"))) for c in contacts],
                  {st: callback_index_key(org, camp, st).encode() for st in CALLBACK_FILTERS})


def _file_by_status(org: str, camp: str, by_status: dict[str, list[bytes]], cmds: Commands) -> None:
    """Each changed contact leaves every other status index and joins its own. This needs no memory of
    the previous status, so it stays right when a recovery replays writes."""
    for status in CONTACT_STATUSES:
        key = contact_index_key(org, camp, status).encode()
        ids = by_status.get(status)
        others = [i for st, ids_ in by_status.items() if st != status for i in ids_]
        if others:
            cmds.append((b"ZREM", key, *others))
        if ids:
            cmds.append((b"ZADD", key, *[x for i in ids for x in (b"0", i)]))


def _started(a: Record) -> bytes:
    """An attempt's score in its indexes: its dial time (ms; 0 when never dialed)."""
    return b"%d" % (a["started_ms"] or 0)


def _write_attempts(org: str, camp: str, attempts: list[Record], patches: list[Record], cmds: Commands) -> None:
    """Full attempt records by id and by dial time; the patches' index entries (their records:
    `merge_attempt_patches`); every changed attempt in the indexes of its outcome and its violations."""
    if attempts:
        fields, scored = [], []
        for a in attempts:
            aid = a["attempt_id"].encode()
            fields += [aid, orjson.dumps(a)]
            scored += [_started(a), aid]
        cmds.append((b"HSET", attempt_details_key(org, camp).encode(), *fields))
        cmds.append((b"ZADD", attempt_index_key(org, camp).encode(), *scored))
    for a in patches:
        cmds.append((b"ZADD", attempt_index_key(org, camp).encode(), _started(a), a["attempt_id"].encode()))
    changed = attempts + patches  # a patch carries the outcome fields too
    if not changed:
        return
    file_by_class(cmds, [(a["attempt_id"].encode(), _started(a), {outcome_class(a)}) for a in changed],
                  {o: attempt_outcome_index_key(org, camp, o).encode() for o in OUTCOME_FILTERS})
    # the guards: the latest record of each attempt decides (a re-decided sealed attempt's patch follows its
    # earlier record in this list)
    last = {a["attempt_id"]: a for a in changed if "violations" in a}
    if last:
        file_by_class(cmds, [(aid.encode(), _started(a), set(a["violations"])) for aid, a in last.items()],
                      {k: attempt_violation_index_key(org, camp, k).encode() for k in VIOLATION_KINDS})


def _write_transcripts(org: str, camp: str, lines: list[Record], cmds: Commands) -> None:
    """New transcript lines, one hash per attempt keyed by event_id (a replayed line overwrites itself)."""
    by_attempt: dict[str, list] = {}
    for line in lines:
        by_attempt.setdefault(line["attempt_id"], []).extend(
            (line["event_id"].encode(),
             orjson.dumps({"ts": line["ts"], "role": line["role"], "content": line["content"]})))
    for aid, fields in by_attempt.items():
        cmds.append((b"HSET", transcript_key(org, camp, aid).encode(), *fields))


def merge_attempt_patches(sent: Iterable[tuple[str, str, DetailBatch]], execute: Callable[[Commands], list],
                          cmds: Commands) -> None:
    """Records of unsealed attempts (engine.storage.sealed) lack the detail-only fields: lay each patch over
    the attempt's latest record — one written earlier in these batches, else the stored one (read with
    ``execute`` in one round trip; rare) — and write it after every other detail (idempotent).
    ``sent``: ``(org, campaign, DetailBatch)`` in the order the sink writes them."""
    batches = list(sent)
    if not any(d.attempt_patches for _o, _c, d in batches):
        return
    latest: dict[tuple, Record] = {}
    patches = []
    for org, camp, d in batches:
        for rec in d.attempts:  # a partial attempt never writes a full record after a patch
            latest[(org, camp, rec["attempt_id"])] = rec
        patches += [(org, camp, rec) for rec in d.attempt_patches]
    missing = sorted({(o, c, r["attempt_id"]) for o, c, r in patches} - set(latest))
    reads = [(b"HGET", attempt_details_key(o, c).encode(), a.encode()) for o, c, a in missing]
    for k, raw in zip(missing, execute(reads) if reads else []):
        latest[k] = orjson.loads(raw) if isinstance(raw, bytes) else {}
    for org, camp, rec in patches:
        k = (org, camp, rec["attempt_id"])
        merged = latest[k] = {**latest[k], **rec}
        cmds.append((b"HSET", attempt_details_key(org, camp).encode(), rec["attempt_id"].encode(),
                     orjson.dumps(merged)))


def file_by_class(cmds: Commands, members: list[Member], keys: dict[str, bytes]) -> None:
    """Put each member (id, score, its classes) into the index of each of its classes and take it out
    of every other one: no memory of its former classes is needed, so a replayed write stays right."""
    for cls, key in keys.items():
        adds = [x for m, score, classes in members if cls in classes for x in (score, m)]
        rems = [m for m, _score, classes in members if cls not in classes]
        if rems:
            cmds.append((b"ZREM", key, *rems))
        if adds:
            cmds.append((b"ZADD", key, *adds))
