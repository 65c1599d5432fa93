"""Runs of a campaign (restarts): the run table and per-run attempt figures.

A dialer restarts a finished campaign with `campaign.run_started` (run N ≥ 2)
and may withdraw a prepared restart with `campaign.run_cancelled`; per run
number the latest of the two (by ts, event_id) decides. The runs are run 1
(no event) and every run whose deciding event is a start, ordered by
(start, run) with run 1 first. An attempt with a `call.dialed` belongs to the
last run in that order whose start ≤ its dial ts, so each run owns one
half-open interval of dial times: [its start, the next run's start).

`CampaignState._attempt_contrib` hands every dialed attempt's contribution
here too (`contrib`), so the per-run figures follow the same retract-and-add
as the lifetime ones. When a run event moves a boundary (rare), attempts may
change runs — sealed ones too, since a cancel or a newer start of a run that
began long ago can arrive within the lateness bound — so the figures are
rebuilt from the open attempts and the sealed columns (`rebuild`).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from engine.storage.contact_table import NO_TS
from engine.storage.sealed_base import DEAD
from engine.storage.sealed_layouts import F_ANS, F_ANSWERED, F_DIAL, F_HUMAN
from engine.timefmt import format_time
from engine.vocab import OUTCOMES

RUN_EVENTS = ("campaign.run_started", "campaign.run_cancelled")

# One run's figures: a list of ints (compact to pickle), then first dial / last end (None when unknown)
# and whether a retraction may have left either one wrong (recomputed before they are read).
ATTEMPTS, ENDED, ANSWERED, HUMAN, AHT_SUM, AHT_N, RING_SUM, RING_N = range(8)
OUTCOME_AT = {o: 8 + i for i, o in enumerate(OUTCOMES)}
FIRST, LAST, FIRST_STALE, LAST_STALE = 14, 15, 16, 17
CONNECTED, ABANDONED = OUTCOME_AT["connected"], OUTCOME_AT["abandoned"]


def _zero() -> list:
    return [0] * 14 + [None, None, False, False]


class Runs:
    def __init__(self):
        self.decisions: dict[int, tuple[tuple[int, str], bool]] = {}  # run -> (deciding key, is a start)
        self.starts: list[int] = []  # start ts of the started runs, in run order
        self.numbers: list[int] = [1]  # run numbers in run order (run 1 first)
        self.figures: dict[int, list] = {1: _zero()}

    # ------------------------------------------------------------ the table

    def run_of(self, dial_ts: int) -> int:
        """The run an attempt dialed at ``dial_ts`` belongs to."""
        return self.numbers[bisect_right(self.starts, dial_ts)] if self.starts else 1

    def start_of(self, run: int):
        d = self.decisions.get(run)
        return d[0][0] if d is not None and d[1] else None

    def apply(self, ev: dict, key: tuple, attempts: dict, sealed) -> bool:
        """Apply a run event; True when the runs or their boundaries changed (figures rebuilt)."""
        run = ev["run"]
        current = self.decisions.get(run)
        if current is not None and key < current[0]:
            return False  # an older decision: the latest counts
        before = self.start_of(run)
        self.decisions[run] = (key, ev["type"] == "campaign.run_started")
        if self.start_of(run) == before:
            return False
        order = sorted((k[0], n) for n, (k, started) in self.decisions.items() if started)
        self.starts = [s for s, _n in order]
        self.numbers = [1] + [n for _s, n in order]
        self.rebuild(attempts, sealed)
        return True

    # ------------------------------------------------------------ figures

    def contrib(self, a, s: int, dial_part, answer_part, end_part) -> None:
        """Add (s=1) or retract (s=-1) parts of a dialed attempt's contribution (see
        CampaignState._attempt_contrib: the same parts, over the attempt's run)."""
        dts = a.dial[0]
        f = self.figures[self.numbers[bisect_right(self.starts, dts)] if self.starts else 1]
        if dial_part:
            f[ATTEMPTS] += s
            _extreme(f, FIRST, FIRST_STALE, dts, s, -1)
        if answer_part and a.ans is not None:
            f[RING_SUM] += s * (a.ans[0] - dts)
            f[RING_N] += s
        if end_part and a.end is not None:
            o = OUTCOME_AT[a.outcome]
            f[ENDED] += s
            f[o] += s
            if a.answered_at_end:
                f[ANSWERED] += s
            if a.human_at_end:
                f[HUMAN] += s
            if o == CONNECTED:
                f[AHT_SUM] += s * (a.end[0] - a.bridge[0] + a.wrap)
                f[AHT_N] += s
            _extreme(f, LAST, LAST_STALE, a.end[0], s, 1)

    def rebuild(self, attempts: dict, sealed) -> None:
        self.figures = self._scan(attempts, sealed)

    def refresh(self, attempts: dict, sealed) -> None:
        """Recompute first dial / last end where a retraction may have moved them (rare)."""
        stale = [n for n, f in self.figures.items() if f[FIRST_STALE] or f[LAST_STALE]]
        if not stale:
            return
        scanned = self._scan(attempts, sealed)
        for n in stale:
            f, g = self.figures[n], scanned[n]
            f[FIRST], f[LAST], f[FIRST_STALE], f[LAST_STALE] = g[FIRST], g[LAST], False, False

    def _scan(self, attempts: dict, sealed) -> dict[int, list]:
        """Every run's figures from scratch: open attempts one by one, sealed ones by columns."""
        saved, self.figures = self.figures, {n: _zero() for n in self.numbers}
        try:
            for a in attempts.values():
                if a.dial is not None:
                    self.contrib(a, 1, True, True, True)
            if sealed.live:
                self._add_sealed(sealed)
            return self.figures
        finally:
            self.figures = saved

    def _add_sealed(self, sealed) -> None:
        mask = sealed.column("mask")
        rows = (mask != DEAD) & ((mask & F_DIAL) != 0)
        mask = mask[rows]
        dial, ans, bridge, end = (sealed.column(c)[rows] for c in ("dial", "ans", "bridge", "end"))
        wrap, outcome = sealed.column("wrap")[rows], sealed.column("outcome")[rows]
        which = np.searchsorted(np.array(self.starts, dtype=np.int64), dial, side="right")
        for i in np.unique(which):
            sel = which == i
            f = self.figures[self.numbers[int(i)]]
            d, e, m, o = dial[sel], end[sel], mask[sel], outcome[sel]
            f[ATTEMPTS] += int(sel.sum())
            f[ENDED] += int(sel.sum())  # a sealed attempt has ended
            for code, n in enumerate(np.bincount(o[o >= 0], minlength=len(OUTCOMES))):
                f[8 + code] += int(n)
            f[ANSWERED] += int(((m & F_ANSWERED) != 0).sum())
            f[HUMAN] += int(((m & F_HUMAN) != 0).sum())
            conn = o == OUTCOMES.index("connected")
            f[AHT_SUM] += int((e[conn] - bridge[sel][conn] + wrap[sel][conn]).sum())
            f[AHT_N] += int(conn.sum())
            rang = (m & F_ANS) != 0
            f[RING_SUM] += int((ans[sel][rang] - d[rang]).sum())
            f[RING_N] += int(rang.sum())
            first, last = int(d.min()), int(e[e != NO_TS].max())
            if f[FIRST] is None or first < f[FIRST]:
                f[FIRST] = first
            if f[LAST] is None or last > f[LAST]:
                f[LAST] = last

    # ------------------------------------------------------------ the body

    def body(self, attempts: dict, sealed) -> dict:
        """``run``, ``runs`` and ``previous_run_stats`` of the /stats body (SPEC §3.1)."""
        self.refresh(attempts, sealed)
        rows = [self._row(n) for n in self.numbers]
        return {"run": self.numbers[-1], "runs": rows,
                "previous_run_stats": self._row(self.numbers[-2]) if len(self.numbers) > 1 else None}

    def _row(self, n: int) -> dict:
        f = self.figures[n]
        ended, human = f[ENDED], f[HUMAN]
        return {
            "run": n,
            "started_at": _fmt(self.start_of(n)),
            "attempts": f[ATTEMPTS],
            "outcomes": {o: f[i] for o, i in OUTCOME_AT.items()},
            "answered": f[ANSWERED],
            "human_answered": human,
            "answer_rate": f[ANSWERED] / ended if ended else 0.0,
            "connect_rate": f[CONNECTED] / ended if ended else 0.0,
            "abandon_rate": f[ABANDONED] / human if human else 0.0,
            "aht_ms": f[AHT_SUM] / f[AHT_N] if f[AHT_N] else None,
            "avg_ring_ms": f[RING_SUM] / f[RING_N] if f[RING_N] else None,
            "first_dial_at": _fmt(f[FIRST]) if f[ATTEMPTS] else None,
            "last_end_at": _fmt(f[LAST]) if f[ENDED] else None,
        }


def _extreme(f: list, at: int, stale_at: int, ts: int, s: int, sign: int) -> None:
    """Keep a minimum (sign −1) or maximum (sign 1) under add/retract. The kept value always bounds
    the present ones, so an added ts at or beyond it makes it exact again; retracting the kept value
    itself leaves it stale (recomputed by `Runs.refresh`)."""
    cur = f[at]
    if s > 0:
        if cur is None or (ts - cur) * sign >= 0:
            f[at], f[stale_at] = ts, False
    elif ts == cur:
        f[stale_at] = True


def _fmt(ms):
    return None if ms is None else format_time(ms)


def runs_of(state) -> Runs:
    """A state's run table; one pickled before runs existed gets it built from its attempts."""
    runs = state.__dict__.get("runs")
    if runs is None:
        runs = state.runs = Runs()
        runs.rebuild(state.attempts, state.sealed)
    return runs
