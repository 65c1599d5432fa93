"""Discrete-event core shared by the voice and email campaign simulators.

One campaign = one `CampaignSim`: a heap of timed items, each either an event
to emit or an action (a dialer decision) to run at that instant. Actions only
schedule items at or after their own time, so popping the heap yields events
in non-decreasing `ts`; event ids are numbered in that order, so within a
campaign the output is sorted by (ts, event_id). No I/O, no wall clock: all
randomness comes from one `random.Random` seeded by (seed, org, campaign).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callpulse.simulator.call_window import CallWindow, parse_window

INF = float("inf")

TIMEZONES = ["America/New_York", "America/Chicago", "America/Denver",
             "America/Los_Angeles", "Europe/London"]
# `--tz-mix` presets: the zones contacts live in (each contact draws one).
TZ_PRESETS = {
    "us": ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
           "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu"),
    "eu": ("Europe/London", "Europe/Dublin", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
           "Europe/Athens", "Europe/Helsinki"),
    "world": ("America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo",
              "Europe/London", "Europe/Berlin", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore",
              "Asia/Tokyo", "Australia/Sydney"),
}
# One zone per UTC offset from -11 to +13: at any instant some of them are in the small hours, where
# `--off-hours-pct` puts its contacts when no `--tz-mix` zone is.
NIGHT_ZONES = ("Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
               "America/Denver", "America/Chicago", "America/New_York", "America/Halifax",
               "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Cape_Verde", "Africa/Abidjan",
               "Africa/Lagos", "Africa/Johannesburg", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
               "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane",
               "Pacific/Noumea", "Pacific/Fiji", "Pacific/Tongatapu")
NIGHT_HOURS = (0, 5)  # local [00:00, 05:00): at least 3 h before the default calling hours open (08:00)
FIRST_NAMES = ["Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jamal",
               "Kara", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq"]
LAST_NAMES = ["Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
              "Jones", "Khan", "Lopez", "Murphy", "Nguyen", "Okafor", "Patel", "Reyes", "Smith"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics",
             "Wayne Foods", "Hooli", "Vandelay Imports", "Soylent Labs", "Tyrell Energy"]


def parse_tz_mix(text: str) -> tuple[str, ...]:
    """``"us"`` (a TZ_PRESETS name) or ``"Europe/London,Asia/Tokyo"`` -> the zones; ValueError on an unknown one."""
    if text in TZ_PRESETS:
        return TZ_PRESETS[text]
    zones = tuple(z.strip() for z in text.split(",") if z.strip())
    if not zones:
        raise ValueError(f"tz_mix: want a preset ({', '.join(TZ_PRESETS)}) or a comma-separated list of IANA zones")
    for z in zones:
        try:
            ZoneInfo(z)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"tz_mix: unknown time zone {z!r}") from None
    return zones


class CampaignSim:
    """Base: ids, contacts, batches, time window, contact finalisation, the event heap."""

    channel = "voice"

    def __init__(self, cfg, org_id: str, campaign_id: str, start_ms: int, ordinal: int):
        self.cfg = cfg
        self.org, self.cid = org_id, campaign_id
        self.ordinal = ordinal
        # str seeds are hashed with SHA-512 by `random`, so this is stable across runs.
        self.rng = random.Random(f"{cfg.seed}:{org_id}:{campaign_id}")
        self._rand = self.rng.random
        self.t0 = start_ms
        self.heap: list = []
        self._seq = itertools.count()
        self.n = 0  # events emitted so far: the event_id counter
        self.done = False
        self.stopped = False
        self.expired = False  # window_days used up: leftovers become window_closed
        self.window = self._pick_window()
        n = cfg.contacts
        self.contact_ids = [f"ct-{k + 1:06d}" for k in range(n)]
        self.final = [False] * n
        self.remaining = n
        size = max(1, cfg.batch_size)
        self.batch_of = [k // size for k in range(n)]
        nb = (n + size - 1) // size
        self.batch_ids = [f"b-{b + 1:03d}" for b in range(nb)]
        self.batch_left = [min(size, n - b * size) for b in range(nb)]
        self.batch_started = [False] * nb
        self.batch_closed = [False] * nb
        self.status_ = "draft"  # the dialer's own view of the campaign status
        self.halt_at = INF  # nothing is sent at or after this instant (a pause/stop is due)
        self.controls: list[int] = []  # times of pending pause/stop actions
        self.closes = 0  # calling-window closings seen
        self.booked_until = 0  # latest dispatch time already scheduled
        self.pause_at, self.stop_at = self.control_points()
        # The compliance knobs (tz mix, off-hours contacts, abandoned redials, complaints) draw from their own
        # RNG, so a config without them gives exactly the events it gave before they existed.
        self.xrng = random.Random(f"{cfg.seed}:compliance:{org_id}:{campaign_id}")
        self.tz_mix = parse_tz_mix(cfg.tz_mix) if cfg.tz_mix else ()
        self.night_zones = self._night_zones() if cfg.off_hours_pct else ()

    def ri(self, a: int, b: int) -> int:
        """Uniform integer in [a, b]; `random.randint` is ~10x slower and this is the hot path."""
        return a + int((b - a + 1) * self._rand())

    def pick(self, seq):
        """Uniform element of seq (a faster `random.choice`)."""
        return seq[int(len(seq) * self._rand())]

    # -- heap ------------------------------------------------------------
    def emit(self, ts: int, etype: str, fields: dict | None = None) -> None:
        heapq.heappush(self.heap, (ts, next(self._seq), None, (etype, fields)))

    def act(self, ts: int, fn: Callable, arg=None) -> None:
        heapq.heappush(self.heap, (ts, next(self._seq), fn, arg))

    def _event(self, ts: int, etype: str, fields: dict | None) -> dict:
        self.n += 1
        ev = {"event_id": f"{self.cid}-{self.n:08d}", "type": etype, "ts": ts,
              "org_id": self.org, "campaign_id": self.cid}
        if fields:
            ev.update(fields)
        return ev

    def run(self) -> Iterator[dict]:
        # Setup events precede every heap item, so they bypass the heap.
        for ts, etype, fields in self.setup():
            yield self._event(ts, etype, fields)
        heap, pop = self.heap, heapq.heappop
        cid, org = self.cid, self.org
        n = self.n
        while heap:
            ts, _, fn, arg = pop(heap)
            if fn is None:
                n += 1
                ev = {"event_id": f"{cid}-{n:08d}", "type": arg[0], "ts": ts,
                      "org_id": org, "campaign_id": cid}
                if arg[1]:
                    ev.update(arg[1])
                yield ev
            else:
                fn(ts, arg)
        self.n = n

    # -- profile -----------------------------------------------------------
    def _pick_window(self) -> CallWindow | None:
        spec = self.cfg.window
        if spec == "none":
            return None
        if spec != "auto":
            return CallWindow(*parse_window(spec))
        r = self.rng
        if r.random() < 0.5:
            return None
        tz = r.choice(TIMEZONES)
        # Open at the campaign start (so a live demo dials at once), close 8-12 h later.
        local = datetime.fromtimestamp(self.t0 / 1000, ZoneInfo(tz))
        h0 = max(0, local.hour - self.ri(0, 2))
        h1 = (h0 + self.ri(8, 12)) % 24
        return CallWindow(f"{h0:02d}:00", f"{h1:02d}:{r.choice(['00', '30'])}", tz)

    def phone(self, k: int) -> str:
        if self.window is not None and self.window.tz == "Europe/London":
            return f"+447700900{self.ri(0, 999):03d}"  # Ofcom drama range
        return f"+1{self.ri(201, 989)}555{self.ri(0, 9999):04d}"

    def variables(self, k: int) -> dict:
        r = self.rng
        pick = self.pick
        return {"first_name": pick(FIRST_NAMES), "last_name": pick(LAST_NAMES),
                "company": pick(COMPANIES), "vip": r.random() < 0.05,
                "crm_id": f"crm-{self.ri(100000, 999999)}"}

    def contact_tz(self, k: int) -> str | None:
        """The called person's zone (`contact.added` `tz`): drawn from the mix; an off-hours contact's is one
        where it is the small hours at the campaign start, so its dials fall before calling hours open."""
        x = self.xrng
        if self.night_zones and x.random() * 100 < self.cfg.off_hours_pct:
            return self.night_zones[int(len(self.night_zones) * x.random())]
        if self.tz_mix:
            return self.tz_mix[int(len(self.tz_mix) * x.random())]
        return None

    def _night_zones(self) -> tuple[str, ...]:
        """Zones where the campaign start is within NIGHT_HOURS local: the mix's, else NIGHT_ZONES'."""
        lo, hi = NIGHT_HOURS

        def night(tz: str) -> bool:
            return lo <= datetime.fromtimestamp(self.t0 / 1000, ZoneInfo(tz)).hour < hi

        return tuple(z for z in self.tz_mix if night(z)) or tuple(z for z in NIGHT_ZONES if night(z))

    def created_fields(self) -> dict:
        raise NotImplementedError

    def contact_fields(self, k: int) -> dict:
        raise NotImplementedError

    # -- setup: created, batches + contacts, active --------------------------
    def setup(self) -> Iterator[tuple[int, str, dict | None]]:
        t = self.t0
        fields = self.created_fields()
        if self.cfg.name_prefix:  # tells apart campaigns of one kind from several runs (the demo's seeded one)
            fields["name"] = f"{self.cfg.name_prefix} {fields['name']}"
        yield t, "campaign.created", fields
        k = 0
        n = self.cfg.contacts
        for b, bid in enumerate(self.batch_ids):
            t += self.ri(200, 2000)
            yield t, "batch.created", {"batch_id": bid}
            yield from self.batch_loaded(t, b)
            while k < n and self.batch_of[k] == b:
                t += self.ri(1, 15)  # a bulk CSV import: a few ms per row
                yield t, "contact.added", self.contact_fields(k)
                k += 1
        t += self.ri(2000, 10000)
        yield t, "campaign.status", {"status": "active"}
        self.start_dialing(t + self.ri(100, 1000))

    def batch_loaded(self, ts: int, b: int) -> Iterator[tuple[int, str, dict | None]]:
        return iter(())

    def start_dialing(self, ts: int) -> None:
        raise NotImplementedError

    # -- contacts ----------------------------------------------------------
    def status(self, ts: int, k: int, status: str, **extra) -> None:
        self.emit(ts, "contact.status", {"contact_id": self.contact_ids[k], "status": status, **extra})

    def touch_batch(self, ts: int, k: int) -> None:
        b = self.batch_of[k]
        if not self.batch_started[b]:
            self.batch_started[b] = True
            self.emit(ts, "batch.status", {"batch_id": self.batch_ids[b], "status": "in_progress"})

    def finalize(self, ts: int, k: int, status: str, **extra) -> None:
        """Give contact k its final status (once); close its batch and the campaign when last."""
        if self.final[k]:
            return
        self.final[k] = True
        self.status(ts, k, status, **extra)
        b = self.batch_of[k]
        self.batch_left[b] -= 1
        if self.batch_left[b] == 0 and not self.batch_closed[b]:
            self.batch_closed[b] = True
            self.emit(ts + 1, "batch.status", {"batch_id": self.batch_ids[b], "status": "completed"})
        self.remaining -= 1
        if self.remaining == 0:
            self.finish(ts + 1)

    def finish(self, ts: int) -> None:
        if self.done:
            return
        self.done = True
        if not self.stopped:
            self.emit(ts + self.ri(500, 5000), "campaign.status", {"status": "completed"})

    def cancel_open_batches(self, ts: int) -> None:
        for b, closed in enumerate(self.batch_closed):
            if not closed and self.batch_left[b] > 0:
                self.batch_closed[b] = True
                self.emit(ts, "batch.status", {"batch_id": self.batch_ids[b], "status": "cancelled"})

    # -- window days, pause / stop scenario ---------------------------------------
    def control_points(self) -> tuple[int, int]:
        """Dispatch counts at which the pause and the stop scenarios fire (0 = never)."""
        n = self.cfg.contacts
        pause_at = max(1, int(n * 0.3)) if self.cfg.pause else 0
        stop_at = max(pause_at + 1, int(n * 0.6)) if self.cfg.stop else 0
        return pause_at, stop_at

    def drop_waiting(self, ts: int, status: str) -> None:
        """Finalise every contact that is not mid-call / mid-send."""
        raise NotImplementedError

    def resume_work(self, ts: int) -> None:
        raise NotImplementedError

    def watch_window(self, ts: int) -> None:
        if self.window is not None and self.cfg.window_days > 0:
            self.act(self.window.next_close_after(ts), self._on_close)

    def _on_close(self, ts: int, _arg) -> None:
        if self.done or self.stopped:
            return
        self.closes += 1
        if self.closes < self.cfg.window_days:
            self.act(self.window.next_close_after(ts), self._on_close)
            return
        self.expired = True  # out of calling days: whatever is left is not contacted
        self.drop_waiting(ts + self.ri(100, 2000), "window_closed")

    def after_dispatch(self, now: int, count: int) -> None:
        """Fire the pause/stop scenario once `count` contacts were dispatched."""
        if count == self.pause_at:
            fn = self._pause
        elif count == self.stop_at:
            fn = self._stop
        else:
            return
        # After every dial already reserved (a pump books dials ahead of its own clock).
        at = max(now, self.booked_until) + self.ri(500, 3000)
        self.controls.append(at)
        self.halt_at = min(self.controls)
        self.act(at, fn)

    def _control_fired(self, ts: int) -> None:
        self.controls.remove(ts)
        self.halt_at = min(self.controls, default=INF)

    def _pause(self, ts: int, _arg) -> None:
        self._control_fired(ts)
        if self.done:
            return
        self.status_ = "paused"
        self.emit(ts, "campaign.status", {"status": "paused"})
        self.act(ts + self.ri(180_000, 600_000), self._resume)

    def _resume(self, ts: int, _arg) -> None:
        if self.done or self.stopped:
            return
        self.status_ = "active"
        self.emit(ts, "campaign.status", {"status": "active"})
        self.resume_work(ts + self.ri(100, 1000))

    def _stop(self, ts: int, _arg) -> None:
        self._control_fired(ts)
        if self.done:
            return
        self.status_ = "stopped"
        self.stopped = True
        self.emit(ts, "campaign.status", {"status": "stopped"})
        self.cancel_open_batches(ts + 1)
        self.drop_waiting(ts + 2, "manual_stopped")
