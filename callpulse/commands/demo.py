"""`callpulse demo` — the main job: Redis, the flow, the API and a simulated live campaign set.

Starts (or reuses) Redis, then runs the product's own commands as child
processes: `callpulse flow` (live mode), `callpulse api` (explicit dev mode,
with a demo key) and `callpulse simulate --redis --speed realtime` (a dialer
writing into the ingest streams as the calls happen). It prints the
dashboard and API URLs and a ready API key, then one line of live numbers
per campaign every few seconds, read back from what the flow wrote to Redis.
Ctrl-C (or `--duration`) stops everything it started, flow last so its
final frames are written. Every child runs in its own session, so a Ctrl-C in
the terminal reaches only the demo, which stops them in order.

The simulated dialers break the rules a regulator counts, so each compliance guard has something to
show within a minute: contacts live in several US zones and some are dialed in their small hours
(calling hours), abandoned numbers are redialed within the 72 h guard, and some emails are reported as
spam. One more voice campaign (tag suffix ``p``) starts with a seeded past: its last ``--past`` of
calls is written at once, so its abandon rate is judged from the first frame instead of "too few to
judge" (the email campaign gets a few minutes of past too, so its complaints show at once).

A Redis the demo starts itself begins empty (its files from an earlier demo are
removed first, unless `--keep`), so a re-run does not show the stale campaigns
of the last one; a Redis it reuses is never wiped.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

HELP = "Run the main job: Redis, the flow, the API and a simulated live campaign set; prints the URLs."
# The compliance knobs of the demo's dialers (docs/simulator.md *Compliance*).
VOICE_KNOBS = ("--tz-mix", "us", "--off-hours-pct", "10", "--redial-abandoned-pct", "50", "--agents", "8")  # staffed
EMAIL_KNOBS = ("--complaint-pct", "4", "--past", "4m")
SEEDED_CONTACTS = 5000  # the seeded campaign: enough contacts to keep dialing after its past


def add_arguments(parser) -> None:
    parser.add_argument("--campaigns", type=int, default=3, help="campaigns, about 2 voice : 1 email (default 3)")
    parser.add_argument("--contacts", type=int, default=300, help="contacts per campaign (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--abandon-prob", type=float, default=0.02,
                        help="share of human-answered calls abandoned (default 0.02; above 0.03 breaches)")
    parser.add_argument("--past", default="2h",
                        help="the seeded voice campaign's past, written at start (e.g. 90m, 2h; 0 = no seeded "
                             "campaign; default 2h)")
    parser.add_argument("--host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument("--every", type=float, default=5, help="seconds between status lines (default 5)")
    parser.add_argument("--data-dir", default="var", help="where a Redis started by the demo keeps its files")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data of an earlier demo in a Redis the demo starts (default: start empty)")


def ensure_redis(url: str, data_dir: Path, *, keep: bool = False) -> None:
    """Reuse the Redis at ``url`` when it answers, else start redis-server on its port (empty unless ``keep``)."""
    import shutil

    from callpulse.redis_local import is_reachable, start_redis, stop_redis

    if is_reachable(url):
        print(f"redis:      reusing {url} (its existing campaigns stay)")
        return
    parsed = urlparse(url)
    if parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise SystemExit(f"redis: {url} does not answer and is not local, so the demo cannot start it")
    port = parsed.port or 6379
    if not keep and (data_dir / "redis").exists():
        shutil.rmtree(data_dir / "redis")  # a fresh dataset: no stale campaigns from the last demo
    proc = start_redis(port, data_dir / "redis", persist=True)
    atexit.register(stop_redis, proc)
    print(f"redis:      started redis-server on 127.0.0.1:{port} (data in {data_dir / 'redis'})")


class Children:
    """The demo's child processes, stopped in reverse order of start; each gets ``env`` (the demo's Redis URL)."""

    def __init__(self, logs: Path, env: dict[str, str] | None = None):
        self.logs = logs
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        exe = str(Path(sys.executable).with_name("callpulse"))
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([exe, *args], stdout=log, stderr=log, start_new_session=True, env=self.env)
        self.procs.append((name, proc))
        return proc

    def failed(self) -> str | None:
        for name, proc in self.procs:
            if proc.poll() not in (None, 0) and not name.startswith("simulate"):
                return f"{name} exited with code {proc.returncode} (see {self.logs / (name + '.log')})"
        return None

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.procs.clear()


def start_children(children: Children, args, tag: str, past_ms: int) -> None:
    """The flow, the API and the simulated dialers (one process each)."""
    # Live mode without recovery: the demo's Redis and flow start together, and a restart
    # re-reads the streams (docs/flow.md).
    children.start("flow", "flow", "--no-recovery")
    children.start("api", "api", "--host", args.host, "--port", str(args.port), "--dev")
    # about 2 voice : 1 email, at least one email campaign from 2 campaigns on
    n_email = 0 if args.campaigns < 2 else max(1, round(args.campaigns / 3))
    common = ("simulate", "--redis", "--speed", "realtime", "--window", "none", "--seed", str(args.seed),
              "--abandon-prob", str(args.abandon_prob))
    for channel, n, suffix in (("voice", args.campaigns - n_email, "v"), ("email", n_email, "e")):
        if n:
            children.start(f"simulate-{channel}", *common, "--channel", channel, "--campaigns", str(n),
                           "--contacts", str(args.contacts), "--tag", tag + suffix,
                           *(VOICE_KNOBS if channel == "voice" else EMAIL_KNOBS))
    if past_ms > 0:
        # one voice campaign with a seeded past: its abandon hero is judged from the first frame
        children.start("simulate-past", *common, "--channel", "voice", "--campaigns", "1",
                       "--contacts", str(max(args.contacts, SEEDED_CONTACTS)), "--tag", tag + "p",
                       "--past", args.past, *VOICE_KNOBS[:4], "--redial-abandoned-pct", "100",
                       "--name-prefix", "Seeded")


def print_urls(base: str, data_dir: Path) -> None:
    from api.auth import DEV_KEY  # accepted only by `callpulse api --dev`, which the demo runs

    # the key in the fragment: never sent to the server, kept out of logs and Referer (docs/dashboard.md)
    print(f"dashboard:  {base}/#key={DEV_KEY}")
    print(f"API:        {base}/v1/campaigns   (OpenAPI: {base}/docs)")
    print(f"API key:    {DEV_KEY} with header X-Org: org-1   (dev mode)   e.g.")
    print(f"            curl -H 'Authorization: Bearer {DEV_KEY}' -H 'X-Org: org-1' {base}/v1/campaigns")
    print(f"logs:       {data_dir / 'logs'}/   — Ctrl-C stops everything")
    sys.stdout.flush()


def run(args) -> int:
    import redis

    from callpulse.commands.demo_status import StatusPrinter
    from callpulse.commands.simulate import parse_duration_ms
    from callpulse.settings import CliSettings, child_env

    try:
        past_ms = parse_duration_ms(args.past)
    except ValueError as exc:
        raise SystemExit(f"callpulse demo: --past: {exc}") from None
    settings = CliSettings.from_env()
    url = settings.redis_url
    data_dir = Path(args.data_dir)
    ensure_redis(url, data_dir, keep=args.keep)
    client = settings.connect()
    tag = f"demo{int(time.time()) % 100_000}"  # fresh campaign ids per run: a reused Redis keeps old ones apart

    children = Children(data_dir / "logs", env=child_env(CALLPULSE_REDIS_URL=url))  # the same Redis, default or not
    base = f"http://{args.host}:{args.port}"
    status = StatusPrinter(client, "org-1", base)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    # Ctrl-C and SIGTERM both end the loop below; the children (own sessions) are stopped in order
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        start_children(children, args, tag, past_ms)
        print_urls(base, data_dir)
        started = time.monotonic()
        next_status = started + args.every
        while not stopping:
            if args.duration and time.monotonic() - started >= args.duration:
                break
            problem = children.failed()
            if problem:
                print(f"demo: {problem}", file=sys.stderr)
                return 1
            if time.monotonic() >= next_status:
                status.print()
                next_status += args.every
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        print("demo: stopping the simulator, the API and the flow…")
        sys.stdout.flush()
        children.stop()
    try:
        status.print()
    except redis.RedisError as exc:  # Redis went away meanwhile: nothing more to show
        print(f"demo: final status unavailable ({exc})")
    return 0
