"""Webhook delivery: every alert of an org, POSTed to each of its endpoints, at least once.

Runs as a background task of `callpulse api` (off with ``--no-webhooks`` or ``CALLPULSE_WEBHOOKS=0``), with the
`DeliverySettings` and the allow list (``CALLPULSE_WEBHOOK_ALLOW``) of the process's `ApiSettings`.
Any number of API replicas may run it; in normal operation each delivery is made by one of them.

1. **Fan-out.** Each org with endpoints has a consumer group (`webhook_store.GROUP`) on its alert
   stream. A replica reads new entries (``XREADGROUP``), and for every endpoint that wants the
   alert's kind and existed when it was appended, schedules a delivery job. Jobs are written and
   the stream entry acknowledged in one MULTI/EXEC: an entry is either still pending in the group
   (a crash before EXEC: another replica, or this one restarted, claims it with ``XAUTOCLAIM`` after
   ``claim_idle_s``) or fully scheduled. Writing a job is idempotent (job id = endpoint id + alert id).
2. **Durable schedule.** Jobs live in ``webhook-jobs:{org}`` (hash) and ``webhook-due:{org}``
   (sorted set by due time). A replica claims due jobs with a Lua script that pushes their due
   time forward by a lease (timeout + 5 s): a replica that dies mid-attempt leaves the job to be
   retried when the lease runs out. A job leaves the schedule only on success (2xx) or give-up.
3. **Backoff.** After failed attempt n (1-based) the next is due after
   ``min(cap, base * 2**(n-1))`` seconds, jittered to between half and all of it. When that would
   fall past ``first attempt + give_up_s`` the delivery is given up instead.

Every attempt is logged to the endpoint's delivery log (stream, capped at ``LOG_MAXLEN``).

Body (bytes fixed when the job is scheduled, identical across retries; Standard Webhooks envelope):
``{"type": "alert.<kind>", "timestamp": <ISO time the alert was appended>, "data": <alert record>}``;
headers ``webhook-id`` (the alert_id), ``webhook-timestamp`` (attempt time, Unix seconds),
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``, `standardwebhooks`).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import redis as redis_sync
from standardwebhooks import Webhook

from api.webhook_policy import check_destination
from api.webhook_store import GROUP, ORGS_KEY, due_key, endpoint_key, jobs_key, log_key, org_endpoints_key
from engine.storage.keys import ALERT_FIELD, org_alerts_stream

LOG_MAXLEN = 1000
USER_AGENT = "callpulse-webhooks/1"

# KEYS: due. ARGV: now ms, lease-until ms, max jobs. Due jobs, each pushed to the lease's end.
CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""

# KEYS: jobs, due, log. ARGV: job id, job JSON ('' = finished: remove), due ms, log maxlen, log entry.
# A job another replica already finished (its lease ran out meanwhile) is not brought back.
FINISH_SCRIPT = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[5])
return 1
"""


@dataclass(frozen=True)
class DeliverySettings:
    """The deliverer's knobs (``CALLPULSE_WEBHOOK_*``, read by api/settings.py); the defaults are these."""

    backoff_base_s: float = 5.0
    backoff_cap_s: float = 3600.0
    give_up_s: float = 86_400.0
    timeout_s: float = 10.0
    poll_s: float = 0.5
    claim_idle_s: float = 30.0
    max_in_flight: int = 32

    def backoff_s(self, attempts: int, rng: random.Random = random) -> float:
        """Delay before the attempt after ``attempts`` failed ones: exponential, capped, jittered."""
        full = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempts - 1))
        return full / 2 + rng.uniform(0, full / 2)

    @property
    def lease_ms(self) -> int:
        return int((self.timeout_s + 5) * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _s(b) -> str:
    return b.decode() if isinstance(b, bytes) else b


def envelope(record: dict, appended_ms: int) -> bytes:
    kind = record.get("kind") or "level"  # records from before alert kinds existed are level alerts
    return orjson.dumps({"type": f"alert.{kind}", "timestamp": _iso(appended_ms), "data": record})


class Deliverer:
    def __init__(self, redis, settings: DeliverySettings | None = None, *, http: httpx.AsyncClient | None = None,
                 metrics=None, allow: str = ""):
        self.redis = redis
        self.metrics = metrics  # api.metrics.ApiMetrics, or None
        self.settings = settings or DeliverySettings()
        self.allow = allow  # CALLPULSE_WEBHOOK_ALLOW: destinations allowed despite the policy (api/webhook_policy.py)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.http = http
        self.in_flight: set[asyncio.Task] = set()
        self.task: asyncio.Task | None = None
        self.claim_script = redis.register_script(CLAIM_SCRIPT)
        self.finish_script = redis.register_script(FINISH_SCRIPT)
        self.rng = random.Random()
        self.reported: str | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self.http is None:  # no redirects: a 3xx is a failed attempt, never a hop to another address
            self.http = httpx.AsyncClient(timeout=self.settings.timeout_s, follow_redirects=False,
                                          headers={"user-agent": USER_AGENT})
        self.task = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for t in list(self.in_flight):  # their jobs stay leased, then due again: nothing is lost
            t.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)
        if self.http is not None:
            await self.http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
                self._report(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._report(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.poll_s)

    def _report(self, problem: str | None) -> None:
        if problem != self.reported:
            self.reported = problem
            print(f"callpulse api: webhooks: {problem or 'delivering again'}", file=sys.stderr, flush=True)

    async def tick(self) -> None:
        """One round over every org with endpoints: schedule new alerts, then start due attempts."""
        problems = []
        for org in sorted(_s(o) for o in await self.redis.smembers(ORGS_KEY)):
            try:  # one org's trouble does not hold the others back
                endpoints = await self._endpoints(org)
                await self._fan_out(org, endpoints)
                await self._start_due(org, endpoints)
            except redis_sync.ConnectionError:
                raise
            except Exception as exc:
                problems.append(f"org {org}: {type(exc).__name__}: {exc}")
        if problems:
            raise RuntimeError("; ".join(problems))

    # -------------------------------------------------------------- fan-out
    async def _endpoints(self, org: str) -> dict[str, dict]:
        out = {}
        for wid in await self.redis.smembers(org_endpoints_key(org)):
            wid = _s(wid)
            rec = {_s(k): _s(v) for k, v in (await self.redis.hgetall(endpoint_key(wid))).items()}
            if rec.get("org") == org:
                out[wid] = rec
        return out

    async def _fan_out(self, org: str, endpoints: dict[str, dict]) -> None:
        stream = org_alerts_stream(org)
        try:
            # entries a consumer read but never scheduled (it died): take them over once idle long enough
            _next, claimed, *_ = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, int(self.settings.claim_idle_s * 1000), "0-0", count=100)
            batches = [claimed] if claimed else []
            for _stream, entries in await self.redis.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=100) or []:
                batches.append(entries)
        except redis_sync.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # the stream was deleted and appended to again: everything in it is new
            await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            return
        for entries in batches:
            for entry_id, fields in entries:
                await self._schedule(org, stream, _s(entry_id), fields, endpoints)

    async def _schedule(self, org: str, stream: str, entry_id: str, fields: dict, endpoints: dict) -> None:
        appended_ms = int(entry_id.split("-")[0])
        try:
            record = orjson.loads((fields or {}).get(ALERT_FIELD) or b"null")
        except orjson.JSONDecodeError:
            record = None
        pipe = self.redis.pipeline(transaction=True)
        # the record is opaque JSON with an alert_id; an entry without one is acknowledged and skipped
        if isinstance(record, dict) and isinstance(record.get("alert_id"), str) and record["alert_id"]:
            kind = record.get("kind") or "level"
            body = envelope(record, appended_ms).decode()
            now = int(time.time() * 1000)
            for wid, ep in endpoints.items():
                kinds = [k for k in ep.get("kinds", "").split(",") if k]
                if int(ep["created_ms"]) > appended_ms or (kinds and kind not in kinds):
                    continue
                job_id = f"{wid}:{record['alert_id']}"
                job = {"endpoint": wid, "alert_id": record["alert_id"], "body": body, "attempts": 0,
                       "first_ms": None, "stream_id": entry_id}
                pipe.hsetnx(jobs_key(org), job_id, orjson.dumps(job))
                pipe.zadd(due_key(org), {job_id: now}, nx=True)
        pipe.xack(stream, GROUP, entry_id)
        await pipe.execute()

    # -------------------------------------------------------------- attempts
    async def _start_due(self, org: str, endpoints: dict[str, dict]) -> None:
        room = self.settings.max_in_flight - len(self.in_flight)
        if room <= 0:
            return
        now = int(time.time() * 1000)
        ids = await self.claim_script(keys=[due_key(org)], args=[now, now + self.settings.lease_ms, room])
        if not ids:
            return
        ids = [_s(i) for i in ids]
        jobs = await self.redis.hmget(jobs_key(org), ids)
        for job_id, raw in zip(ids, jobs):
            if raw is None:  # finished meanwhile by another replica (lease overrun)
                await self.redis.zrem(due_key(org), job_id)
                continue
            job = orjson.loads(raw)
            ep = endpoints.get(job["endpoint"])
            if ep is None:  # endpoint removed: its deliveries go with it
                pipe = self.redis.pipeline(transaction=True)
                pipe.hdel(jobs_key(org), job_id)
                pipe.zrem(due_key(org), job_id)
                await pipe.execute()
                continue
            t = asyncio.create_task(self._attempt(org, job_id, job, ep))
            self.in_flight.add(t)
            t.add_done_callback(self.in_flight.discard)

    async def _attempt(self, org: str, job_id: str, job: dict, ep: dict) -> None:
        started_ms = int(time.time() * 1000)
        status, error = await self._post(ep, job["alert_id"], job["body"])
        ended_ms = int(time.time() * 1000)
        job["attempts"] += 1
        job["first_ms"] = job["first_ms"] or started_ms
        entry = {"alert_id": job["alert_id"], "attempt": job["attempts"], "at": _iso(started_ms),
                 "at_ms": started_ms, "status_code": status, "error": error,
                 "latency_ms": ended_ms - started_ms, "next_retry_at": None}
        if status is not None and 200 <= status < 300:
            entry["state"] = "delivered"
            args = [job_id, "", 0]
        else:
            due = ended_ms + int(self.settings.backoff_s(job["attempts"], self.rng) * 1000)
            if due > job["first_ms"] + self.settings.give_up_s * 1000:
                entry["state"] = "gave_up"
                args = [job_id, "", 0]
            else:
                entry.update(state="retrying", next_retry_at=_iso(due))
                args = [job_id, orjson.dumps(job), due]
        await self.finish_script(keys=[jobs_key(org), due_key(org), log_key(org, job["endpoint"])],
                                 args=[*args, LOG_MAXLEN, orjson.dumps(entry)])
        if self.metrics is not None:
            self.metrics.webhook_attempts.labels(entry["state"]).inc()

    async def _post(self, ep: dict, msg_id: str, body: str) -> tuple[int | None, str | None]:
        """(status code, None) or (None, error text) of one signed POST."""
        try:
            await check_destination(ep["url"], self.allow)
            now = datetime.now(UTC)
            headers = {"content-type": "application/json", "webhook-id": msg_id,
                       "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": Webhook(ep["secret"]).sign(msg_id, now, body)}
            async with self.http.stream("POST", ep["url"], content=body.encode(), headers=headers) as resp:
                return resp.status_code, None  # the response body is never read
        except httpx.TimeoutException:
            return None, f"timeout after {self.settings.timeout_s:g} s"
        except (httpx.HTTPError, OSError, ValueError) as exc:  # DestinationDenied is a ValueError
            return None, f"{type(exc).__name__}: {exc}"[:500]
