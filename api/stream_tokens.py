"""Short-lived, read-only stream tokens: a browser ``EventSource`` cannot send an Authorization header.

``POST /v1/stream-tokens`` (a key with ``campaigns:read``) gives a token ``st_<id>_<secret>`` that
opens the SSE routes only (``GET /v1/campaigns/{id}/live``, ``GET /v1/alerts``) as ``?token=``.
A token belongs to the caller's org and, when asked, to one campaign; it lives a few minutes.

Stored in Redis, like the API keys (api/auth.py), so every API process honours it and it ends with
its key: ``callpulse:streamtoken:<id>`` — hash ``org``, ``campaign`` (empty: org-wide), ``key_id``
(the key that asked for it), ``kind``, ``sha256`` (of the secret), ``expires_ms`` — with a Redis TTL
of the token's lifetime, so expired tokens clean themselves up. Each use checks that the issuing key
is still valid: revoking (or the expiry of) the key ends its stream tokens at once.

A token is checked when a stream opens; a stream already open goes on after the token expires (as
a stream opened with a key goes on after the key is revoked). Tokens never reach a log: the access
log filter below blanks ``token=`` values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time

from api.auth import AuthError, Principal, format_ms, key_record_key
from engine.storage.keys import PREFIX

DEFAULT_TTL_S = 300
MIN_TTL_S = 10
MAX_TTL_S = 900
SSE_ROUTES = "GET /v1/campaigns/{id}/live and GET /v1/alerts"

_TOKEN_RE = re.compile(r"^st_([0-9a-f]{12})_([A-Za-z0-9_-]{16,128})$")


def token_record_key(token_id: str) -> str:
    return f"{PREFIX}:streamtoken:{token_id}"


def looks_like_stream_token(text: str | None) -> bool:
    return bool(text) and text.startswith("st_")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _decode(rec: dict) -> dict:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in rec.items()}


async def issue(redis, p: Principal, campaign_id: str | None, ttl_s: int) -> dict:
    """Store a new token for ``p`` (its org; one campaign or all); returns the response body."""
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    expires_ms = _now_ms() + ttl_s * 1000
    k = token_record_key(token_id)
    pipe = redis.pipeline(transaction=True)
    pipe.hset(k, mapping={"org": p.org_id, "campaign": campaign_id or "", "key_id": p.key_id, "kind": p.kind,
                          "sha256": _sha256(secret), "expires_ms": expires_ms})
    pipe.pexpireat(k, expires_ms)
    await pipe.execute()
    return {"token": f"st_{token_id}_{secret}", "org_id": p.org_id, "campaign_id": campaign_id,
            "expires_at": format_ms(expires_ms), "ttl_s": ttl_s}


async def authenticate(redis, token: str, *, campaign_id: str | None, dev_mode: bool) -> Principal:
    """The read-only principal of a stream token used on an SSE route (``campaign_id``: the route's
    campaign, None for the org-wide alert stream); AuthError 401 (invalid, expired, key revoked) or
    403 (another campaign, or a campaign token on the org-wide stream)."""
    m = _TOKEN_RE.match(token)
    if m is None:
        raise AuthError(401, "invalid stream token")
    token_id, secret = m.groups()
    rec = _decode(await redis.hgetall(token_record_key(token_id)))
    if not rec or not hmac.compare_digest(rec.get("sha256", ""), _sha256(secret)):
        raise AuthError(401, "invalid or expired stream token (ask POST /v1/stream-tokens for a new one)")
    if int(rec.get("expires_ms") or 0) <= _now_ms():
        raise AuthError(401, "stream token expired (ask POST /v1/stream-tokens for a new one)")
    await _issuer_still_valid(redis, rec, dev_mode)
    scoped = rec.get("campaign") or None
    if scoped is not None and scoped != campaign_id:
        where = f"campaign {campaign_id!r}" if campaign_id else "the org-wide alert stream"
        raise AuthError(403, f"this stream token is for campaign {scoped!r}, not {where}")
    return Principal(org_id=rec["org"], scopes=frozenset({"campaigns:read"}), key_id=rec.get("key_id", ""),
                     kind="stream")


async def _issuer_still_valid(redis, rec: dict, dev_mode: bool) -> None:
    if rec.get("kind") == "dev":
        if not dev_mode:
            raise AuthError(401, "stream token of the demo key: the API is not in dev mode")
        return
    key = _decode(await redis.hgetall(key_record_key(rec.get("key_id", ""))))
    if not key or "revoked_ms" in key:
        raise AuthError(401, "the API key that issued this stream token was revoked")
    if key.get("expires_ms") and int(key["expires_ms"]) <= _now_ms():
        raise AuthError(401, "the API key that issued this stream token has expired")


# ------------------------------------------------------------------ keep tokens out of logs

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Blank ``token=`` query values in log records (uvicorn's access log prints the full path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "token=" in a for a in record.args):
            record.args = tuple(_TOKEN_IN_URL.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1[redacted]", record.msg)
        return True


def keep_tokens_out_of_logs() -> None:
    """Install `RedactTokens` on uvicorn's loggers (once per process)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
