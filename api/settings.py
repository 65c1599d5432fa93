"""What `create_app` was given: one frozen record on ``app.state.settings`` that routes read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiSettings:
    redis_url: str
    dev_mode: bool = False  # also accept the fixed demo key (api/auth.py DEV_KEY)
    heartbeat_s: float = 5.0  # SSE: a frame at least this often, even when nothing changed
    min_frame_interval_s: float = 0.25  # SSE: frames of one campaign coalesced to at most one per interval
    ping_s: float = 15.0  # SSE comment pings (keep proxies from closing an idle stream)
    max_replay: int = 1000  # SSE: alerts replayed on resume (Last-Event-ID)
    max_alert_queue: int = 1000  # per subscriber, in the live hub
    flow_lag_bound_ms: int = 30_000  # /readyz: not ready over this flow lag
    redis_max_connections: int = 64
    sse_stall_s: float = 10.0  # an SSE client whose send stalls this long is cut off (api/sockets.py)
    sse_max_connections: int = 10_000  # open SSE streams per process; past it 503 + Retry-After (api/sse_cap.py)
