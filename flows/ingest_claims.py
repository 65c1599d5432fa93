"""The ingest path's exactly-once append (`callpulse ingest`, `POST /v1/events`; docs/streams.md, *Claims*).

An event_id is unique per org for an hour (SPEC §1), so ingest claims each id in the org's slot
(`engine.storage.keys.seen_key`) before it appends the event to its campaign's partition stream. The two keys
live in different slots, so no one command or script can do both, on a Redis Cluster least of all.
A writer can die (or lose its connection) between the claim and the append; the sender then retries,
and that retry must store the event once, not be answered "duplicate" for an event never stored.
So a claim is final only once its append is confirmed:

1. **claim** (org slots, one pipeline): ``SET seen <pending> NX GET EX 3600``. The pending value is
   ``p<minute>:<digest>``: the wall-clock minute of the claim and a digest of the normalised event.
   The reply says what was there: nothing (we claimed it), ``1`` (a final claim: a duplicate), our own
   pending value (an earlier try of this very event that was never confirmed: we take it over), or
   another pending value (another event under this id, still in flight: a duplicate).
2. **append** (one Lua script per partition, one slot): for each claimed or taken-over event,
   ``HSETNX stored:{p}:<minute> org\\x1fevent_id`` and, only if that was new, ``XADD`` the event;
   duplicates get their marker (docs/streams.md). The record and the append are one atomic step, so a
   taken-over event that the dead writer did append is not appended twice. Redis refuses a script
   that may write as a whole when it is out of memory, so a partition is all appended or not at all.
3. **replicas** (flows/replica_ack.py): on a Redis Cluster, ``WAIT`` until a replica of every master
   written to holds the writes, so a master's death right after cannot take an acknowledged event;
4. **finalize** (org slots, one pipeline): ``SET seen 1 XX EX 3600``; then the caller answers.

A crash or a Redis error anywhere before 4 leaves pending claims that the sender's retry takes over:
what was appended is not appended again, what was not is appended now, and neither is counted as a
duplicate. What is not covered (docs/operations.md): a retry whose event differs from the first try
(another digest) is a duplicate of it; two copies of one event sent at the same moment, both before
either is confirmed, are both answered accepted and stored once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import orjson
import redis

from engine.storage.keys import DEFAULT_PARTITIONS, ingest_stream, partition_for, route_key, seen_key, stored_key
from flows.ingest_writer import execute, raise_first_error
from flows.replica_ack import AckSettings, replica_ack

SEEN_TTL_S = 3600  # SPEC: a repeat within (at least) the last hour is a duplicate
STORED_TTL_S = SEEN_TTL_S + 120  # a minute's bucket outlives every claim made in that minute
FINAL = b"1"  # a confirmed claim (also what releases before the pending claims wrote)

# Fresh (claimed now), taken over (an unconfirmed earlier try of the same event), duplicate.
FRESH, TAKEN_OVER, DUPLICATE = "fresh", "taken_over", "duplicate"

APPEND_SCRIPT = b"""#!lua
-- One partition's share of an ingest call, atomically. KEYS[1]: the partition's ingest stream;
-- KEYS[2..]: its stored-id buckets (same hash tag). ARGV[1]: MAXLEN ('' for none), ARGV[2]: bucket TTL;
-- then groups of five: kind ('e' event, 'd' duplicate marker), bucket index in KEYS, field, payload, route.
local stream, maxlen = KEYS[1], ARGV[1]
local function xadd(...)
  if maxlen ~= '' then return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', ...) end
  return redis.call('XADD', stream, '*', ...)
end
local out, n = {}, 0
for i = 3, #ARGV, 5 do
  if ARGV[i] == 'e' then
    n = n + 1
    if redis.call('HSETNX', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], '1') == 1 then
      xadd('e', ARGV[i + 3], 'k', ARGV[i + 4])
      out[n] = 1
    else
      out[n] = 0
    end
  else
    xadd('k', ARGV[i + 4], 'd', '1', 'r', ARGV[i + 3])
  end
end
for k = 2, #KEYS do redis.call('EXPIRE', KEYS[k], ARGV[2], 'NX') end
return out
"""
APPEND_SHA = hashlib.sha1(APPEND_SCRIPT).hexdigest().encode()


def pending_value(minute: int, payload: bytes) -> bytes:
    """A pending claim: the minute it was made (where its append is recorded) and the event's digest."""
    return b"p%d:%s" % (minute, hashlib.blake2b(payload, digest_size=8).hexdigest().encode())


def verdict(reply, mine: bytes) -> str:
    """What the claim's reply (the value that was there before) makes of the event."""
    if reply is None:
        return FRESH
    if reply[:1] == b"p" and reply.split(b":", 1)[1:] == mine.split(b":", 1)[1:]:
        return TAKEN_OVER
    return DUPLICATE


def accept_events(client, events: Sequence[dict], *, partitions: int = DEFAULT_PARTITIONS,
                  maxlen: int | None = None, ack: AckSettings = AckSettings()) -> list[bool]:
    """Append the not-yet-seen validated `events` exactly once; per event True (accepted) or False (duplicate).

    Raises a redis error when Redis refused or could not be reached: the caller answers "retry", and
    the retry of the same events stores each exactly once (module docstring). A repeat inside one call
    is a duplicate of its first copy.
    """
    if not events:
        return []
    n = partitions
    minute = int(time.time()) // 60
    payloads = [orjson.dumps(ev) for ev in events]
    keys = [seen_key(ev["org_id"], ev["event_id"]).encode() for ev in events]
    mine = [pending_value(minute, orjson.dumps(ev, option=orjson.OPT_SORT_KEYS)) for ev in events]
    verdicts = _claim(client, keys, mine)
    streams = _append(client, events, payloads, verdicts, mine, n, maxlen)
    replica_ack(client, ack).confirm(streams + keys)  # a replica holds it all before it is confirmed and answered
    accepted = [k for k, v in zip(keys, verdicts) if v != DUPLICATE]
    if accepted:
        ttl = str(SEEN_TTL_S).encode()
        raise_first_error(execute(client, [(b"SET", k, FINAL, b"XX", b"EX", ttl) for k in accepted]))
    return [v != DUPLICATE for v in verdicts]


def _claim(client, keys: list[bytes], mine: list[bytes]) -> list[str]:
    ttl = str(SEEN_TTL_S).encode()
    first: dict[bytes, int] = {}
    cmds, where = [], []
    for i, k in enumerate(keys):
        if k not in first:  # a repeat inside the call is settled below, without a command
            first[k] = i
            where.append(i)
            cmds.append((b"SET", k, mine[i], b"NX", b"GET", b"EX", ttl))
    replies = execute(client, cmds)
    if any(isinstance(r, Exception) for r in replies):
        ours = [keys[i] for i, r in zip(where, replies) if r is None]
        if ours:  # nothing appended yet: free what this call claimed (best effort; a retry takes it over anyway)
            try:
                client.delete(*ours)
            except redis.RedisError:
                pass
        raise_first_error(replies)
    verdicts = [DUPLICATE] * len(keys)
    for i, r in zip(where, replies):
        verdicts[i] = verdict(r, mine[i])
    return verdicts


def _append(client, events, payloads, verdicts, mine, n: int, maxlen: int | None) -> list[bytes]:
    """One script per partition that the call touches, all in one round trip; the streams written."""
    by_part: dict[int, list] = {}
    buckets: dict[int, dict[bytes, int]] = {}
    for ev, payload, v, claim in zip(events, payloads, verdicts, mine):
        org, camp = ev["org_id"], ev["campaign_id"]
        p = partition_for(org, camp, n)
        route = route_key(org, camp).encode()
        items = by_part.setdefault(p, [])
        if v == DUPLICATE:
            items += [b"d", b"0", b"", payload, route]  # the repeat rides along (engine.state.gate.check_repeat)
            continue
        minute = int(claim[1:claim.index(b":")])
        index = buckets.setdefault(p, {})
        bucket = stored_key(p, minute).encode()
        if bucket not in index:
            index[bucket] = len(index) + 2  # KEYS[1] is the stream
        items += [b"e", str(index[bucket]).encode(), f"{org}\x1f{ev['event_id']}".encode(), payload, route]
    cmds = []
    for p, items in by_part.items():
        bucket_keys = list(buckets.get(p, {}))
        cmds.append((b"EVALSHA", APPEND_SHA, str(1 + len(bucket_keys)).encode(), ingest_stream(p).encode(),
                     *bucket_keys, str(maxlen).encode() if maxlen else b"", str(STORED_TTL_S).encode(), *items))
    replies = execute(client, cmds)
    missing = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:  # first use on this Redis (or after SCRIPT FLUSH / a restart): load it, run those again
        client.script_load(APPEND_SCRIPT)
        for i, r in zip(missing, execute(client, [cmds[i] for i in missing])):
            replies[i] = r
    raise_first_error(replies)
    return [cmd[3] for cmd in cmds]

