"""Webhook endpoints of an org: registration, listing, removal (sync; the CLI and the API share it).

Redis keys (the API's own, like api/auth.py's; the flow never reads them):

- ``callpulse:webhook:<id>`` — hash: ``org``, ``url``, ``secret`` (``whsec_…``: kept as is, it signs
  every delivery), ``kinds`` (comma-separated alert kinds, empty = every kind), ``created_ms``
  (Redis server time: alerts appended to the org stream before it are not sent to it).
- ``callpulse:webhooks:{org}`` — set of the org's endpoint ids.
- ``callpulse:webhook-orgs`` — set of orgs with at least one endpoint (the deliverer's work list).
- Delivery state per org, all in the org's cluster slot with its alert stream: the consumer group
  ``GROUP`` on ``org_alerts_stream(org)``; ``callpulse:webhook-jobs:{org}`` (hash job id -> job
  JSON) and ``callpulse:webhook-due:{org}`` (sorted set job id -> due ms): the durable retry
  schedule; ``callpulse:webhook-log:{org}:<id>`` (stream, capped): the endpoint's delivery log.
  See api/webhook_delivery.py.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC

import orjson
import redis

from api.auth import valid_org
from api.webhook_policy import check_url
from engine.storage.keys import PREFIX, key_part, org_alerts_stream, org_tag
from engine.vocab import ALERT_KINDS

GROUP = "callpulse-webhooks"
KINDS = ALERT_KINDS  # level, forecast, calling_hours, abandon_redial, complaint_level (engine.vocab)
ORGS_KEY = f"{PREFIX}:webhook-orgs"
ID_PATTERN = r"^wh_[0-9a-f]{16}$"
# Standard Webhooks: whsec_ + base64 of 24..64 random bytes
SECRET_PATTERN = r"^whsec_(?:[A-Za-z0-9+/]{4}){8,21}$"
SECRET_BYTES = 32


def endpoint_key(webhook_id: str) -> str:
    return f"{PREFIX}:webhook:{webhook_id}"


def org_endpoints_key(org: str) -> str:
    return f"{PREFIX}:webhooks:{org_tag(org)}"


def jobs_key(org: str) -> str:
    return f"{PREFIX}:webhook-jobs:{org_tag(org)}"


def due_key(org: str) -> str:
    return f"{PREFIX}:webhook-due:{org_tag(org)}"


def log_key(org: str, webhook_id: str) -> str:
    return f"{PREFIX}:webhook-log:{org_tag(org)}:{key_part(webhook_id)}"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def parse_kinds(text: str | list | None) -> list[str]:
    """Alert kinds an endpoint wants: [] means every kind (today and future ones)."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    kinds = sorted({k.strip() for k in items if k.strip()}, key=lambda k: KINDS.index(k) if k in KINDS else 99)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown alert kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    return kinds


def _decode(rec: dict) -> dict:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in rec.items()}


def _public(webhook_id: str, rec: dict) -> dict:
    return {"id": webhook_id, "org_id": rec["org"], "url": rec["url"],
            "kinds": rec["kinds"].split(",") if rec.get("kinds") else [],
            "created_ms": int(rec["created_ms"])}


def create_endpoint(client, *, org: str, url: str, secret: str | None = None,
                    kinds: list[str] | None = None, allow: str = "") -> dict:
    """Register an endpoint; returns its public record plus ``secret`` (shown once).

    ValueError for an invalid org, URL (api.webhook_policy; ``allow``: ``CALLPULSE_WEBHOOK_ALLOW`` as the
    settings read it), secret or kind."""
    import re

    if not valid_org(org):
        raise ValueError(f"invalid org id {org!r}")
    url = check_url(url, allow)  # a literal address in canonical form (api/webhook_policy.py)
    if secret is None:
        secret = new_secret()
    elif not re.fullmatch(SECRET_PATTERN, secret):
        raise ValueError("secret must be whsec_ followed by the base64 of 24 to 63 bytes")
    kinds = parse_kinds(kinds)
    webhook_id = "wh_" + secrets.token_hex(8)
    sec, usec = client.time()
    rec = {"org": org, "url": url, "secret": secret, "kinds": ",".join(kinds),
           "created_ms": sec * 1000 + usec // 1000}
    from flows.dataset import ensure

    ensure(client)  # endpoints are part of the dataset, like API keys
    try:  # deliver what the org's stream gets from now on (an existing group keeps its place)
        client.xgroup_create(org_alerts_stream(org), GROUP, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    pipe = client.pipeline(transaction=False)
    pipe.hset(endpoint_key(webhook_id), mapping=rec)
    pipe.sadd(org_endpoints_key(org), webhook_id)
    pipe.sadd(ORGS_KEY, org)
    pipe.execute()
    return {**_public(webhook_id, _decode(rec)), "secret": secret}


def get_endpoint(client, webhook_id: str, *, org: str | None = None, with_secret: bool = False) -> dict | None:
    """The endpoint (of ``org`` when given: another org's endpoint is None, like a missing one)."""
    rec = _decode(client.hgetall(endpoint_key(webhook_id)))
    if not rec or (org is not None and rec.get("org") != org):
        return None
    out = _public(webhook_id, rec)
    if with_secret:
        out["secret"] = rec["secret"]
    return out


def list_endpoints(client, org: str) -> list[dict]:
    ids = sorted(x.decode() if isinstance(x, bytes) else x for x in client.smembers(org_endpoints_key(org)))
    out = []
    for wid in ids:
        e = get_endpoint(client, wid, org=org)
        if e is not None:
            out.append(e)
    return sorted(out, key=lambda e: (e["created_ms"], e["id"]))


def remove_endpoint(client, webhook_id: str, *, org: str | None = None) -> bool:
    """Delete an endpoint and its delivery log; its scheduled deliveries are dropped when next due."""
    e = get_endpoint(client, webhook_id, org=org)
    if e is None:
        return False
    org = e["org_id"]
    pipe = client.pipeline(transaction=False)
    pipe.delete(endpoint_key(webhook_id))  # two keys, two slots on a Redis Cluster: one DEL each
    pipe.delete(log_key(org, webhook_id))
    pipe.srem(org_endpoints_key(org), webhook_id)
    pipe.execute()
    if not client.scard(org_endpoints_key(org)):
        client.srem(ORGS_KEY, org)
    return True


def delivery_log(client, org: str, webhook_id: str, *, limit: int = 100, alert_id: str | None = None) -> list[dict]:
    """The endpoint's logged attempts, newest first (optionally of one alert)."""
    out, last = [], "+"
    while len(out) < limit:
        entries = client.xrevrange(log_key(org, webhook_id), last, "-", count=500)
        for _sid, fields in entries:
            rec = orjson.loads(fields[b"e"])
            if alert_id is None or rec["alert_id"] == alert_id:
                out.append(rec)
                if len(out) >= limit:
                    break
        if len(entries) < 500:
            break
        last = "(" + entries[-1][0].decode()
    return out


def pending_deliveries(client, org: str, webhook_id: str) -> list[dict]:
    """Deliveries of this endpoint still scheduled (not yet delivered nor given up), soonest first."""
    from datetime import datetime

    prefix = f"{webhook_id}:"
    due = [(j.decode(), int(score)) for j, score in client.zrange(due_key(org), 0, -1, withscores=True)
           if j.decode().startswith(prefix)]
    jobs = client.hmget(jobs_key(org), [j for j, _ in due]) if due else []
    out = []
    for (job_id, due_ms), raw in zip(due, jobs):
        if raw is None:
            continue
        at = datetime.fromtimestamp(due_ms / 1000, UTC).isoformat(timespec="milliseconds")
        out.append({"alert_id": job_id[len(prefix):], "attempts": orjson.loads(raw)["attempts"],
                    "due_at": at.replace("+00:00", "Z")})
    return out
