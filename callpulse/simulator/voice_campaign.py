"""Voice campaign simulator: a concurrency-limited predictive dialer.

The dialer runs passes: pass 1 dials every contact once; a contact that is
not reached goes `retrying` with a `due_at`, and once a pass is exhausted
and its calls have ended, the next pass starts over the retrying contacts,
dialing each when due. Callbacks (`followup_scheduled`) are dialed when due,
ahead of the pass queue. A new call is placed only while the campaign is
active, the calling window is open and fewer than `concurrency_limit` calls
are live; each call's whole event script is drawn at dial time and its end
is an action that frees the slot and decides the contact's next status.

Runs (restarts, `restart` / `withdraw_run`): once a campaign has completed, the
dialer may restart it as run 2 over the contacts whose last call ended busy or
unanswered (they go back to `pending` and get `max_attempts` more tries), and
may prepare a further run and withdraw it before it dials anything.
"""

from __future__ import annotations

import heapq
from collections import deque

from callpulse.simulator.agent_floor import AgentFloor
from callpulse.simulator.campaign_base import INF, CampaignSim
from callpulse.simulator.voice_calls import HOUR, MIN, NO_ANSWER_SIP, PROFILES, SCRIPTS, answered_call

REDIAL_GUARD_MS = 72 * HOUR  # the engine's default abandon_redial_hours (SPEC *Compliance guards*)
DIAL_LAG_MS = 400  # contact.status dispatched -> call.dialed


class VoiceCampaign(CampaignSim):
    channel = "voice"

    def __init__(self, cfg, org_id, campaign_id, start_ms, ordinal):
        super().__init__(cfg, org_id, campaign_id, start_ms, ordinal)
        r = self.rng
        self.kind = r.choice(list(PROFILES))
        (self.p_answer, self.p_machine, self.p_busy, self.p_failed,
         self.p_callback, self.p_meeting) = PROFILES[self.kind]
        self.limit = r.choice([5, 10, 10, 10, 20, 25, 50])
        self.max_attempts = r.choice([1, 2, 3, 3, 3, 3, 4, 5])
        self.threshold = r.choice([2000, 2000, 2000, 3000])
        self.ceiling = r.choice([None, None, 0.03, 0.05, 0.02])
        self.bot = r.random() < 0.7  # AI agent (short wrap) vs human agents
        company = r.choice(["Northwind", "Contoso", "Fabrikam", "Blue Yonder"])
        self.script = tuple([line.replace("{company}", company) for line in bank] for bank in SCRIPTS[self.kind])
        n = cfg.contacts
        self.phones = [""] * n
        self.attempts = [0] * n
        self.skip = [r.random() < 0.01 for _ in range(n)]  # DNC-listed / invalid numbers
        self.cb_open = [False] * n
        self.active = 0
        self.dispatched = 0
        self.pass_no = 0
        self.queue: deque = deque()
        self.next_pass: list = []
        self.followups: list = []  # heap of (due_at, contact)
        self.redials: list = []  # heap of (due_at, contact): abandoned numbers redialed within the guard
        self.wakes: set = set()
        self.run_no = 1
        self.run_base = [0] * n  # attempts a contact had before the current run (retries count per run)
        self.last_outcome: list = [None] * n
        self.withdrawn = False
        # where the abandon threshold runs from; `mixed` draws only then, so other seeds' streams stay the same
        self.abandon_from = cfg.abandon_from if cfg.abandon_from != "mixed" else r.choice(["answer", "greeting_end"])
        self.floor = AgentFloor(self, cfg.agents) if cfg.agents else None  # --agents: who takes the calls
        if self.floor is not None:  # a predictive dialer paces its lines to the floor (about one per 2 heads)
            self.limit = min(self.limit, cfg.agents // 2 + 1)

    # -- setup -----------------------------------------------------------------
    def created_fields(self) -> dict:
        r = self.rng
        f = {"name": f"{self.kind.replace('-', ' ').title()} #{self.ordinal + 1}",
             "channel": "voice", "kind": self.kind, "concurrency_limit": self.limit,
             "max_attempts": self.max_attempts, "abandon_threshold_ms": self.threshold}
        if self.abandon_from != "answer":
            f["abandon_from"] = self.abandon_from
        if self.ceiling is not None:
            f["abandon_ceiling"] = self.ceiling
        if self.window is not None:
            f["time_window"] = self.window.as_event_field()
        if r.random() < 0.5:
            f["config"] = {"voice": r.choice(["aria", "milo", "sage"]), "script_version": self.ri(1, 9),
                           "amd": True}
        return f

    def contact_fields(self, k: int) -> dict:
        self.phones[k] = phone = self.phone(k)
        v = self.variables(k)
        if self.kind == "collections":
            v["balance_usd"] = round(self.rng.uniform(50, 5000), 2)
        elif self.kind == "appointment-reminder":
            v["appointment_at"] = "2026-05-09T10:30:00-04:00"
        f = {"contact_id": self.contact_ids[k], "batch_id": self.batch_ids[self.batch_of[k]],
             "phone_number": phone, "variables": v}
        tz = self.contact_tz(k)
        if tz is not None:
            f["tz"] = tz
        return f

    def start_dialing(self, ts: int) -> None:
        self.status_ = "active"
        if self.remaining == 0:
            self.finish(ts)
            return
        self.pass_no = 1
        if self.floor is not None:
            self.floor.sign_on(ts)
        self.queue = deque((ts, k) for k in range(self.cfg.contacts))
        self.emit(ts, "pass.started", {"pass": 1, "eligible": self.cfg.contacts})
        self.watch_window(ts)
        self.act(ts + self.ri(100, 500), self._pump)

    # -- dialer loop -------------------------------------------------------------
    def _wake(self, ts: int) -> None:
        if ts not in self.wakes:
            self.wakes.add(ts)
            self.act(ts, self._on_wake)

    def _on_wake(self, ts: int, _arg) -> None:
        self.wakes.discard(ts)
        self._pump(ts)

    def _pump(self, now: int, _arg=None) -> None:
        """Fill free slots with due contacts, one dial every 50-250 ms."""
        if self.status_ != "active" or self.done:
            return
        until = INF
        if self.window is not None:
            is_open, until = self.window.state(now)
            if not is_open:
                self._wake(until)  # the next opening
                return
        t = now
        while self.active < self.limit:
            # call.dialed must fall before a due pause/stop (halt_at can move while
            # this loop books dials) and before the window closes.
            if t + DIAL_LAG_MS >= self.halt_at:
                return  # the pause/stop action takes over
            if t + DIAL_LAG_MS >= until:
                self._wake(until)  # resume at the next opening
                return
            k, follow_up, due = self._pick(t)
            if k is None:
                if due is not None:
                    self._wake(max(due, t))
                return
            self._dial(t, k, follow_up)
            t += self.ri(50, 250)

    def _pick(self, t: int):
        """Next contact to dial at t: due redials of abandoned numbers and callbacks first, then the pass queue."""
        fu, q, rd = self.followups, self.queue, self.redials
        while True:
            if rd and rd[0][0] <= t:
                return heapq.heappop(rd)[1], False, None
            if fu and fu[0][0] <= t:
                return heapq.heappop(fu)[1], True, None
            if q:
                due, k = q[0]
                if due > t:
                    due = min(due, fu[0][0]) if fu else due
                    return None, False, min(due, rd[0][0]) if rd else due
                q.popleft()
                if self.attempts[k] == 0 and self.skip[k]:
                    self.finalize(t, k, "skipped")
                    continue
                return k, False, None
            if self.next_pass and self.active == 0:
                self.pass_no += 1
                self.next_pass.sort()
                self.queue = q = deque(self.next_pass)
                self.next_pass = []
                self.emit(t, "pass.started", {"pass": self.pass_no, "eligible": len(q)})
                continue
            due = fu[0][0] if fu else None
            if rd:
                due = rd[0][0] if due is None else min(due, rd[0][0])
            return None, False, due

    # -- one attempt ---------------------------------------------------------------
    def _dial(self, now: int, k: int, follow_up: bool) -> None:
        r = self.rng
        rand = r.random
        self.attempts[k] += 1
        self.active += 1
        self.dispatched += 1
        if now > self.booked_until:
            self.booked_until = now
        ct = self.contact_ids[k]
        aid = f"{ct}-a{self.attempts[k]}"
        self.touch_batch(now, k)
        self.status(now, k, "dispatched")
        t = now + self.ri(20, DIAL_LAG_MS)
        f = {"contact_id": ct, "attempt_id": aid, "phone_number": self.phones[k], "pass": self.pass_no}
        if follow_up:
            f["follow_up"] = True
        elif rand() < 0.1:
            f["follow_up"] = False  # some dialers send the default explicitly
        self.emit(t, "call.dialed", f)
        emit = self.emit
        u = rand()
        a = {"attempt_id": aid}
        p_answer = 0.7 if follow_up else self.p_answer  # a callback was asked for: mostly picked up
        if u < p_answer:
            end, outcome = answered_call(self, t, k, aid, follow_up)
            sip = 200
        elif u < p_answer + self.p_busy:
            outcome, sip = "busy", (486 if rand() < 0.9 else 600)
            end = t + self.ri(500, 4000)
            emit(end, "call.ended", {**a, "sip_code": sip})
        elif u < p_answer + self.p_busy + self.p_failed:
            outcome = "failed"
            v = rand()
            sip = 404 if v < 0.5 else 503 if v < 0.8 else 603
            end = t + (self.ri(3000, 15000) if sip == 603 else self.ri(300, 3000))
            emit(end, "call.ended", {**a, "sip_code": sip})
        else:
            outcome = "no_answer"
            v, sip = rand(), None
            for code, p in NO_ANSWER_SIP:
                if v < p:
                    sip = code
                    break
                v -= p
            end = t + (self.ri(1000, 10000) if sip == 480 else self.ri(20000, 45000))
            emit(end, "call.ended", {**a, "sip_code": sip} if sip else a)
        # The dialer books the outcome a moment after the hang-up; every status
        # change is stamped with the time of the action that decides it, so a
        # stop or a window closing in between is seen by the decision.
        self.act(end + self.ri(5, 150), self._on_end, (k, outcome, follow_up, sip))
        self.after_dispatch(now, self.dispatched)

    # -- after the hang-up -----------------------------------------------------------
    def _on_end(self, ts: int, arg) -> None:
        k, outcome, follow_up, sip = arg
        self.active -= 1
        self.last_outcome[k] = outcome
        tries = self.attempts[k] - self.run_base[k]
        r = self.rng
        t = ts
        ct = self.contact_ids[k]
        if follow_up and self.cb_open[k]:
            self.cb_open[k] = False
            etype = "callback.completed" if outcome == "connected" else "callback.cancelled"
            self.emit(t, etype, {"contact_id": ct})
        if outcome == "connected":
            if r.random() < self.p_meeting:
                self.emit(t + self.ri(1000, 20000), "meeting.booked", {"contact_id": ct})
            if (not follow_up and not self.stopped and not self.expired
                    and tries < self.max_attempts and r.random() < self.p_callback):
                due = (ts + self.ri(HOUR, 26 * HOUR)) // (5 * MIN) * (5 * MIN)
                self.emit(t, "callback.requested", {"contact_id": ct, "due_at": due})
                self.status(t, k, "followup_scheduled", due_at=due)
                self.cb_open[k] = True
                heapq.heappush(self.followups, (due, k))
            else:
                self.finalize(t, k, "completed")
        elif outcome == "failed" and sip in (404, 603):
            self.finalize(t, k, "failed")  # bad number / declined: not worth a retry
        elif self.stopped:
            self.finalize(t, k, "manual_stopped")
        elif self.expired:
            self.finalize(t, k, "window_closed")
        elif tries < self.max_attempts:
            scale = 0.3 if outcome == "busy" else 1.0
            due = t + int(self.cfg.retry_delay_s * 1000 * scale * r.uniform(0.5, 1.5))
            pct = self.cfg.redial_abandoned_pct
            if outcome == "abandoned" and pct is not None:
                x = self.xrng
                if x.random() * 100 < pct:  # redialed within the guard, ahead of the pass queue
                    due = t + MIN + int(9 * MIN * x.random())
                    self.status(t, k, "retrying", retry_number=self.attempts[k], due_at=due)
                    heapq.heappush(self.redials, (due, k))
                    if not self.done:
                        self._pump(t + self.ri(20, 300))
                    return
                due += REDIAL_GUARD_MS  # a compliant dialer: not before the guard has passed
            self.status(t, k, "retrying", retry_number=self.attempts[k], due_at=due)
            self.next_pass.append((due, k))
        elif self.max_attempts > 1:
            self.finalize(t, k, "max_retries_reached")
        else:
            self.finalize(t, k, {"busy": "busy", "failed": "failed"}.get(outcome, "no_answer"))
        if not self.done:
            self._pump(t + self.ri(20, 300))

    # -- window, pause, stop -----------------------------------------------------------
    def drop_waiting(self, ts: int, status: str) -> None:
        """Finalise every contact not on a live call (queued, retrying, awaiting a callback)."""
        for _due, k in self.followups:
            if self.cb_open[k]:
                self.cb_open[k] = False
                self.emit(ts, "callback.cancelled", {"contact_id": self.contact_ids[k]})
        waiting = ([k for _d, k in self.queue] + [k for _d, k in self.next_pass] + [k for _d, k in self.followups]
                   + [k for _d, k in self.redials])
        self.queue, self.next_pass, self.followups, self.redials = deque(), [], [], []
        for k in sorted(waiting):
            self.finalize(ts + 1, k, status)

    def resume_work(self, ts: int) -> None:
        self._pump(ts)

    # -- runs (restarts) ---------------------------------------------------------------
    def finish(self, ts: int) -> None:
        if self.done:
            return
        super().finish(ts)
        restarting = not (self.stopped or self.expired) and self.cfg.restart and self.run_no == 1
        if self.floor is not None and not restarting:
            self.floor.sign_off(ts)
        if self.stopped or self.expired:
            return
        if self.cfg.restart and self.run_no == 1:
            self.act(ts + self.ri(120_000, 600_000), self._restart)
        elif self.cfg.withdraw_run and not self.withdrawn:
            self.act(ts + self.ri(120_000, 600_000), self._prepare_and_withdraw)

    def _restart(self, ts: int, _arg) -> None:
        """Run 2: contacts whose last call ended busy or unanswered are dialed again."""
        again = [k for k in range(self.cfg.contacts) if self.last_outcome[k] in ("busy", "no_answer")]
        if not again:
            if self.cfg.withdraw_run:
                self._prepare_and_withdraw(ts, None)
            return
        self.run_no = 2
        self.emit(ts, "campaign.run_started", {"run": 2})
        t = ts + self.ri(500, 2000)
        self.emit(t, "campaign.status", {"status": "active"})
        self.done, self.status_ = False, "active"
        for k in again:
            self.final[k] = False
            self.run_base[k] = self.attempts[k]
            self.remaining += 1
            b = self.batch_of[k]
            self.batch_left[b] += 1
            if self.batch_closed[b]:
                self.batch_closed[b] = False
                self.emit(t, "batch.status", {"batch_id": self.batch_ids[b], "status": "in_progress"})
            self.status(t, k, "pending")
        self.pass_no += 1
        self.queue = deque((t, k) for k in again)
        self.emit(t, "pass.started", {"pass": self.pass_no, "eligible": len(again)})
        self.closes = 0
        self.watch_window(t)
        self.act(t + self.ri(100, 500), self._pump)

    def _prepare_and_withdraw(self, ts: int, _arg) -> None:
        """The next run is prepared, then withdrawn before it dials anything."""
        self.withdrawn = True
        run = self.run_no + 1
        self.emit(ts, "campaign.run_started", {"run": run})
        self.emit(ts + self.ri(60_000, 300_000), "campaign.run_cancelled", {"run": run})
