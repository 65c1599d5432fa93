"""Redis key layout shared by every writer and reader.

Every key that belongs to one campaign carries the hash tag
``{org_id:campaign_id}`` so that all of a campaign's keys land in one Redis
Cluster slot. Ingest streams carry their partition number as the hash tag so
partitions spread over the cluster.
"""

from __future__ import annotations

import os
import zlib

PREFIX = "callpulse"
DEFAULT_PARTITIONS = 8


def partition_count() -> int:
    """Number of ingest stream partitions (``CALLPULSE_PARTITIONS``, default 8).

    Writers and the flow must agree on it; changing it on a live system
    re-routes campaigns, so treat it as fixed per deployment.
    """
    return int(os.environ.get("CALLPULSE_PARTITIONS", DEFAULT_PARTITIONS))


def partition_for(org_id: str, campaign_id: str, partitions: int) -> int:
    """Stable partition of a campaign: CRC-32 of ``org_id \\x1f campaign_id``.

    Stable across processes and Python versions (unlike ``hash()``), so one
    campaign's events always land in one stream and stay in order there.
    """
    key = f"{org_id}\x1f{campaign_id}".encode()
    return zlib.crc32(key) % partitions


def ingest_stream(partition: int) -> str:
    """Redis Stream that holds partition ``partition`` of the raw events."""
    return f"{PREFIX}:ingest:{{{partition}}}"


INGEST_FIELD = b"e"  # stream entry field holding the raw JSON event bytes
DEAD_LETTER_STREAM = f"{PREFIX}:deadletter"
