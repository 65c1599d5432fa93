"""Reads of many keys that may sit in different Redis Cluster slots (each campaign has a slot of its own)."""

from __future__ import annotations


async def mget(r, keys: list) -> list:
    """MGET on a standalone Redis; on a cluster, redis-py's ``mget_nonatomic`` (one MGET per slot, in
    parallel, answers in key order): the keys of several campaigns never share a slot."""
    many = getattr(r, "mget_nonatomic", None)
    return await (many(keys) if many is not None else r.mget(keys))
