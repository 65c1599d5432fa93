"""`ApiSettings`: everything one API process takes from its caller and the environment, read and checked once.

`ApiSettings.from_env` is the one reader of the environment in api/ (docs/operations.md, *Settings*). `callpulse
api` and `create_app` call it before the server starts, so a malformed setting is a ValueError naming it
(``CALLPULSE_INGEST_RATE='lots': not a rate limit ...``) that `callpulse api` prints as one line with exit status
2, never a traceback from the lifespan. The rest of api/ gets its values from the frozen record it returns
(``app.state.settings``, ``SettingsDep``): nothing is read from the environment later, so a setting changed
while the process runs takes effect at its next start. The defaults are the fields' below and nowhere else
(the webhook deliverer's are `DeliverySettings`', the replica acknowledgement's `AckSettings`').
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from api.rate_limit import parse_rate
from api.webhook_delivery import DeliverySettings
from engine.storage.keys import DEFAULT_PARTITIONS, PARTITIONS_SETTING, partitions_from
from flows.ingest_claims import AckSettings
from flows.redis_connect import CLUSTER_SETTING, DEFAULT_REDIS_URL, cluster_from

OFF = ("0", "false", "no", "off")


@dataclass(frozen=True)
class ApiSettings:
    redis_url: str = DEFAULT_REDIS_URL  # CALLPULSE_REDIS_URL
    redis_cluster: bool | None = None  # CALLPULSE_REDIS_CLUSTER 1 / 0; None: ask Redis (down: standalone)
    partitions: int = DEFAULT_PARTITIONS  # CALLPULSE_PARTITIONS: the ingest streams POST /v1/events appends to
    ack: AckSettings = AckSettings()  # CALLPULSE_ACK_REPLICAS, CALLPULSE_ACK_TIMEOUT_MS (flows/replica_ack.py)
    dev_mode: bool = False  # CALLPULSE_DEV: also accept the fixed demo key (api/auth.py DEV_KEY)
    heartbeat_s: float = 5.0  # SSE: a frame at least this often, even when nothing changed
    min_frame_interval_s: float = 0.25  # SSE: frames of one campaign coalesced to at most one per interval
    ping_s: float = 15.0  # SSE comment pings (keep proxies from closing an idle stream)
    max_replay: int = 1000  # SSE: alerts replayed on resume (Last-Event-ID)
    max_alert_queue: int = 1000  # per subscriber, in the live hub
    flow_lag_bound_ms: int = 30_000  # /readyz: not ready over this flow lag
    redis_max_connections: int = 64
    sse_stall_s: float = 10.0  # an SSE client whose send stalls this long is cut off (api/sockets.py)
    # CALLPULSE_SSE_MAX_CONNECTIONS: open SSE streams per process; past it 503 + Retry-After (api/sse_cap.py)
    sse_max_connections: int = 10_000
    cors_origins: tuple[str, ...] = ()  # CALLPULSE_CORS_ORIGINS (comma-separated); empty: CORS off
    ingest_rate: str | None = None  # CALLPULSE_INGEST_RATE: requests per key (api/rate_limit.py); None: off
    ingest_event_rate: str | None = None  # CALLPULSE_INGEST_EVENT_RATE: events per key; None: off
    webhooks: bool = True  # CALLPULSE_WEBHOOKS: run the webhook deliverer in this process
    delivery: DeliverySettings = DeliverySettings()  # CALLPULSE_WEBHOOK_*_S, _MAX_IN_FLIGHT (with webhooks on)
    webhook_allow: str = ""  # CALLPULSE_WEBHOOK_ALLOW: destinations allowed despite the policy (webhook_policy)
    metrics_max_campaigns: int = 0  # CALLPULSE_METRICS_MAX_CAMPAIGNS: per-campaign gauges (0: off)
    metrics_cache_s: float = 2.0  # CALLPULSE_METRICS_CACHE_S
    metrics_scan_keys: int = 100_000  # CALLPULSE_METRICS_SCAN_KEYS
    header_timeout_s: float = 10.0  # CALLPULSE_HEADER_TIMEOUT_S: slow request headers (api/sockets.py; 0: none)
    sndbuf: int = 64 * 1024  # CALLPULSE_SNDBUF: SO_SNDBUF of accepted sockets (the kernel doubles it; 0: leave)

    def __post_init__(self):
        check_redis_url(self.redis_url)
        if self.sse_max_connections < 1:
            raise ValueError(f"--sse-max-connections {self.sse_max_connections}: at least 1 SSE connection")
        parse_rate(self.ingest_rate, "CALLPULSE_INGEST_RATE")  # a ValueError naming the setting, at start
        parse_rate(self.ingest_event_rate, "CALLPULSE_INGEST_EVENT_RATE")

    @classmethod
    def from_env(cls, redis_url: str | None = None, *, env: Mapping[str, str] | None = None,
                 **overrides) -> ApiSettings:
        """The settings of one API process: ``redis_url`` and ``overrides`` (the command's flags, `create_app`'s
        keywords; None: not given), else the environment ``env`` (default: this process's), else the defaults.
        ValueError naming a malformed setting; TypeError for a keyword that is no setting."""
        env = os.environ if env is None else env
        given = {name: value for name, value in overrides.items() if value is not None}
        if redis_url is not None:
            given["redis_url"] = redis_url
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"not an API setting: {', '.join(unknown)}")
        if isinstance(given.get("cors_origins"), str):
            given["cors_origins"] = origins(given["cors_origins"])
        readers = _readers(cls())
        values = {name: read(env) for name, read in readers.items() if name not in given} | given
        if "delivery" not in values:  # read only where it is used: a process that delivers webhooks
            values["delivery"] = _delivery(env) if values["webhooks"] else DeliverySettings()
        return cls(**values)


def _readers(d: ApiSettings) -> dict[str, Callable[[Mapping[str, str]], object]]:
    """How each field that has a setting is read from an environment (``d``: the defaults)."""
    return {
        "redis_url": lambda env: env.get("CALLPULSE_REDIS_URL", "").strip() or d.redis_url,
        "redis_cluster": lambda env: cluster_from(env.get(CLUSTER_SETTING)),
        "partitions": lambda env: partitions_from(env.get(PARTITIONS_SETTING)),
        "ack": AckSettings.from_mapping,
        "dev_mode": lambda env: _flag(env, "CALLPULSE_DEV", d.dev_mode),
        "sse_max_connections": lambda env: _number(env, "CALLPULSE_SSE_MAX_CONNECTIONS", d.sse_max_connections,
                                                   kind=int, minimum=1, what="a whole number of SSE connections"),
        "cors_origins": lambda env: origins(env.get("CALLPULSE_CORS_ORIGINS", "")),
        "ingest_rate": lambda env: env.get("CALLPULSE_INGEST_RATE"),
        "ingest_event_rate": lambda env: env.get("CALLPULSE_INGEST_EVENT_RATE"),
        "webhooks": lambda env: _flag(env, "CALLPULSE_WEBHOOKS", d.webhooks),
        "webhook_allow": lambda env: env.get("CALLPULSE_WEBHOOK_ALLOW", ""),
        "metrics_max_campaigns": lambda env: _number(env, "CALLPULSE_METRICS_MAX_CAMPAIGNS", d.metrics_max_campaigns,
                                                     kind=int, minimum=0, what="a whole number of campaigns"),
        "metrics_cache_s": lambda env: _seconds(env, "CALLPULSE_METRICS_CACHE_S", d.metrics_cache_s),
        "metrics_scan_keys": lambda env: _number(env, "CALLPULSE_METRICS_SCAN_KEYS", d.metrics_scan_keys,
                                                 kind=int, minimum=1, what="a whole number of keys"),
        "header_timeout_s": lambda env: _seconds(env, "CALLPULSE_HEADER_TIMEOUT_S", d.header_timeout_s),
        "sndbuf": lambda env: _number(env, "CALLPULSE_SNDBUF", d.sndbuf, kind=int, minimum=0,
                                      what="a number of bytes"),
    }


def _delivery(env: Mapping[str, str]) -> DeliverySettings:
    d = DeliverySettings()
    return DeliverySettings(
        backoff_base_s=_seconds(env, "CALLPULSE_WEBHOOK_BACKOFF_BASE_S", d.backoff_base_s),
        backoff_cap_s=_seconds(env, "CALLPULSE_WEBHOOK_BACKOFF_CAP_S", d.backoff_cap_s),
        give_up_s=_seconds(env, "CALLPULSE_WEBHOOK_GIVE_UP_S", d.give_up_s),
        timeout_s=_seconds(env, "CALLPULSE_WEBHOOK_TIMEOUT_S", d.timeout_s),
        poll_s=_seconds(env, "CALLPULSE_WEBHOOK_POLL_S", d.poll_s),
        claim_idle_s=_seconds(env, "CALLPULSE_WEBHOOK_CLAIM_IDLE_S", d.claim_idle_s),
        max_in_flight=_number(env, "CALLPULSE_WEBHOOK_MAX_IN_FLIGHT", d.max_in_flight, kind=int, minimum=1,
                              what="a whole number of deliveries"))


def origins(text: str) -> tuple[str, ...]:
    """The origins of a comma-separated list (``CALLPULSE_CORS_ORIGINS``)."""
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    return default if not raw else raw not in OFF


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, minimum=0, what="a number of seconds")


def _number(env: Mapping[str, str], name: str, default, *, kind: type = float, minimum: float | None = None,
            what: str = "a number"):
    """The number ``name`` holds (``default`` when unset or blank); ValueError naming the setting otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not {what} (default {default})") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={raw!r}: not {what} (default {default})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={raw!r}: at least {minimum} (default {default})")
    return value


def check_redis_url(url: str) -> None:
    """ValueError for a URL redis-py cannot use (``CALLPULSE_REDIS_URL``): said at start, not on first use."""
    from redis.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"Redis URL {url!r} (CALLPULSE_REDIS_URL): {exc}") from None
