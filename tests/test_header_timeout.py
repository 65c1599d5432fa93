"""Reliability report item 5: a connection that never completes its request headers is closed.

Without a header timeout, 1,100 slow-loris connections (a partial request line each, no key
needed) held every file descriptor of a 1,024 limit and the API answered nothing. `callpulse api`
(a real subprocess, ``CALLPULSE_HEADER_TIMEOUT_S=1`` here) closes a connection whose request
headers are not complete within the timeout — the first request of a connection and each next one
of a keep-alive connection — with a 408, while complete requests, and a stream that lasts longer
than the timeout, are served as usual.
"""

from __future__ import annotations

import resource
import socket
import subprocess
import time

import httpx
import pytest

from api.auth import create_key
from callpulse.redis_local import free_port
from engine.storage.keys import FRAME_FIELD, frames_stream, stats_key
from tests.support import CALLPULSE, ROOT, env_for, stop_process, wait_until

pytestmark = pytest.mark.e2e

TIMEOUT_S = 1.0


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _read_until_closed(s: socket.socket, limit_s: float) -> tuple[bytes, float | None]:
    """What the server sent until it closed the connection, and when it closed (None: still open)."""
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, time.monotonic()
        if not chunk:
            return data, time.monotonic()
        data += chunk
    return data, None


def test_incomplete_request_headers_are_cut_off_after_the_header_timeout(redis_url, redis_client):
    key = create_key(redis_client, org="org-1")[1]
    body = b'{"org_id":"org-1","campaign_id":"c-ht"}'
    redis_client.set(stats_key("org-1", "c-ht"), body)
    redis_client.xadd(frames_stream("org-1", "c-ht"), {FRAME_FIELD: body[:-1] + b',"seq":1}'}, id="1-0")
    port = free_port()
    env = env_for(redis_url) | {"CALLPULSE_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    api = subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--heartbeat", "0.5"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    socks: list[socket.socket] = []
    try:
        wait_until(lambda: _ok(base + "/healthz"), what="API up")

        def connect() -> socket.socket:
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
            return s

        # 1. a slow loris: half a request line and one header, then nothing
        loris = connect()
        loris.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        # 2. a connection that sends nothing at all
        silent = connect()
        # 3. a keep-alive connection: one whole request, then half of the next
        keep = connect()
        keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        keep.settimeout(5)
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            chunk = keep.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200"), first
        keep.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        t_keep = time.monotonic()

        # meanwhile a normal request on another connection is served
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200

        data, closed_at = _read_until_closed(loris, 8)
        assert closed_at is not None, "a connection with incomplete headers was never closed"
        assert TIMEOUT_S * 0.8 <= closed_at - t0 <= TIMEOUT_S + 2, f"closed after {closed_at - t0:.1f} s"
        assert data.startswith(b"HTTP/1.1 408"), data

        data, closed_at = _read_until_closed(silent, 8)
        assert closed_at is not None, "a connection that sent nothing was never closed"

        data, closed_at = _read_until_closed(keep, 8)
        assert closed_at is not None, "the next request's incomplete headers on a keep-alive connection were kept"
        assert TIMEOUT_S * 0.8 <= closed_at - t_keep <= TIMEOUT_S + 2, f"closed after {closed_at - t_keep:.1f} s"
        assert data.startswith(b"HTTP/1.1 408"), data

        # a stream whose headers were complete outlives the header timeout (the timer is stopped)
        frames = 0
        t_stream = time.monotonic()
        with httpx.stream("GET", base + "/v1/campaigns/c-ht/live", headers={"Authorization": f"Bearer {key}"},
                          timeout=httpx.Timeout(5)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                frames += line.startswith("event: frame")
                if time.monotonic() - t_stream > 3 * TIMEOUT_S:
                    break
        assert frames >= 3, f"the stream ended early: {frames} frames in {time.monotonic() - t_stream:.1f} s"

        # and the server still answers
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    finally:
        for s in socks:
            s.close()
        stop_process(api)


def test_slow_loris_connections_beyond_the_descriptor_limit_do_not_silence_the_api(redis_url):
    """The report's scenario: the API under a 1,024 descriptor limit, 1,100 connections that send half a
    request and then nothing. Without a header timeout they hold every descriptor for good and the API
    never answers again; with it (1 s here) they are closed and a normal request gets its 200."""
    n_loris = 1100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n_loris + 200:  # this process holds the client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    def limit_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    port = free_port()
    env = env_for(redis_url) | {"CALLPULSE_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    api = subprocess.Popen(CALLPULSE + ["api", "--port", str(port)], cwd=ROOT, env=env, preexec_fn=limit_fds,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    socks: list[socket.socket] = []
    try:
        wait_until(lambda: _ok(base + "/healthz"), what="API up")
        for _ in range(n_loris):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        wait_until(lambda: _ok(base + "/healthz"), timeout=15, interval=0.2,
                   what="the API to answer again once the slow connections are cut off")
    finally:
        for s in socks:
            s.close()
        stop_process(api)
