"""API keys: org keys (``ak_…``) and user tokens (``pat_…``), stored hashed in Redis (SPEC §4).

A key looks like ``ak_<key_id>_<secret>`` (``pat_`` for user tokens); ``key_id`` is 12 hex
characters, the secret 32 random URL-safe characters. Redis keeps only the key id and the
SHA-256 of the secret:

- ``callpulse:apikey:<key_id>`` — hash: ``kind`` (``org``|``user``), ``org`` (org keys),
  ``user`` and ``orgs`` (comma-separated, user tokens), ``scopes`` (comma-separated),
  ``sha256`` (hex digest of the secret), ``created_ms``, ``revoked_ms`` (once revoked).
- ``callpulse:apikeys`` — set of every key id (for ``callpulse keys list``).

These names are the API's own; the flow never reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass

from engine.keys import PREFIX

SCOPES = ("campaigns:read", "campaigns:manage", "events:write")
DEFAULT_SCOPES = ("campaigns:read", "events:write")
KEYS_SET = f"{PREFIX}:apikeys"
DEV_KEY = "pat_dev_callpulse-demo"  # accepted only in dev mode (callpulse api --dev / CALLPULSE_DEV=1)
DEV_DEFAULT_ORG = "org-1"

_KEY_RE = re.compile(r"^(ak|pat)_([0-9a-f]{12})_([A-Za-z0-9_-]{16,128})$")
_ORG_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def key_record_key(key_id: str) -> str:
    return f"{PREFIX}:apikey:{key_id}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_org(org: str) -> bool:
    return bool(_ORG_RE.match(org))


def parse_scopes(text: str | None) -> list[str]:
    if not text:
        return list(DEFAULT_SCOPES)
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope(s) {', '.join(bad)}; known: {', '.join(SCOPES)}")
    return sorted(set(scopes), key=SCOPES.index)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the org the request acts for, and what the key may do."""

    org_id: str
    scopes: frozenset
    key_id: str
    kind: str  # "org" | "user" | "dev"
    user: str | None = None


class AuthError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ------------------------------------------------------------------ key management (sync, CLI)

def create_key(client, *, org: str | None = None, user: str | None = None, orgs: list[str] | None = None,
               scopes: list[str] | None = None) -> tuple[str, str]:
    """Create an org key (``org``) or a user token (``user`` + ``orgs``); returns (key_id, key).

    The full key is returned once and never stored.
    """
    scopes = list(scopes) if scopes else list(DEFAULT_SCOPES)
    for s in scopes:
        if s not in SCOPES:
            raise ValueError(f"unknown scope {s!r}")
    if (org is None) == (user is None):
        raise ValueError("give either an org (org key) or a user (user token)")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    rec = {"scopes": ",".join(scopes), "sha256": hash_secret(secret), "created_ms": int(time.time() * 1000)}
    if org is not None:
        if not valid_org(org):
            raise ValueError(f"invalid org id {org!r}")
        prefix = "ak"
        rec.update(kind="org", org=org)
    else:
        orgs = [o for o in (orgs or []) if o]
        if not orgs:
            raise ValueError("a user token needs at least one org (--orgs)")
        for o in orgs:
            if not valid_org(o):
                raise ValueError(f"invalid org id {o!r}")
        if not user or "," in user:
            raise ValueError("invalid user name")
        prefix = "pat"
        rec.update(kind="user", user=user, orgs=",".join(orgs))
    from flows.dataset import ensure

    ensure(client)  # keys are part of the dataset (flows/dataset.py): a wipe then shows as such, not as 401s
    pipe = client.pipeline(transaction=False)
    pipe.hset(key_record_key(key_id), mapping=rec)
    pipe.sadd(KEYS_SET, key_id)
    pipe.execute()
    return key_id, f"{prefix}_{key_id}_{secret}"


def _decode(rec: dict) -> dict:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in rec.items()}


def list_keys(client) -> list[dict]:
    out = []
    for kid in sorted(x.decode() if isinstance(x, bytes) else x for x in client.smembers(KEYS_SET)):
        rec = _decode(client.hgetall(key_record_key(kid)))
        if not rec:
            continue
        out.append({
            "key_id": kid, "kind": rec.get("kind"), "org": rec.get("org"), "user": rec.get("user"),
            "orgs": rec["orgs"].split(",") if rec.get("orgs") else None,
            "scopes": rec.get("scopes", "").split(",") if rec.get("scopes") else [],
            "created_ms": int(rec.get("created_ms", 0)),
            "revoked": "revoked_ms" in rec,
        })
    return out


def revoke_key(client, key_id: str) -> bool:
    k = key_record_key(key_id)
    if not client.exists(k):
        return False
    client.hset(k, "revoked_ms", int(time.time() * 1000))
    return True


# ------------------------------------------------------------------ request authentication (async)

def dev_mode_from_env() -> bool:
    return os.environ.get("CALLPULSE_DEV", "") not in ("", "0", "false", "no")


async def authenticate(redis, authorization: str | None, x_org: str | None, *, dev_mode: bool) -> Principal:
    """Principal of a request, or AuthError(401/403/400)."""
    if not authorization:
        raise AuthError(401, "missing Authorization: Bearer <key>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "Authorization must be 'Bearer <key>'")
    if x_org is not None and not valid_org(x_org):
        raise AuthError(400, "X-Org is not a valid org id")
    if dev_mode and hmac.compare_digest(token, DEV_KEY):
        return Principal(org_id=x_org or DEV_DEFAULT_ORG, scopes=frozenset(SCOPES), key_id="dev", kind="dev",
                         user="dev")
    m = _KEY_RE.match(token)
    if m is None:
        raise AuthError(401, "invalid API key")
    prefix, key_id, secret = m.groups()
    rec = _decode(await redis.hgetall(key_record_key(key_id)))
    if not rec or not hmac.compare_digest(rec.get("sha256", ""), hash_secret(secret)):
        raise AuthError(401, "invalid API key")
    if "revoked_ms" in rec:
        raise AuthError(401, "API key revoked")
    scopes = frozenset(s for s in rec.get("scopes", "").split(",") if s)
    kind = rec.get("kind")
    if kind == "org" and prefix == "ak":
        org = rec["org"]
        if x_org is not None and x_org != org:
            raise AuthError(403, f"this key belongs to org {org!r}, not {x_org!r}")
        return Principal(org_id=org, scopes=scopes, key_id=key_id, kind="org")
    if kind == "user" and prefix == "pat":
        if x_org is None:
            raise AuthError(400, "user tokens must name the org in the X-Org header")
        if x_org not in rec.get("orgs", "").split(","):
            raise AuthError(403, f"user is not a member of org {x_org!r}")
        return Principal(org_id=x_org, scopes=scopes, key_id=key_id, kind="user", user=rec.get("user"))
    raise AuthError(401, "invalid API key")
