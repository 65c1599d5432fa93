"""Acknowledge an ingest only once a replica holds it (docs/operations.md, *Redis Cluster*: the RPO).

Redis replicates asynchronously: a master that dies right after a write can take it with it, and its
replica, promoted in its place, never had it. ``WAIT n timeout`` blocks until ``n`` replicas have
received everything the connection it runs on wrote. The ingest path writes through pipelines on pooled
connections, so each master it wrote to is asked on a connection of its own: a small write there
(``SET callpulse:ack:{tag}``, the tag of a key just written, so it lands on that master) followed by
``WAIT``. The master's replication stream is one sequence, so that write's offset covers every write the
master applied before it, whichever connection made them.

Settings (`AckSettings`, from the environment as the process's settings object reads it and hands it
over: api/settings.py, callpulse/settings.py): ``CALLPULSE_ACK_REPLICAS`` (default 1 on a Redis Cluster, 0 on a
standalone Redis: how many replicas must confirm; never more than the master has connected right now, so a shard
that lost its replica keeps taking writes, at a weaker RPO, and says so in the log) and
``CALLPULSE_ACK_TIMEOUT_MS`` (default 2000). Too few confirmations in time raise `ReplicasBehind`: the
API answers 503 with Retry-After and the sender's retry is exact (flows/ingest_claims.py).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from engine.storage.keys import PREFIX

NODE_INFO_TTL_S = 1.0  # how long a master's count of connected replicas is trusted
_TAG = re.compile(rb"\{([^}]*)\}")


class ReplicasBehind(redis.ConnectionError):
    """Fewer replicas than required confirmed a write in time (a ConnectionError: retry, as for a blip)."""


@dataclass(frozen=True)
class AckSettings:
    replicas: int | None = None  # CALLPULSE_ACK_REPLICAS; None: 1 on a Redis Cluster, 0 on a standalone Redis
    timeout_ms: int = 2000  # CALLPULSE_ACK_TIMEOUT_MS

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> AckSettings:
        """The settings an environment (a mapping the caller reads) holds; ValueError naming a malformed one."""
        replicas = _whole(env, "CALLPULSE_ACK_REPLICAS")
        timeout = _whole(env, "CALLPULSE_ACK_TIMEOUT_MS")
        return cls(replicas=None if replicas is None else max(0, replicas),
                   timeout_ms=cls.timeout_ms if timeout is None else max(1, timeout))

    def required(self, client) -> int:
        if self.replicas is not None:
            return self.replicas
        return 1 if isinstance(client, redis.RedisCluster) else 0


def _whole(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not a whole number") from None


class ReplicaAck:
    """Confirms writes on the masters that hold ``keys``; one per client (it caches replica counts)."""

    def __init__(self, client, settings: AckSettings = AckSettings()):
        self.client = client
        self.settings = settings
        self.need = settings.required(client)
        self.timeout_ms = settings.timeout_ms
        self._connected: dict[tuple, tuple[float, int]] = {}  # node -> (when asked, connected replicas)
        self._warned: set = set()

    def confirm(self, keys: list[bytes]) -> None:
        if self.need <= 0 or not keys:
            return
        for node, (conn, key) in self._masters(keys).items():
            want = min(self.need, self._replicas(node, conn))
            if want <= 0:
                self._warn(node, "has no connected replica: writes are acknowledged unreplicated")
                continue
            tag = _TAG.search(key)
            marker = f"{PREFIX}:ack:{{".encode() + (tag.group(1) if tag else key) + b"}"
            pipe = conn.pipeline(transaction=False)
            pipe.set(marker, b"1", px=60_000)
            pipe.execute_command("WAIT", want, self.timeout_ms)
            got = pipe.execute()[-1]
            if int(got) < want:
                raise ReplicasBehind(f"only {got} of {want} replica(s) of {node} confirmed the write within "
                                     f"{self.timeout_ms} ms (CALLPULSE_ACK_REPLICAS, CALLPULSE_ACK_TIMEOUT_MS)")

    def _masters(self, keys: list[bytes]) -> dict:
        """{node: (a client on that node, one of the keys it holds)}"""
        if isinstance(self.client, redis.RedisCluster):
            out = {}
            for key in keys:
                node = self.client.get_node_from_key(key)
                if node.name not in out:
                    out[node.name] = (self.client.get_redis_connection(node), key)
            return out
        return {"redis": (self.client, keys[0])}

    def _replicas(self, node, conn) -> int:
        now = time.monotonic()
        cached = self._connected.get(node)
        if cached is None or now - cached[0] > NODE_INFO_TTL_S:
            count = int(conn.info("replication").get("connected_slaves", 0))
            cached = self._connected[node] = (now, count)
        return cached[1]

    def _warn(self, node, what: str) -> None:
        if node not in self._warned:
            self._warned.add(node)
            print(f"callpulse: Redis master {node} {what} (RPO weaker until a replica is back)",
                  file=sys.stderr, flush=True)


_ACKS: dict[int, ReplicaAck] = {}


def replica_ack(client, settings: AckSettings = AckSettings()) -> ReplicaAck:
    """The `ReplicaAck` of a client (made once per client object and settings)."""
    ack = _ACKS.get(id(client))
    if ack is None or ack.client is not client or ack.settings != settings:
        ack = _ACKS[id(client)] = ReplicaAck(client, settings)
    return ack
