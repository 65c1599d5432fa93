"""Append events to the partitioned Redis ingest streams (see docs/streams.md).

`StreamAppender`: raw append, pipelined (`callpulse simulate --redis`):
whatever it is given — valid, duplicate or malformed — goes to the stream,
and the flow sorts it out. The ingest path (`callpulse ingest`,
`POST /v1/events`) appends exactly once through `flows.ingest_claims`, with
the pipelining helpers below.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

from engine.storage.keys import (
    DEFAULT_PARTITIONS,
    INGEST_FIELD,
    ROUTE_FIELD,
    ingest_stream,
    partition_for,
    route_key,
)

DEFAULT_CHUNK = 1000


def campaign_of(event) -> tuple[str, str] | None:
    """(org_id, campaign_id) of an event that names them as strings, else None (malformed)."""
    if isinstance(event, dict):
        org, campaign = event.get("org_id"), event.get("campaign_id")
        if type(org) is str and type(campaign) is str:
            return org, campaign
    return None


def partition_of(event, partitions: int) -> int:
    """Partition of an event; one that cannot name its campaign (malformed) goes to 0."""
    camp = campaign_of(event)
    return partition_for(*camp, partitions) if camp is not None else 0


def route_of(event) -> bytes | None:
    """The routing key written beside the event (`engine.storage.keys.ROUTE_FIELD`), when it names its campaign."""
    camp = campaign_of(event)
    return route_key(*camp).encode() if camp is not None else None


def encode(event) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8", "surrogatepass")
    return orjson.dumps(event)


class StreamAppender:
    """Buffered XADD of events to their partition streams; flushes every `chunk` events."""

    def __init__(self, client, *, partitions: int = DEFAULT_PARTITIONS, chunk: int = DEFAULT_CHUNK,
                 maxlen: int | None = None, patience=None):
        self.client = client
        # flows.patience.Patience: retry a flush while Redis is unreachable (else the error is raised).
        # A retried chunk that Redis had partly applied is appended twice: the flow counts the
        # repeats as event_id duplicates (diagnostics.duplicates), it never applies them twice.
        self.patience = patience
        self.partitions = partitions
        self.streams = [ingest_stream(p).encode() for p in range(self.partitions)]
        self.chunk = max(1, chunk)
        self.maxlen = maxlen  # None: never trim here (with recovery on, the flow trims what it has read: --retain-ms)
        self.appended = [0] * self.partitions
        self._pending: list[tuple] = []
        self._parts: list[int] = []

    def add(self, event) -> None:
        p = partition_of(event, self.partitions)
        self._parts.append(p)
        self._pending.append(xadd_args(self.streams[p], encode(event), self.maxlen, route_of(event)))
        if len(self._pending) >= self.chunk:
            self.flush()

    def add_many(self, events: Iterable) -> None:
        for event in events:
            self.add(event)

    def flush(self) -> None:
        if not self._pending:
            return
        if self.patience is not None:
            replies = self.patience.call(execute, self.client, self._pending)
        else:
            replies = execute(self.client, self._pending)
        raise_first_error(replies)
        for p in self._parts:
            self.appended[p] += 1
        self._pending.clear()
        self._parts.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.flush()


def xadd_args(stream: bytes, payload: bytes, maxlen: int | None, route: bytes | None = None) -> tuple:
    head = (b"XADD", stream, b"MAXLEN", b"~", str(maxlen).encode(), b"*") if maxlen else (b"XADD", stream, b"*")
    return (*head, INGEST_FIELD, payload, *((ROUTE_FIELD, route) if route is not None else ()))


# -- pipelining ----------------------------------------------------------------------
# redis-py spends ~15 us per pipelined command building and parsing it in
# Python; packing RESP with hiredis (C) and reading replies with redis-py's
# hiredis parser is several times faster. Clients without a plain connection
# pool (Redis Cluster) take the ordinary pipeline.


def pack_in_python(args: tuple) -> bytes:
    """One command in RESP, in Python: the packer when hiredis refuses the arguments (and the reference
    the tests hold hiredis's packing to)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


try:  # redis[hiredis] is a dependency; the Python packer is for an install without it
    from hiredis import pack_command as _pack_in_c
except ImportError:  # pragma: no cover
    _pack_in_c = pack_in_python  # type: ignore[assignment]  # the same job, typed more loosely


def pack(args: tuple) -> bytes:
    """One command in RESP. hiredis takes bytes, str, int and float (and memoryview), not bytearray."""
    try:
        return _pack_in_c(args)
    except TypeError:
        return pack_in_python(args)


def execute(client, commands: list[tuple]) -> list:
    """Send `commands` (tuples of bytes) in one round trip; replies in order (errors as values)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "get_connection"):
        pipe = client.pipeline(transaction=False)  # a cluster's pipeline: grouped by node, one round trip each
        for name, *args in commands:
            name = name.decode() if isinstance(name, bytes) else name
            # redis-py's reply callbacks run here: SET ... GET must say so, or its old value becomes a bool
            options = {"get": True} if name.upper() == "SET" and (b"GET" in args or "GET" in args) else {}
            pipe.execute_command(name, *args, **options)
        return pipe.execute(raise_on_error=False)
    try:
        conn = pool.get_connection()
    except TypeError:  # redis-py < 5.3 wants a command name
        conn = pool.get_connection("XADD")
    try:
        conn.send_packed_command([b"".join(map(pack, commands))])
        replies = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        conn.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        pool.release(conn)


def raise_first_error(replies: list) -> None:
    for r in replies:
        if isinstance(r, Exception):
            raise r
