"""`FlowConfig`: every knob of the dataflow, shared by its steps, sources and sink (docs/flow.md).

One per flow process, built by `callpulse flow` from its flags and the environment (`FlowConfig.from_env`). This
is the one module of flows/ that reads the environment (docs/operations.md, *Settings*): the sources, the
campaign step, the sink and the liveness beat get their values from the `FlowConfig` they are handed. The fields
that have a setting take it from the environment unless given (so does a bare `FlowConfig()`: a test, or
``bytewax.run "flows.dataflow:build()"``); the others have their defaults here, and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.compliance.levels import DEFAULT_MIN_SAMPLE
from engine.state.gate import DEFAULT_LATENESS_MS
from engine.storage.keys import PARTITIONS_SETTING, partitions_from
from flows.patience import PatienceSettings
from flows.redis_connect import CLUSTER_SETTING, DEFAULT_REDIS_URL, cluster_from

REDIS_URL_SETTING = "CALLPULSE_REDIS_URL"
# the Redis dataset the flow adopted at start (flows/dataset.py): `callpulse flow` hands it to its sinks in the
# FlowConfig, and to the processes it starts (--processes) in their environment
DATASET_SETTING = "CALLPULSE_DATASET_ID"


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None  # unset or blank: the default


@dataclass(frozen=True)
class FlowConfig:
    redis_url: str = field(default_factory=lambda: _env(REDIS_URL_SETTING) or DEFAULT_REDIS_URL)
    redis_cluster: bool | None = field(default_factory=lambda: cluster_from(_env(CLUSTER_SETTING)))  # None: ask
    dataset: str | None = field(default_factory=lambda: _env(DATASET_SETTING))  # None: adopt what Redis holds
    patience: PatienceSettings = field(default_factory=lambda: PatienceSettings.from_mapping(os.environ))
    replay: bool = False  # watermark moves only with events; no future check
    partitions: int = field(default_factory=lambda: partitions_from(_env(PARTITIONS_SETTING)))  # ingest partitions
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

    @classmethod
    def from_env(cls, **flags) -> FlowConfig:
        """The flow's settings: the command's ``flags`` (None: not given), else the environment, else the
        defaults above. ValueError naming a malformed setting (e.g. ``CALLPULSE_PARTITIONS``)."""
        return cls(**{name: value for name, value in flags.items() if value is not None})
