"""`callpulse simulate` — generate a realistic dialer event stream (NDJSON or straight into Redis)."""

from __future__ import annotations

import sys
import time
from collections import Counter

HELP = "Generate simulated campaign events (NDJSON to a file/stdout, or into the ingest streams)."


def add_arguments(parser) -> None:
    g = parser.add_argument_group("scenario")
    g.add_argument("--seed", type=int, default=1, help="random seed (same seed = same events; default 1)")
    g.add_argument("--orgs", type=int, default=1, help="number of orgs (default 1)")
    g.add_argument("--campaigns", type=int, default=1, help="campaigns per org (default 1)")
    g.add_argument("--contacts", type=int, default=200, help="contacts per campaign (default 200)")
    g.add_argument("--channel", choices=["voice", "email", "mixed"], default="voice")
    g.add_argument("--start", default=None,
                   help="time of the first event: epoch ms or RFC 3339 (default: a fixed instant, "
                        "2026-05-08T13:00:00Z, at --speed max; the current time otherwise)")
    g.add_argument("--past", default=None, metavar="DURATION",
                   help="a seeded past: the run starts this long (e.g. 90m, 6h, 2d, or seconds) before --start, "
                        "and the events of that past go out at once before pacing begins")
    g.add_argument("--stagger", type=float, default=30.0, help="seconds between campaign starts (default 30)")
    g.add_argument("--batch-size", type=int, default=250, help="contacts per batch (default 250)")
    g.add_argument("--window", default="auto",
                   help="calling window: auto (some campaigns get one) | none | HH:MM-HH:MM@Area/City")
    g.add_argument("--window-days", type=int, default=3,
                   help="window closings before leftovers become window_closed (0 = never; default 3)")
    g.add_argument("--abandon-prob", type=float, default=0.01,
                   help="probability a human-answered call is abandoned (default 0.01; > 0.03 breaches)")
    g.add_argument("--abandon-ramp", type=float, default=None, metavar="P",
                   help="voice: the abandon probability rises linearly from --abandon-prob to P by the last "
                        "dispatch (a rising abandon trend, for the breach forecast)")
    g.add_argument("--abandon-from", choices=("answer", "greeting_end", "mixed"), default="answer",
                   help="voice campaigns' abandon_from: where the abandon threshold is measured from "
                        "(mixed: each campaign picks one; default answer)")
    g.add_argument("--retry-delay", type=float, default=900.0, help="mean retry delay in seconds (default 900)")
    g.add_argument("--email-step-delay", type=float, default=14400.0,
                   help="seconds between email sequence steps (default 14400)")
    g.add_argument("--pause", action="store_true", help="pause each campaign at 30%% dispatched, then resume")
    g.add_argument("--stop", action="store_true", help="stop each campaign at 60%% dispatched")
    g.add_argument("--restart", action="store_true",
                   help="voice: once a campaign completes, restart it as run 2 over the contacts whose last call "
                        "ended busy or unanswered")
    g.add_argument("--withdraw-run", action="store_true",
                   help="voice: once a campaign completes, prepare its next run, then withdraw it undialed")
    g.add_argument("--tag", default=None, help="id tag in campaign ids (default s<seed>)")
    g.add_argument("--name-prefix", default=None, metavar="TEXT",
                   help="put TEXT before each campaign's name (tells apart campaigns of several runs)")
    c = parser.add_argument_group("compliance (docs/simulator.md)")
    c.add_argument("--tz-mix", default=None, metavar="PRESET|ZONE,ZONE",
                   help="voice: contacts live in these zones (contact.added tz): a preset (us, eu, world) or a "
                        "comma-separated list of IANA zones (default: no tz)")
    c.add_argument("--off-hours-pct", type=float, default=0.0, metavar="P",
                   help="voice: %% of contacts in a zone where the campaign starts in the small hours, so their "
                        "dials break the calling hours (default 0)")
    c.add_argument("--redial-abandoned-pct", type=float, default=None, metavar="P",
                   help="voice: %% of abandoned contacts (with attempts left) redialed 1-10 min later, within the "
                        "72 h redial guard; the rest wait until it has passed (default: retried like any "
                        "unanswered contact)")
    c.add_argument("--complaint-pct", type=float, default=0.0, metavar="P",
                   help="email: %% of delivered messages reported as spam, 5 s-10 min later (default 0)")
    c.add_argument("--agents", type=int, default=0, metavar="N",
                   help="voice: a floor of N human agents (agent.state: ready, on_call, wrap, paused with a "
                        "reason, team breaks that leave it short-staffed) and a bot line take the answered "
                        "calls; a call nobody is free for is abandoned (default 0: no agents)")
    f = parser.add_argument_group("faults")
    f.add_argument("--duplicate-pct", type=float, default=0.0, help="%% of events sent twice (same event_id)")
    f.add_argument("--duplicate-delay-ms", type=int, default=2000, help="max delay of a duplicate (default 2000)")
    f.add_argument("--jitter-ms", type=int, default=0, help="out-of-order delivery: arrival = ts + U(0, J)")
    f.add_argument("--malformed-pct", type=float, default=0.0, help="%% of extra invalid events mixed in")
    o = parser.add_argument_group("output")
    dest = o.add_mutually_exclusive_group()
    dest.add_argument("--out", default="-", metavar="FILE|-", help="NDJSON output file (default - = stdout)")
    dest.add_argument("--redis", action="store_true",
                      help="append straight to the ingest streams at CALLPULSE_REDIS_URL (no validation)")
    o.add_argument("--speed", default="max", metavar="max|realtime|FACTOR",
                   help="max = as fast as possible; realtime = at event time; FACTOR = that many times faster")
    o.add_argument("--limit", type=int, default=None, help="stop after this many events")
    o.add_argument("--partitions", type=int, default=None, help="ingest partitions (default CALLPULSE_PARTITIONS or 8)")
    o.add_argument("--maxlen", type=int, default=None, help="trim each stream to about this many entries")


def _start_ms(text: str | None, paced: bool) -> int | None:
    if text is None:
        return int(time.time() * 1000) if paced else None
    if text.lstrip("-").isdigit():
        return int(text)
    from engine.validation.events import EventRejected, parse_time

    try:
        return parse_time(text, "start")
    except EventRejected as exc:
        raise ValueError(exc.reason) from None


def parse_duration_ms(text: str) -> int:
    """``"90m"``, ``"6h"``, ``"2d"``, ``"30s"`` or plain seconds -> ms (ValueError when not >= 0)."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    unit = units.get(text[-1:])
    try:
        value = float(text[:-1] if unit else text)
    except ValueError:
        raise ValueError(f"bad duration {text!r}: want e.g. 90m, 6h, 2d or seconds") from None
    if not value >= 0:
        raise ValueError(f"bad duration {text!r}: must be >= 0")
    return int(value * (unit or 1000))


def run(args) -> int:
    from callpulse.simulator import SimConfig, Simulator
    from callpulse.simulator.pacing import parse_speed

    try:
        factor = parse_speed(args.speed)
        start = _start_ms(args.start, factor is not None)
        past_ms = parse_duration_ms(args.past) if args.past else 0
        if past_ms:
            from callpulse.simulator.generator import DEFAULT_START_MS

            start = (DEFAULT_START_MS if start is None else start) - past_ms
        kw = {} if start is None else {"start_ms": start}
        cfg = SimConfig(seed=args.seed, orgs=args.orgs, campaigns=args.campaigns, contacts=args.contacts,
                        channel=args.channel, stagger_s=args.stagger, batch_size=args.batch_size,
                        window=args.window, window_days=args.window_days, abandon_prob=args.abandon_prob,
                        abandon_ramp=args.abandon_ramp, abandon_from=args.abandon_from,
                        retry_delay_s=args.retry_delay, email_step_delay_s=args.email_step_delay,
                        pause=args.pause, stop=args.stop, restart=args.restart,
                        withdraw_run=args.withdraw_run, tag=args.tag, name_prefix=args.name_prefix,
                        duplicate_pct=args.duplicate_pct,
                        duplicate_delay_ms=args.duplicate_delay_ms, jitter_ms=args.jitter_ms,
                        malformed_pct=args.malformed_pct, tz_mix=args.tz_mix, off_hours_pct=args.off_hours_pct,
                        redial_abandoned_pct=args.redial_abandoned_pct, complaint_pct=args.complaint_pct,
                        agents=args.agents, **kw)
        sim = Simulator(cfg)
    except ValueError as exc:
        print(f"callpulse simulate: {exc}", file=sys.stderr)
        return 2

    stream = iter(sim)
    if args.limit is not None:
        from itertools import islice

        stream = islice(stream, max(0, args.limit))
    pace_from = cfg.start_ms + past_ms  # events before this instant (the seeded past) go out at once
    if args.redis:
        return _to_redis(args, sim, stream, factor, pace_from)
    return _to_file(args, sim, stream, factor, pace_from)


def _to_file(args, sim, stream, factor, start_ms) -> int:
    import orjson

    try:
        out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    except OSError as exc:
        print(f"callpulse simulate: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    buf: list[bytes] = []

    def flush() -> None:
        out.write(b"".join(buf))
        out.flush()
        buf.clear()

    if factor is not None:
        stream = _paced(stream, factor, start_ms, flush)
    n = 0
    dumps = orjson.dumps
    try:
        for item in stream:
            buf.append(item.encode() + b"\n" if isinstance(item, str) else dumps(item) + b"\n")
            n += 1
            if len(buf) >= 4096:
                flush()
        flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    _summary(sim, n, None, args.out if args.out != "-" else "stdout")
    return 0


def _paced(stream, factor, start_ms, flush):
    from callpulse.simulator.pacing import paced

    return paced(stream, factor, start_ms, before_sleep=flush)


def _to_redis(args, sim, stream, factor, start_ms) -> int:
    import redis

    from callpulse.settings import CliSettings
    from engine.validation.events import EVENT_TYPES
    from flows.ingest_writer import StreamAppender

    settings = CliSettings.from_env()
    client = settings.connect()
    types: Counter = Counter()
    try:
        from flows.patience import Patience

        # a Redis restart mid-run is waited out (flows/patience.py), not the end of the simulation
        writer = StreamAppender(client, partitions=settings.partitions_or(args.partitions), maxlen=args.maxlen,
                                patience=Patience("simulate", settings.patience))
        if factor is not None:
            stream = _paced(stream, factor, start_ms, writer.flush)
        for item in stream:
            etype = item.get("type") if isinstance(item, dict) else None
            types[etype if isinstance(etype, str) and etype in EVENT_TYPES else "(unknown type / not an event)"] += 1
            writer.add(item)
        writer.flush()
    except redis.RedisError as exc:
        print(f"callpulse simulate: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    _summary(sim, sum(types.values()), types, f"redis ({len(writer.appended)} partitions)",
             per_partition=writer.appended)
    return 0


def _summary(sim, n, types, where, per_partition=None) -> None:
    import orjson

    fs = sim.fault_stats
    line = f"callpulse simulate: {n} events -> {where}"
    if fs["duplicates"] or fs["malformed"]:
        line += f" (incl. {fs['duplicates']} duplicates, {fs['malformed']} malformed)"
    print(line, file=sys.stderr)
    if types is not None:
        print(orjson.dumps({"types": dict(sorted(types.items())), "partitions": per_partition}).decode(),
              file=sys.stderr)
