"""`FlowConfig`: every knob of the dataflow, shared by its steps, sources and sink (docs/flow.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.alerts import DEFAULT_MIN_SAMPLE
from engine.gate import DEFAULT_LATENESS_MS


@dataclass(frozen=True)
class FlowConfig:
    redis_url: str = field(default_factory=lambda: os.environ.get("CALLPULSE_REDIS_URL",
                                                                  "redis://localhost:6379/0"))
    replay: bool = False  # watermark moves only with events; no future check
    partitions: int | None = None  # ingest partitions (default CALLPULSE_PARTITIONS or 8)
    files: tuple = ()  # read these NDJSON files instead of the ingest streams
    until_drained: bool = False  # end the input once every stream has been read to its end
    recovery: bool = True  # False: snapshot() returns None (Bytewax asks for snapshots every epoch anyway)
    recovery_dir: str | None = None  # frozen state chunks are written here once (flows/chunk_store.py)
    lateness_ms: int = DEFAULT_LATENESS_MS
    seal_chunk_rows: int = 65_536  # sealed attempts frozen (and written to recovery once) this many at a time
    retire_after_ms: int = 3_600_000  # a finished campaign this long without an event leaves the flow (0: never)
    min_sample: int = DEFAULT_MIN_SAMPLE
    frame_interval_ms: int = 250  # at most 4 frames/s per campaign
    heartbeat_ms: int = 5000  # at least one frame every 5 s (0: no heartbeat frames)
    quiet_ms: int = 1000  # live mode: advance the watermark to the wall clock after this much quiet
    read_count: int = 1000  # XREAD COUNT / lines per batch
    idle_ms: int = 50  # source back-off when a stream has nothing new
    retain_ms: int = 3_600_000  # ingest entries kept behind the read position (trimmed only with recovery on)
    frames_maxlen: int = 1000
    alerts_maxlen: int = 10_000
    dead_letter_maxlen: int = 100_000
