"""API key expiry and rotation: `callpulse keys create --expires-in`, `keys rotate --grace`, `keys list`,
checked over real HTTP (issue #9)."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import hash_secret, key_record_key, parse_duration
from tests.support import ServerThread, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(redis_url):
    srv = ServerThread(create_app(redis_url)).start()
    yield srv
    srv.stop()


def status(srv, key):
    r = httpx.get(srv.url + "/v1/campaigns", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return r.status_code, r.json().get("detail")


def keys_cli(redis_url, *args):
    r = run_cli(redis_url, "keys", *args)
    assert r.returncode == 0, r.stderr
    return r


def listed(redis_url):
    return {k["key_id"]: k for k in orjson.loads(keys_cli(redis_url, "list", "--json").stdout)}


def test_durations():
    assert [parse_duration(x) for x in ("30d", "12h", "15m", "3600s", "90", "2w")] == \
        [2_592_000, 43_200, 900, 3600, 90, 1_209_600]
    for bad in ("", "1y", "-5s", "1.5h", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_expired_key_answers_401_with_the_reason(redis_url, redis_client, api):
    out = orjson.loads(keys_cli(redis_url, "create", "--org", "org-1", "--expires-in", "2s", "--json").stdout)
    kid, key = out["key_id"], out["key"]
    never = keys_cli(redis_url, "create", "--org", "org-1").stdout.decode().strip()
    assert status(api, key) == (200, None)
    assert listed(redis_url)[kid]["expires_ms"] == out["expires_ms"] and not listed(redis_url)[kid]["expired"]
    text = keys_cli(redis_url, "list").stdout.decode()
    assert f"{kid} " in text and "expires 20" in text and "expires never" in text
    time.sleep(2.1)
    code, detail = status(api, key)
    assert code == 401 and detail.startswith("API key expired at ")
    assert status(api, never) == (200, None)
    assert listed(redis_url)[kid]["expired"] and "EXPIRED" in keys_cli(redis_url, "list").stdout.decode()
    assert run_cli(redis_url, "keys", "create", "--org", "org-1", "--expires-in", "soon").returncode == 2
    # stored hashed: no secret in Redis, only its digest
    rec = redis_client.hgetall(key_record_key(kid))
    assert rec[b"sha256"] == hash_secret(key.split("_", 2)[2]).encode()
    assert not any(key.split("_", 2)[2].encode() in v for v in rec.values())


def test_rotation_keeps_id_and_scopes_with_a_grace_period(redis_url, redis_client, api):
    out = orjson.loads(keys_cli(redis_url, "create", "--org", "org-1", "--scopes", "campaigns:read",
                                "--expires-in", "30d", "--json").stdout)
    kid, old = out["key_id"], out["key"]
    r = keys_cli(redis_url, "rotate", kid, "--grace", "2s")
    new = r.stdout.decode().strip()
    assert new.startswith(f"ak_{kid}_") and new != old and len(r.stdout.splitlines()) == 1  # printed once
    assert "old secret works until" in r.stderr.decode()
    info = listed(redis_url)[kid]
    assert info["scopes"] == ["campaigns:read"] and info["old_secret_until_ms"]
    assert info["expires_ms"] >= info["rotated_ms"] + 30 * 86_400_000 - 1000  # the key's lifetime, from now
    assert status(api, new) == (200, None) and status(api, old) == (200, None)
    r = httpx.post(api.url + "/v1/events", headers={"Authorization": f"Bearer {new}"}, content=b"[]")
    assert r.status_code == 403  # same scopes: still no events:write
    time.sleep(2.1)
    code, detail = status(api, old)
    assert code == 401 and "rotated" in detail
    assert status(api, new) == (200, None)

    # without a grace period the old secret stops at once, with the same "rotated" answer (not "invalid API
    # key"); --expires-in sets the new lifetime
    newer = orjson.loads(keys_cli(redis_url, "rotate", kid, "--expires-in", "1h", "--json").stdout)
    assert status(api, new) == (401, "API key was rotated: this secret is no longer valid (use the new key)")
    assert status(api, newer["key"]) == (200, None)
    assert status(api, old) == (401, "invalid API key")  # only the latest replaced secret is remembered
    assert status(api, new[:-1] + ("A" if new[-1] != "A" else "B")) == (401, "invalid API key")
    assert abs(newer["expires_ms"] - (time.time() * 1000 + 3_600_000)) < 60_000
    assert newer["old_secret_until_ms"] is None

    assert run_cli(redis_url, "keys", "rotate", "000000000000").returncode == 1
    assert run_cli(redis_url, "keys", "revoke", kid).returncode == 0
    assert status(api, newer["key"]) == (401, "API key revoked")
    assert run_cli(redis_url, "keys", "rotate", kid).returncode == 2  # a revoked key stays revoked
