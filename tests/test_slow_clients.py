"""Issue #9 item 4: SSE clients that never read cannot pin kernel or process memory.

`callpulse api` runs as a subprocess (its RSS is measured alone); frames of ~16 KB are published
4 times a second the way the flow publishes them; 300 raw sockets ask for the live stream and
never call recv; one fast client reads. Asserted, over a bounded time:
- the server-side send queues (/proc/net/tcp tx_queue) stay within a small per-socket bound
  (SO_SNDBUF is capped: without the cap Linux autotunes each up to ~4 MiB);
- the never-reading clients are cut off once a send stalls for ``--sse-stall-s`` (3 s here), after
  which their queues are freed (abort, not a close that keeps unsent bytes);
- the server RSS grows by a bounded amount;
- the fast client's frame lag stays at p99 <= 500 ms and it is never cut off.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import httpx
import orjson
import pytest

from api.auth import create_key
from callpulse.redis_local import free_port
from engine.storage.keys import FRAME_FIELD, LIVE_CHANNEL, frames_stream, stats_key
from tests.support import CALLPULSE, ROOT, env_for, stop_process, wait_until

pytestmark = pytest.mark.e2e

ORG, CAMP = "org-1", "c-slow"
N_SLOW = 300
STALL_S = 3
PAD = "x" * 16_000


def publish(client, seq: int) -> None:
    body = orjson.dumps({"org_id": ORG, "campaign_id": CAMP, "t": time.time(), "pad": PAD})
    frame = body[:-1] + b',"seq":%d}' % seq
    pipe = client.pipeline(transaction=False)
    pipe.set(stats_key(ORG, CAMP), body)
    pipe.xadd(frames_stream(ORG, CAMP), {FRAME_FIELD: frame}, id=f"{seq}-0", maxlen=100, approximate=True)
    pipe.publish(LIVE_CHANNEL, b'{"kind":"frame","org_id":"%b","campaign_id":"%b","seq":%d,"frame":%b}'
                 % (ORG.encode(), CAMP.encode(), seq, frame))
    pipe.execute()


def server_send_queues(port: int) -> list[int]:
    """tx_queue of every established socket whose local port is the API's (IPv4 loopback)."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, state, queues = parts[1], parts[3], parts[4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                out.append(int(queues.split(":")[0], 16))
    return out


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_never_reading_sse_clients_stay_bounded_and_a_fast_client_keeps_up(redis_url, redis_client):
    key = create_key(redis_client, org=ORG)[1]
    seq = 1
    publish(redis_client, seq)
    port = free_port()
    api = subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--sse-stall-s", str(STALL_S),
                                        "--heartbeat", "60"], cwd=ROOT, env=env_for(redis_url),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    lags: list[float] = []
    fast_ended = []
    slow: list[socket.socket] = []
    try:
        wait_until(lambda: _ok(base + "/healthz"), what="API up")
        request = (f"GET /v1/campaigns/{CAMP}/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                   f"Accept: text/event-stream\r\n\r\n").encode()
        # warm up (imports, pool) before the baseline
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as h:
            assert h.get("/v1/campaigns").status_code == 200
        rss0 = rss_kb(api.pid)

        def fast_reader():
            with httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=30)) as h:
                with h.stream("GET", f"/v1/campaigns/{CAMP}/live", headers={"Authorization": f"Bearer {key}"}) as r:
                    event = None
                    for line in r.iter_lines():  # minimal SSE parsing: event + one data line
                        if line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event == "frame":
                            lags.append(time.time() - orjson.loads(line[5:])["t"])
                        if stop.is_set():
                            break
            fast_ended.append(stop.is_set())

        def publisher():
            nonlocal seq
            c = redis_client.__class__.from_url(redis_url)
            while not stop.is_set():
                seq += 1
                publish(c, seq)
                time.sleep(0.25)
            c.close()

        threading.Thread(target=publisher, daemon=True).start()
        threading.Thread(target=fast_reader, daemon=True).start()
        for _ in range(N_SLOW):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # fills the server's queue sooner
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            slow.append(s)  # never recv

        peak_total = peak_one = 0
        peak_rss = rss_kb(api.pid)
        t_end = time.monotonic() + 16
        while time.monotonic() < t_end:
            q = server_send_queues(port)
            peak_total = max(peak_total, sum(q))
            peak_one = max(peak_one, max(q, default=0))
            peak_rss = max(peak_rss, rss_kb(api.pid))
            time.sleep(0.25)
        remaining = server_send_queues(port)
        metrics = httpx.get(base + "/metrics").text
        assert fast_ended == [], "the fast client's stream ended: it was cut off"
        stop.set()

        dropped = _metric(metrics, "callpulse_api_sse_dropped_total")
        assert dropped >= N_SLOW * 0.95, f"only {dropped} of {N_SLOW} never-reading clients were cut off"
        assert peak_one <= 320 * 1024, f"a send queue reached {peak_one} bytes (SO_SNDBUF not capped?)"
        assert peak_total <= N_SLOW * 320 * 1024
        assert sum(remaining) <= 2 * 320 * 1024, "dropped clients' queues were not freed"
        assert (peak_rss - rss0) < 150 * 1024, f"RSS grew by {(peak_rss - rss0) // 1024} MiB"
        assert len(lags) >= 40, f"the fast client got only {len(lags)} frames"
        lags.sort()
        p99 = lags[int(len(lags) * 0.99) - 1]
        assert p99 <= 0.5, f"fast client frame lag p99 {p99 * 1000:.0f} ms"
    finally:
        stop.set()
        for s in slow:
            s.close()
        stop_process(api)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _server_sockets_of(port: int, peer_port: int) -> list[tuple[str, int]]:
    """(state, tx_queue) of the server-side sockets (local port ``port``) talking to ``peer_port``."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, state, queues = parts[1], parts[2], parts[3], parts[4]
            if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == peer_port:
                out.append((state, int(queues.split(":")[0], 16)))
    return out


def test_a_cut_off_sse_client_gets_a_reset_and_its_queue_is_freed_at_once(redis_url, redis_client):
    """Reliability report item 4: the stall cut-off sends an RST (SO_LINGER 0 before the abort), so the
    kernel drops the unsent queue at once and the client learns it was cut off (ECONNRESET), instead of
    a FIN queued behind ~200 KB the client never reads, held in FIN_WAIT1 for minutes."""
    from api.app import create_app
    from tests.support import ServerThread

    camp = "c-reset"
    key = create_key(redis_client, org=ORG)[1]
    seq = 1

    def pub(c, n):
        body = orjson.dumps({"org_id": ORG, "campaign_id": camp, "t": time.time(), "pad": PAD})
        frame = body[:-1] + b',"seq":%d}' % n
        pipe = c.pipeline(transaction=False)
        pipe.set(stats_key(ORG, camp), body)
        pipe.xadd(frames_stream(ORG, camp), {FRAME_FIELD: frame}, id=f"{n}-0", maxlen=100, approximate=True)
        pipe.publish(LIVE_CHANNEL, b'{"kind":"frame","org_id":"%b","campaign_id":"%b","seq":%d,"frame":%b}'
                     % (ORG.encode(), camp.encode(), n, frame))
        pipe.execute()

    pub(redis_client, seq)
    app = create_app(redis_url, sse_stall_s=1.0, heartbeat_s=60, min_frame_interval_s=0.05)
    reaper = app.state.reaper
    api = ServerThread(app).start()
    stop = threading.Event()

    def publisher():
        n = seq
        c = redis_client.__class__.from_url(redis_url)
        while not stop.is_set():
            n += 1
            pub(c, n)
            time.sleep(0.05)
        c.close()

    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        s.connect(("127.0.0.1", api.port))
        peer_port = s.getsockname()[1]
        s.sendall((f"GET /v1/campaigns/{camp}/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                   f"Accept: text/event-stream\r\n\r\n").encode())
        threading.Thread(target=publisher, daemon=True).start()
        wait_until(lambda: reaper.dropped >= 1, timeout=30, what="the stalled client to be cut off")
        stop.set()
        # the server's side of the connection is gone at once (an RST closes it: no FIN_WAIT1 holding the
        # unsent queue; without the reset it would linger there with its tx_queue for minutes)
        wait_until(lambda: not _server_sockets_of(api.port, peer_port), timeout=3,
                   what=f"the server socket to go (just after the cut-off: {_server_sockets_of(api.port, peer_port)})")
        # the client reads what its small receive buffer held, then learns of the reset
        s.settimeout(5)
        received, outcome = 0, None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                outcome = "reset"
                break
            if not chunk:
                outcome = "eof"
                break
            received += len(chunk)
        assert outcome == "reset", f"the client saw {outcome!r} after {received} bytes, not a connection reset"
    finally:
        stop.set()
        s.close()
        api.stop()
