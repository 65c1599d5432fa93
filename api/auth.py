"""API keys: org keys (``ak_…``) and user tokens (``pat_…``), stored hashed in Redis (SPEC §4).

A key looks like ``ak_<key_id>_<secret>`` (``pat_`` for user tokens); ``key_id`` is 12 hex
characters, the secret 32 random URL-safe characters. Redis keeps only the key id and the
SHA-256 of the secret:

- ``callpulse:apikey:<key_id>`` — hash: ``kind`` (``org``|``user``), ``org`` (org keys),
  ``user`` and ``orgs`` (comma-separated, user tokens), ``scopes`` (comma-separated),
  ``sha256`` (hex digest of the secret), ``created_ms``, ``revoked_ms`` (once revoked);
  ``expires_ms`` and ``lifetime_ms`` (keys created or rotated with an expiry: when it ends, and
  how long each secret lives); ``rotated_ms``, ``prev_sha256`` and ``prev_until_ms`` (after a
  rotation: the replaced secret, valid until then — the rotation's time when it had no grace period,
  kept so that its use answers "rotated" rather than "invalid").
- ``callpulse:apikeys`` — set of every key id (for ``callpulse keys list``).

These names are the API's own; the flow never reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from engine.storage.keys import PREFIX

SCOPES = ("campaigns:read", "campaigns:manage", "events:write")
DEFAULT_SCOPES = ("campaigns:read", "events:write")
KEYS_SET = f"{PREFIX}:apikeys"
DEV_KEY = "pat_dev_callpulse-demo"  # accepted only in dev mode (callpulse api --dev / CALLPULSE_DEV=1)
DEV_DEFAULT_ORG = "org-1"

_KEY_RE = re.compile(r"^(ak|pat)_([0-9a-f]{12})_([A-Za-z0-9_-]{16,128})$")
_ORG_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> int:
    """Seconds of ``30d``, ``12h``, ``15m``, ``3600s`` or ``3600`` (s, m, h, d, w); ValueError otherwise."""
    m = _DURATION_RE.match(text or "")
    if m is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30d, 12h, 15m, 3600s")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def _now_ms() -> int:
    return int(time.time() * 1000)


def format_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


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
               scopes: list[str] | None = None, expires_in_s: int | None = None) -> tuple[str, str]:
    """Create an org key (``org``) or a user token (``user`` + ``orgs``); returns (key_id, key).

    The full key is returned once and never stored. ``expires_in_s``: the key stops working that
    many seconds from now (and each rotation gives the new secret the same lifetime, unless told).
    """
    scopes = list(scopes) if scopes else list(DEFAULT_SCOPES)
    for s in scopes:
        if s not in SCOPES:
            raise ValueError(f"unknown scope {s!r}")
    if (org is None) == (user is None):
        raise ValueError("give either an org (org key) or a user (user token)")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    if expires_in_s is not None and expires_in_s <= 0:
        raise ValueError("--expires-in must be positive")
    rec = {"scopes": ",".join(scopes), "sha256": hash_secret(secret), "created_ms": _now_ms()}
    if expires_in_s is not None:
        rec.update(expires_ms=rec["created_ms"] + expires_in_s * 1000, lifetime_ms=expires_in_s * 1000)
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


def _info(kid: str, rec: dict, now: int) -> dict:
    return {
        "key_id": kid, "kind": rec.get("kind"), "org": rec.get("org"), "user": rec.get("user"),
        "orgs": rec["orgs"].split(",") if rec.get("orgs") else None,
        "scopes": rec.get("scopes", "").split(",") if rec.get("scopes") else [],
        "created_ms": int(rec.get("created_ms", 0)),
        "revoked": "revoked_ms" in rec,
        "expires_ms": int(rec["expires_ms"]) if rec.get("expires_ms") else None,
        "expired": bool(rec.get("expires_ms")) and int(rec["expires_ms"]) <= now,
        "rotated_ms": int(rec["rotated_ms"]) if rec.get("rotated_ms") else None,
        "old_secret_until_ms": (int(rec["prev_until_ms"]) if rec.get("prev_until_ms")
                                and int(rec["prev_until_ms"]) > now else None),
    }


def key_info(client, key_id: str) -> dict | None:
    """What `callpulse keys list` shows of one key (never its secret); None if there is no such key."""
    rec = _decode(client.hgetall(key_record_key(key_id)))
    return _info(key_id, rec, _now_ms()) if rec else None


def list_keys(client) -> list[dict]:
    out = []
    now = _now_ms()
    for kid in sorted(x.decode() if isinstance(x, bytes) else x for x in client.smembers(KEYS_SET)):
        rec = _decode(client.hgetall(key_record_key(kid)))
        if rec:
            out.append(_info(kid, rec, now))
    return out


def rotate_key(client, key_id: str, *, expires_in_s: int | None = None, grace_s: int = 0) -> str:
    """Give a key a new secret (same id, kind, org(s), scopes); returns the new full key, shown once.

    The old secret keeps working for ``grace_s`` seconds (0: it stops at once; never past its own
    expiry). Expiry: ``expires_in_s`` from now if given, else the key's lifetime from creation
    (or its last rotation with ``expires_in_s``) counted from now; a key without expiry keeps none.
    Only the latest replaced secret has a grace period: rotating again ends the previous one's.
    Raises KeyError (no such key) or ValueError (revoked, bad durations).
    """
    k = key_record_key(key_id)
    rec = _decode(client.hgetall(k))
    if not rec:
        raise KeyError(key_id)
    if "revoked_ms" in rec:
        raise ValueError(f"key {key_id} is revoked; create a new one")
    if expires_in_s is not None and expires_in_s <= 0:
        raise ValueError("--expires-in must be positive")
    if grace_s < 0:
        raise ValueError("--grace must not be negative")
    now = _now_ms()
    secret = secrets.token_urlsafe(24)
    new = {"sha256": hash_secret(secret), "rotated_ms": now}
    lifetime = expires_in_s * 1000 if expires_in_s is not None else int(rec.get("lifetime_ms") or 0)
    if lifetime:
        new.update(expires_ms=now + lifetime, lifetime_ms=lifetime)
    # the replaced secret's hash is kept even without a grace period (valid until now): its use then answers
    # the documented "rotated" 401, not "invalid API key"
    until = now + grace_s * 1000
    if rec.get("expires_ms"):
        until = min(until, int(rec["expires_ms"]))
    new.update(prev_sha256=rec["sha256"], prev_until_ms=until)
    client.hset(k, mapping=new)
    prefix = "ak" if rec.get("kind") == "org" else "pat"
    return f"{prefix}_{key_id}_{secret}"


def revoke_key(client, key_id: str) -> bool:
    k = key_record_key(key_id)
    if not client.exists(k):
        return False
    client.hset(k, "revoked_ms", int(time.time() * 1000))
    return True


# ------------------------------------------------------------------ request authentication (async)

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
    if not rec:
        raise AuthError(401, "invalid API key")
    digest = hash_secret(secret)
    now = _now_ms()
    if hmac.compare_digest(rec.get("sha256", ""), digest):
        if "revoked_ms" in rec:
            raise AuthError(401, "API key revoked")
        if rec.get("expires_ms") and int(rec["expires_ms"]) <= now:
            raise AuthError(401, f"API key expired at {format_ms(int(rec['expires_ms']))}")
    elif rec.get("prev_sha256") and hmac.compare_digest(rec["prev_sha256"], digest):
        if "revoked_ms" in rec:
            raise AuthError(401, "API key revoked")
        if int(rec.get("prev_until_ms") or 0) <= now:
            raise AuthError(401, "API key was rotated: this secret is no longer valid (use the new key)")
    else:
        raise AuthError(401, "invalid API key")
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
