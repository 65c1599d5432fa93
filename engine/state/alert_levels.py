"""`CampaignState`'s alert levels and abandon forecast: evaluating them as the window counts move,
the breach times, and the alert records it queues (engine.state.campaign composes this mixin)."""

from __future__ import annotations

from engine.compliance.forecast import (
    MIN_TREND_ANSWERS,
    TREND_WINDOW_MS,
    ForecastAlarm,
    breach_at,
    breach_in_s,
    breach_time_ms,
    expected_answers,
    span_ms,
    within_horizon,
)
from engine.compliance.levels import FINAL_STATUSES, AlertTracker
from engine.state.grid import HOUR, MINUTE, NEVER, SECOND
from engine.state.parts import StateAttributes
from engine.state.windows import RollingPair
from engine.storage.keys import alert_id
from engine.storage.sealed_layouts import F_HUMAN, OUTCOME_CODE
from engine.timefmt import format_time
from engine.vocab import COMPLAINT_WINDOWS, FORECAST_WINDOWS, WINDOWS


class AlertsAndForecast(StateAttributes):
    def _init_alerts(self) -> None:
        """The abandon windows, alert trackers, forecast and complaint windows this part owns."""
        # Abandon windows with running totals (alerts are evaluated after every event).
        self.today = RollingPair(MINUTE, None, retain_buckets=26 * 60)
        self.w24h = RollingPair(MINUTE, 24 * 60)
        self.w30d = RollingPair(HOUR, 30 * 24)
        self.day_start = None
        self.day_end = None
        self.day_tz = None
        self.trackers = {w: AlertTracker(w) for w in WINDOWS}
        # (abandoned, human_answered) of the forecast's trend: the trailing 15 min on the 1 s grid
        self.trend = RollingPair(SECOND, TREND_WINDOW_MS // SECOND)
        self.forecast_alarms = {w: ForecastAlarm() for w in FORECAST_WINDOWS}
        # The forecast changes with its inputs (window counts, levels, ceiling, first dial: they mark it
        # stale) and with time alone (the trend's 1 s grid, its span, the `today` horizon): it needs no
        # re-evaluation before `forecast_recheck_at` unless it is stale.
        self.forecast_stale = True
        self.forecast_recheck_at = 0
        self.forecast_reads_e = False  # a forecast t* > 0 awaits pacing's E (contacts then re-mark it stale)
        self.pending_alerts: list[dict] = []
        self.alerts_dirty = True  # window inputs or the ceiling changed since the last evaluation
        self._minute = None

        # Spam complaints: (complained, delivered) of the 30-day window (1 h grid); lifetime = email_counts.
        self.complaints_30d = RollingPair(HOUR, 30 * 24)
        self.complaint_trackers = {w: AlertTracker(w) for w in COMPLAINT_WINDOWS}
        self.complaints_dirty = True  # their inputs changed since the last evaluation

    def _rebuild_trend(self) -> None:
        """The trend's buckets from the attempts (open and sealed) that ended in its window."""
        self.trend = RollingPair(SECOND, TREND_WINDOW_MS // SECOND)
        if self.now is None:
            return
        self.trend.advance(self.now)
        lo = self.now - TREND_WINDOW_MS - SECOND
        for a in self.attempts.values():
            if a.end is not None and a.human_at_end and a.end[0] >= lo:
                self.trend.add(a.end[0], 1 if a.outcome == "abandoned" else 0, 1)
        if self.sealed.live:
            end, mask, outcome = self.sealed.column("end"), self.sealed.column("mask"), self.sealed.column("outcome")
            rows = self.sealed.live_rows() & (mask & F_HUMAN != 0) & (end >= lo)
            abandoned = OUTCOME_CODE["abandoned"]
            for ets, o in zip(end[rows].tolist(), outcome[rows].tolist()):
                self.trend.add(ets, 1 if o == abandoned else 0, 1)
        self.__dict__.setdefault("activity_out", [])  # pickled before the activity log

    def window_counts(self) -> dict[str, tuple[int, int]]:
        return {
            "lifetime": (self.abandoned, self.human),
            "today": (self.today.a, self.today.h),
            "24h": (self.w24h.a, self.w24h.h),
            "30d": (self.w30d.a, self.w30d.h),
        }

    def complaint_counts(self) -> dict[str, tuple[int, int]]:
        """(complained, delivered) of each spam-complaint window."""
        ec = self.email_counts
        return {"lifetime": (ec["email.complained"], ec["email.delivered"]),
                "30d": (self.complaints_30d.a, self.complaints_30d.h)}

    def expected_human_answers(self) -> int:
        """Pacing's E: open contacts × the human answers a finished contact took (engine.compliance.forecast)."""
        open_ = self.open_contacts
        return expected_answers(open_, len(self.table) - open_, self.final_human)

    def _evaluate_alerts(self, at: int) -> None:
        if not self.alerts_dirty:
            return  # same inputs from the same levels give the same levels
        self.alerts_dirty = False
        cfg = self.config.current
        ceiling = cfg.ceiling
        final = self.status in FINAL_STATUSES
        for window, (a, h) in self.window_counts().items():
            tracker = self.trackers[window]
            change = tracker.evaluate(a, h, ceiling, self.min_sample, final)
            if change is None:
                continue
            self.pending_alerts.append({
                "alert_id": alert_id(self.org_id, self.campaign_id, window, tracker.changes),
                "kind": "level",
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "window": window,
                "from": change[0],
                "to": change[1],
                "rate": a / h if h else 0.0,
                "abandoned": a,
                "human_answered": h,
                "ceiling": float(self.config.current.abandon_ceiling),
                "at": format_time(at),
            })
        self._evaluate_complaints(at)

    def _evaluate_complaints(self, at: int) -> None:
        """Spam-complaint levels (after the abandon levels of the same event or tick)."""
        self.complaints_dirty = False
        trackers = self.complaint_trackers
        if not self.email_counts["email.complained"] and trackers["lifetime"].level == trackers["30d"].level == "ok":
            return  # no complaint: a rate of 0 stays ok (the ceiling and the warning are above 0)
        cfg = self.config.current
        final = self.status in FINAL_STATUSES
        c_ceiling, c_warning = cfg.complaint_limits
        for window, (c, d) in self.complaint_counts().items():
            tracker = self.complaint_trackers[window]
            change = tracker.evaluate_complaints(c, d, c_ceiling, c_warning, final)
            if change is None:
                continue
            self.pending_alerts.append({
                "alert_id": alert_id(self.org_id, self.campaign_id, f"complaint-{window}", tracker.changes),
                "kind": "complaint_level",
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "window": window,
                "from": change[0],
                "to": change[1],
                "rate": c / d if d else 0.0,
                "complained": c,
                "delivered": d,
                "ceiling": float(cfg.complaint_ceiling),
                "at": format_time(at),
            })

    def first_dial_ts(self) -> int | None:
        """The campaign's earliest dial (for an email campaign, its earliest dial or send)."""
        if self.config.current.channel == "email" and self.first_send is not None:
            return self.first_send if self.first_dial is None else min(self.first_dial, self.first_send)
        return self.first_dial

    def breach_times(self) -> dict[str, tuple[int, int] | None]:
        """Exact t* (ms) of the forecast per window, None when no breach is forecast within its horizon."""
        now = self.now
        assert now is not None  # (judged only once events came)
        t_ms = span_ms(now, self.first_dial_ts())
        today, w30d, trackers = self.today, self.w30d, self.trackers
        active = self.status == "active"
        key = (self.trend.a, self.trend.h, t_ms, today.a, today.h, trackers["today"].level,
               w30d.a, w30d.h, trackers["30d"].level, self.config.current.ceiling, self.min_sample, active)
        cache = self.__dict__.get("_breach_cache")
        if cache is None or cache[0] != key:  # t* (before pacing's limit) depends on these only
            a, h, ceiling, m = key[0], key[1], key[9], self.min_sample
            cache = self._breach_cache = (key, {
                "today": breach_time_ms(key[5] == "breach", key[3], key[4], a, h, t_ms, ceiling, m, active),
                "30d": breach_time_ms(key[8] == "breach", key[6], key[7], a, h, t_ms, ceiling, m, active),
            })
        raw = cache[1]
        if raw["today"] is None and raw["30d"] is None:
            self.forecast_reads_e = False
            return {"today": None, "30d": None}
        # No t* where the answers it needs, η·t*, exceed pacing's E: only a t* > 0 reads E (so only then does
        # a contact's status, which moves E, need the forecast evaluated again: `forecast_reads_e`).
        self.forecast_reads_e = False
        out = {}
        expected = None
        for window in ("today", "30d"):
            t = raw[window]
            if t is not None and t[0] > 0:
                self.forecast_reads_e = True
                if expected is None:
                    expected = self.expected_human_answers()
                if key[1] * t[0] > expected * t_ms * t[1]:
                    t = None
            out[window] = within_horizon(window, t, now, self.day_end)
        return out

    def _evaluate_forecast(self, at: int) -> None:
        """Raise a forecast alert when a window's breach first comes within 15 minutes (SPEC §3)."""
        alarms = self.forecast_alarms
        if alarms["today"].armed and alarms["30d"].armed and (
                # A trend too thin to extrapolate, or a campaign that is not active: a breach is forecast
                # only for a window breached now (t* = 0, which does not fire). Both breached: t* = 0 in
                # both. Only a count, level or status change alters that.
                self.trend.h < MIN_TREND_ANSWERS or self.status != "active"
                or self.trackers["today"].level == "breach" and self.trackers["30d"].level == "breach"):
            self.forecast_stale = False
            self.forecast_recheck_at = NEVER
            self.forecast_reads_e = False
            return
        times = self.breach_times()
        self._plan_forecast_recheck()
        for window, t_star in times.items():
            in_breach = self.trackers[window].level == "breach"
            if not alarms[window].update(t_star, in_breach):
                continue
            assert t_star is not None and self.now is not None  # (an alarm fires on a forecast breach)
            a, h = (self.today.a, self.today.h) if window == "today" else (self.w30d.a, self.w30d.h)
            self.pending_alerts.append({
                "alert_id": alert_id(self.org_id, self.campaign_id, f"forecast-{window}", alarms[window].fired),
                "kind": "forecast",
                "campaign_id": self.campaign_id,
                "org_id": self.org_id,
                "window": window,
                "breach_in_s": breach_in_s(t_star),
                "breach_at": format_time(breach_at(t_star, self.now)),
                "rate": a / h if h else 0.0,
                "abandoned": a,
                "human_answered": h,
                "ceiling": float(self.config.current.abandon_ceiling),
                "at": format_time(at),
            })

    def _plan_forecast_recheck(self) -> None:
        """When, with no input changed (a change marks the forecast stale, and so does an end leaving
        the trend's window), the forecast can next differ: at the next ms while the trend's span still
        grows (the first 15 minutes of dialing), or when `today`'s breach_at reaches local midnight."""
        now = self.now
        assert now is not None
        self.forecast_stale = False
        first = self.first_dial_ts()
        if first is not None and now - first < TREND_WINDOW_MS:
            self.forecast_recheck_at = now + 1
            return
        recheck = NEVER
        cache = self.__dict__.get("_breach_cache")
        raw = cache[1]["today"] if cache is not None else None
        if raw is not None and self.day_end is not None:
            recheck = min(recheck, self.day_end - -(-raw[0] // raw[1]))
        self.forecast_recheck_at = max(recheck, now + 1)

    def take_alerts(self) -> list[dict]:
        """Alert records produced since the last call (the caller publishes them)."""
        out, self.pending_alerts = self.pending_alerts, []
        return out
