"""API benchmarks: SSE fan-out lag, event -> frame latency, /stats read latency. Prints markdown.

    .venv/bin/python benchmarks/bench_api.py [--subscribers 1000] [--seconds 10] [--rate 500] [--api-processes 2]

Everything runs on this machine: a private redis-server, `callpulse api` (one process) and, for the
end-to-end part, `callpulse flow` (live mode), all as subprocesses; the clients run in this process
on one asyncio loop (httpx streaming), so on a small machine the client side competes for CPU with
the server and the figures are upper bounds.

1. Fan-out lag: frames are PUBLISHed straight on the live channel (bypassing the flow) with their
   send time inside; lag = receive time at each of N subscribers - publish time. With
   ``--api-processes K`` it runs again with the same N subscribers spread over K API processes.
2. Event -> frame: events POSTed to /v1/events at a sustained rate (ts = now); each batch adds one
   contact, so a frame's contacts.total says which batches it reflects; each batch's latency =
   the first frame that reflects it, received - the batch's POST start (every batch is timed, not
   only the newest of each frame, which waited least). Includes the flow's 250 ms frame coalescing.
3. /stats read latency: sequential GETs over one keep-alive connection.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from harness import current_rss  # noqa: E402

from api.auth import create_key  # noqa: E402
from callpulse.redis_local import free_port, start_redis, stop_redis  # noqa: E402
from engine.storage.keys import LIVE_CHANNEL, frames_stream, stats_key  # noqa: E402
from tests.support import CALLPULSE, env_for, read_sse, stop_process, wait_until  # noqa: E402

ORG = "bench"


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def start_api(redis_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(CALLPULSE + ["api", "--port", str(port), "--log-level", "error"], cwd=ROOT,
                            env=env_for(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    wait_until(up, timeout=30, what="api")
    return proc, url


async def fanout(urls: list[str], redis_url: str, client: redis.Redis, key: str, n: int, seconds: float,
                 api_pid: int) -> dict:
    """Subscriber i connects to ``urls[i % len(urls)]``: several API processes share the subscribers. The
    first API process's RSS is sampled once a second while frames are published (flat memory or not)."""
    camp = "fanout"
    body = {"campaign_id": camp, "org_id": ORG, "live": {}}
    client.set(stats_key(ORG, camp), orjson.dumps(body))
    lags: list[float] = []
    ready = [0]
    stop = asyncio.Event()

    async def one(http, url):
        first = True
        async with http.stream("GET", f"{url}/v1/campaigns/{camp}/live",
                               headers={"Authorization": f"Bearer {key}"}) as r:
            def on(ev, eid, data):
                nonlocal first
                if ev != "frame":
                    return stop.is_set()
                t = orjson.loads(data).get("bench_t")
                if first:
                    first = False
                    ready[0] += 1
                elif t is not None:
                    lags.append(time.time() - t)
                return stop.is_set()
            await read_sse(r, on)

    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(timeout=None, limits=limits) as http:
        # a first frame so that every subscriber has something to start from
        seq = 1
        client.xadd(frames_stream(ORG, camp), {"f": orjson.dumps(dict(body, seq=seq))}, id=f"{seq}-0")
        tasks = [asyncio.create_task(one(http, urls[i % len(urls)])) for i in range(n)]
        t0 = time.monotonic()
        while ready[0] < n and time.monotonic() - t0 < 60:
            await asyncio.sleep(0.05)
        connect_s = time.monotonic() - t0
        pub = aioredis.Redis.from_url(redis_url)
        rss = [current_rss(api_pid)]  # all connected
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if seq % 4 == 0:
                rss.append(current_rss(api_pid))
            seq += 1
            frame = dict(body, seq=seq, bench_t=time.time())
            await pub.publish(LIVE_CHANNEL, orjson.dumps({"kind": "frame", "org_id": ORG, "campaign_id": camp,
                                                          "seq": seq, "frame": frame}))
            await asyncio.sleep(0.25)  # 4 frames/s, the flow's maximum per campaign
        await asyncio.sleep(1.0)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pub.aclose()
    return {"subscribers": n, "processes": len(urls), "connected": ready[0], "connect_s": connect_s,
            "frames": seq - 1,
            "deliveries": len(lags), "expected": (seq - 1) * n,
            "p50_ms": pct(lags, 50) * 1000, "p99_ms": pct(lags, 99) * 1000, "max_ms": max(lags, default=0) * 1000,
            "rss_connected": rss[0], "rss_last": rss[-1], "rss_max": max(rss)}


def preload(url: str, redis_url: str, key: str, contacts: int) -> None:
    """Campaign e2e with ``contacts`` contacts, each dialed once and ended over the last two hours (so the
    flow holds a big campaign whose attempts are sealed) before the event -> frame measurement."""
    now = int(time.time() * 1000)
    span = 7_200_000
    evs = [{"event_id": "p-c0", "type": "campaign.created", "ts": now - span, "org_id": ORG, "campaign_id": "e2e"}]
    for i in range(contacts):
        t = now - span + i * span // contacts
        base = {"org_id": ORG, "campaign_id": "e2e"}
        evs += [{"event_id": f"p{i}a", "type": "contact.added", "ts": t, "contact_id": f"pc{i}", **base},
                {"event_id": f"p{i}d", "type": "call.dialed", "ts": t + 1, "contact_id": f"pc{i}",
                 "attempt_id": f"pa{i}", **base},
                {"event_id": f"p{i}e", "type": "call.ended", "ts": t + 20_000, "attempt_id": f"pa{i}",
                 "sip_code": 486, **base}]
    evs.sort(key=lambda e: e["ts"])
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http:
        for i in range(0, len(evs), 10_000):
            r = http.post("/v1/events", content=orjson.dumps(evs[i:i + 10_000]))
            assert r.status_code == 200, r.text
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: (orjson.loads(client.get(stats_key(ORG, "e2e")) or b"{}").get("contacts", {})
                        .get("total") == contacts), timeout=600, what="the preloaded campaign")
    client.close()


async def event_to_frame(url: str, redis_url: str, key: str, rate: int, seconds: float, base_total: int = 0,
                         batch_every: float = 0.1) -> dict:
    camp = "e2e"
    per_batch = max(1, int(rate * batch_every))
    posted: dict[int, float] = {}  # contacts.total after batch -> POST start time
    lat: list[float] = []
    n_contacts = 0
    eid = 0
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as http:
        now = int(time.time() * 1000)
        r = await http.post("/v1/events", content=orjson.dumps([
            {"event_id": "c0", "type": "campaign.created", "ts": now, "org_id": ORG, "campaign_id": camp},
            {"event_id": "c1", "type": "campaign.status", "ts": now, "org_id": ORG, "campaign_id": camp,
             "status": "active"}]))
        assert r.status_code == 200, r.text
        client = redis.Redis.from_url(redis_url)
        wait_until(lambda: client.exists(stats_key(ORG, camp)), timeout=30, what="campaign frame")
        await asyncio.sleep(1.0)  # the campaign.status frame is out
        stop = asyncio.Event()

        async def listen():
            async with http.stream("GET", f"/v1/campaigns/{camp}/live") as resp:
                def on(ev, _id, data):
                    if ev == "frame":
                        # every batch this frame is the first to reflect, not only its newest: a frame
                        # coalesces the batches since the last one, and the oldest of them waited longest
                        t = time.time()
                        total = orjson.loads(data)["contacts"]["total"] - base_total
                        for n in [n for n in posted if n <= total and n not in seen]:
                            seen.add(n)
                            lat.append(t - posted[n])
                    return stop.is_set()
                await read_sse(resp, on)
        seen: set[int] = set()
        task = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        end = time.monotonic() + seconds
        sent = 0
        while time.monotonic() < end:
            t_batch = time.monotonic()
            ts = int(time.time() * 1000)
            evs = []
            n_contacts += 1
            evs.append({"event_id": f"e{eid}", "type": "contact.added", "ts": ts, "org_id": ORG,
                        "campaign_id": camp, "contact_id": f"ct{n_contacts}"})
            eid += 1
            for _ in range(per_batch - 1):  # the rest: costs (applied, no new contact)
                evs.append({"event_id": f"e{eid}", "type": "cost.incurred", "ts": ts, "org_id": ORG,
                            "campaign_id": camp, "category": "telephony", "usd": 0.001})
                eid += 1
            posted[n_contacts] = time.time()
            r = await http.post("/v1/events", content=orjson.dumps(evs))
            assert r.status_code == 200 and r.json()["accepted"] == len(evs), r.text
            sent += len(evs)
            await asyncio.sleep(max(0.0, batch_every - (time.monotonic() - t_batch)))
        await asyncio.sleep(1.5)
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        client.close()
    return {"rate": sent / seconds, "batches": n_contacts, "frames_matched": len(lat),
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}


def stats_reads(url: str, key: str, n: int = 2000) -> dict:
    lat = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(50):
            http.get("/v1/campaigns/e2e/stats")
        for _ in range(n):
            t = time.perf_counter()
            r = http.get("/v1/campaigns/e2e/stats")
            lat.append(time.perf_counter() - t)
            assert r.status_code == 200
        size = len(r.content)
    return {"n": n, "bytes": size, "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
            "rps": n / sum(lat)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=int, default=500, help="events/s for the event->frame part")
    ap.add_argument("--batch-every", type=float, default=0.1,
                    help="seconds between two POSTs of the event->frame part (1.0: a quiet campaign, each batch "
                         "after more than a frame interval of quiet, framed on the leading edge)")
    ap.add_argument("--preload-contacts", type=int, default=0,
                    help="first load campaign e2e with N dialed and ended contacts (e.g. 100000 at 200/s)")
    ap.add_argument("--recovery", action="store_true", help="run the flow with recovery on (default settings)")
    ap.add_argument("--no-fanout", action="store_true", help="skip the SSE fan-out part")
    ap.add_argument("--api-processes", type=int, default=1,
                    help="also run the fan-out with the subscribers spread over N API processes (after the "
                         "1-process baseline, in the same run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_api_"))
    port = free_port()
    rproc = start_redis(port, tmp / "redis")
    redis_url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(redis_url)
    key = create_key(client, org=ORG, scopes=["campaigns:read", "events:write"])[1]
    api, url = start_api(redis_url)
    rec = ["--recovery-dir", str(tmp / "recovery")] if args.recovery else ["--no-recovery"]
    flow = subprocess.Popen(CALLPULSE + ["flow", *rec], cwd=ROOT, env=env_for(redis_url),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extra = [start_api(redis_url) for _ in range(args.api_processes - 1)]
    try:
        fos = []
        if not args.no_fanout:
            fos.append(asyncio.run(fanout([url], redis_url, client, key, args.subscribers, args.seconds,
                                            api.pid)))
            if extra:
                client.delete(frames_stream(ORG, "fanout"))
                urls = [url] + [u for _p, u in extra]
                fos.append(asyncio.run(fanout(urls, redis_url, client, key, args.subscribers, args.seconds,
                                                api.pid)))
        if args.preload_contacts:
            preload(url, redis_url, key, args.preload_contacts)
        e2e = asyncio.run(event_to_frame(url, redis_url, key, args.rate, args.seconds,
                                         base_total=args.preload_contacts, batch_every=args.batch_every))
        st = stats_reads(url, key)
    finally:
        stop_process(flow)
        stop_process(api)
        for proc, _u in extra:
            stop_process(proc)
        client.close()
        stop_redis(rproc)
    import os
    print(f"## callpulse API benchmark ({os.cpu_count()} CPUs; server, flow, Redis and clients on one machine)\n")
    print("| measure | setting | p50 | p99 | other |")
    print("|---|---|---|---|---|")
    for fo in fos:
        print(f"| SSE fan-out lag | {fo['subscribers']} subscribers, {fo['processes']} API process(es), 4 frames/s for "
              f"{args.seconds:.0f} s | {fo['p50_ms']:.1f} ms | {fo['p99_ms']:.1f} ms | max {fo['max_ms']:.1f} ms; "
              f"{fo['deliveries']}/{fo['expected']} deliveries; all connected in {fo['connect_s']:.1f} s; "
              f"API RSS {fo['rss_connected'] / 1e6:.0f} MB when all connected, {fo['rss_last'] / 1e6:.0f} MB at the "
              f"end (max {fo['rss_max'] / 1e6:.0f} MB) |")
    setting = (f", campaign preloaded with {args.preload_contacts:,} contacts" if args.preload_contacts else "") + \
        (", recovery on" if args.recovery else ", recovery off")
    print(f"| event -> frame | {e2e['rate']:.0f} events/s via POST /v1/events (a POST every "
          f"{args.batch_every:g} s), flow live mode{setting} "
          f"| {e2e['p50_ms']:.0f} ms | {e2e['p99_ms']:.0f} ms | {e2e['frames_matched']}/{e2e['batches']} "
          f"batches, each timed to the first frame that reflects it (frames coalesce to 4/s) |")
    print(f"| GET /stats | sequential, keep-alive, {st['bytes']} B body | {st['p50_ms']:.2f} ms "
          f"| {st['p99_ms']:.2f} ms | {st['rps']:.0f} req/s on one connection |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
