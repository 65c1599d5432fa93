"""Email campaign simulator: a paced multi-step outreach sequence.

Step 1 goes to every contact, one send every 0.3-2 s while the campaign is
active and its window open. A delivered message may be opened (often more
than once), clicked, replied to (which can book a meeting) or unsubscribed
from; a contact that has neither replied nor unsubscribed by the next step's
due time gets the next step (`followup_scheduled` meanwhile). Engagement
keeps arriving after the campaign is `completed`, as it does in real life.
"""

from __future__ import annotations

from callpulse.simulator.campaign_base import INF, CampaignSim

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
KINDS = ["sales-outreach", "recruiting", "event-invite"]
PREVIEWS = {
    "positive": ["Sounds interesting — can we talk Thursday?", "Yes, please send more details.",
                 "Happy to chat, here is my calendar link."],
    "neutral": ["Forwarding to my colleague who owns this.", "Not right now, maybe next quarter.",
                "What does pricing look like?"],
    "negative": ["Please remove me from your list.", "Not interested.", "Stop emailing me."],
}
SENTIMENTS = (("positive", 0.4), ("neutral", 0.35), ("negative", 0.25))
SEND_LAG_MS = 450  # contact.status dispatched -> email.sent
COST_EVERY = 50  # sends per aggregated cost.incurred event (providers bill in bulk)


class EmailCampaign(CampaignSim):
    channel = "email"

    def __init__(self, cfg, org_id, campaign_id, start_ms, ordinal):
        super().__init__(cfg, org_id, campaign_id, start_ms, ordinal)
        r = self.rng
        self.kind = r.choice(KINDS)
        self.steps = r.choice([1, 2, 2, 3])
        self.domain = r.choice(["northwind.io", "contoso.com", "fabrikam.co"])
        n = cfg.contacts
        self.skip = [r.random() < 0.01 for _ in range(n)]  # suppressed addresses
        self.awaiting = [False] * n  # sent, delivery not yet known
        self.emails = [""] * n
        self.names = [""] * n
        self.companies = [""] * n
        self.next_k = 0
        self.sent = 0
        self.unbilled = 0

    # -- setup -----------------------------------------------------------------
    def created_fields(self) -> dict:
        f = {"name": f"{self.kind.replace('-', ' ').title()} email #{self.ordinal + 1}",
             "channel": "email", "kind": self.kind, "max_attempts": self.steps}
        if self.window is not None:
            f["time_window"] = self.window.as_event_field()
        if self.rng.random() < 0.5:
            f["config"] = {"from": f"hello@{self.domain}", "template": f"seq-{self.ri(1, 40)}"}
        return f

    def contact_fields(self, k: int) -> dict:
        v = self.variables(k)
        self.names[k] = f"{v['first_name']} {v['last_name']}"
        self.companies[k] = v["company"]
        host = v["company"].lower().replace(" ", "")
        self.emails[k] = email = f"{v['first_name'].lower()}.{v['last_name'].lower()}{k}@{host}.example"
        return {"contact_id": self.contact_ids[k], "batch_id": self.batch_ids[self.batch_of[k]],
                "email": email, "variables": v}

    def batch_loaded(self, ts, b):
        size = self.batch_left[b]
        yield ts, "cost.incurred", {"category": "lead_enrichment", "usd": round(size * 0.02, 6)}

    def start_dialing(self, ts: int) -> None:
        self.status_ = "active"
        if self.remaining == 0:
            self.finish(ts)
            return
        self.watch_window(ts)
        self.act(ts, self._send_next)

    # -- sending -------------------------------------------------------------------
    def _blocked(self, ts: int) -> int | None:
        """None when a send may go out at ts, else when to look again (INF: an action will)."""
        if self.done or self.stopped or self.expired:
            return INF
        if self.status_ != "active" or ts + SEND_LAG_MS >= self.halt_at:
            return INF  # pause/stop/resume actions restart sending
        if self.window is not None:
            is_open, until = self.window.state(ts)
            if not is_open:
                return until
            if ts + SEND_LAG_MS >= until:  # email.sent must fall inside the window
                return until
        return None

    def _send_next(self, ts: int, _arg=None) -> None:
        n = self.cfg.contacts
        while self.next_k < n:
            wait = self._blocked(ts)
            if wait is not None:
                if wait != INF:
                    self.act(wait, self._send_next)
                return
            k = self.next_k
            self.next_k += 1
            if self.skip[k]:
                self.finalize(ts, k, "skipped")
                continue
            self._send(ts, k, 1)
            if self.next_k < n:
                self.act(ts + self.ri(300, 2000), self._send_next)
            return

    def _send(self, ts: int, k: int, step: int) -> None:
        r = self.rng
        ct = self.contact_ids[k]
        mid = f"{ct}-m{step}"
        self.touch_batch(ts, k)
        self.status(ts, k, "dispatched")
        t = ts + self.ri(50, SEND_LAG_MS)
        self.emit(t, "email.sent", {"contact_id": ct, "message_id": mid})
        self.awaiting[k] = True
        self.sent += 1
        self.unbilled += 1
        if self.unbilled >= COST_EVERY:
            self._bill(t)
        if r.random() < 0.03:
            self.act(t + self.ri(1000, 60000), self._bounce, (k, mid))
        else:
            self.act(t + self.ri(1000, 30000), self._deliver, (k, mid, step))
        self.after_dispatch(ts, self.sent)

    def _bill(self, ts: int) -> None:
        n, self.unbilled = self.unbilled, 0
        self.emit(ts + 1, "cost.incurred", {"category": "email_sending", "usd": round(n * 0.0009, 6)})
        self.emit(ts + 2, "cost.incurred", {"category": "ai_generation", "usd": round(n * 0.0021, 6)})

    def _bounce(self, ts: int, arg) -> None:
        k, mid = arg
        self.awaiting[k] = False
        self.emit(ts, "email.bounced", {"message_id": mid})
        self.finalize(ts + self.ri(5, 200), k, "failed")

    def _deliver(self, ts: int, arg) -> None:
        k, mid, step = arg
        r = self.rng
        rand = r.random
        self.awaiting[k] = False
        m = {"message_id": mid}
        self.emit(ts, "email.delivered", m)
        if self.cfg.complaint_pct and self.xrng.random() * 100 < self.cfg.complaint_pct:
            # a mailbox provider's feedback loop reports it as spam, seconds to minutes later
            self.emit(ts + 5000 + int(595_000 * self.xrng.random()), "email.complained", m)
        done_at = None  # when the contact replied or unsubscribed: no further steps
        if rand() < 0.45:
            opened = ts + int(min(3 * DAY, max(30_000, r.lognormvariate(15.8, 1.3))))  # ~2 h median
            self.emit(opened, "email.opened", m)
            t = opened
            while rand() < 0.3:  # re-opens: still one opened message
                t += self.ri(MIN, 6 * HOUR)
                self.emit(t, "email.opened", m)
            if rand() < 0.25:
                self.emit(opened + self.ri(5000, 10 * MIN), "email.clicked", m)
            if rand() < 0.15:
                done_at = self._reply(opened + self.ri(2 * MIN, DAY), k, mid)
            elif rand() < 0.02:
                done_at = opened + self.ri(5000, 5 * MIN)
                self.emit(done_at, "email.unsubscribed", m)
        t = ts  # decided now: a stop after this instant sees the status (see sim_voice._on_end)
        if step >= self.steps:
            self.finalize(t, k, "completed")
            return
        if self.stopped or self.expired:  # more steps were planned, but none will go out
            self.finalize(t, k, "manual_stopped" if self.stopped else "window_closed")
            return
        due = ts + int(self.cfg.email_step_delay_s * 1000 * r.uniform(0.8, 1.2))
        self.status(t, k, "followup_scheduled", due_at=due)
        if done_at is not None and done_at < due:
            self.act(done_at + self.ri(100, 2000), self._complete, k)
        else:
            self.act(due, self._followup, (k, step + 1))

    def _reply(self, ts: int, k: int, mid: str) -> int:
        r = self.rng
        v = r.random()
        sentiment = "negative"
        for s, p in SENTIMENTS:
            if v < p:
                sentiment = s
                break
            v -= p
        f = {"message_id": mid, "sentiment": sentiment, "preview": self.pick(PREVIEWS[sentiment]),
             "name": self.names[k], "company": self.companies[k], "from_email": self.emails[k]}
        if r.random() < 0.1:
            f["company"] = None  # optional field given as null = absent
        self.emit(ts, "email.replied", f)
        if sentiment == "positive" and r.random() < 0.35:
            self.emit(ts + self.ri(10 * MIN, 2 * DAY), "meeting.booked",
                      {"contact_id": self.contact_ids[k]})
        return ts

    def _complete(self, ts: int, k: int) -> None:
        self.finalize(ts, k, "completed")

    def _followup(self, ts: int, arg) -> None:
        k, step = arg
        if self.final[k]:
            return
        wait = self._blocked(ts)
        if wait is None:
            self._send(ts, k, step)
        elif not (self.done or self.stopped or self.expired):
            # Paused or outside the window: look again at the opening / in a minute.
            self.act(wait if wait != INF else ts + MIN, self._followup, arg)

    def finish(self, ts: int) -> None:
        if self.unbilled:
            self._bill(ts)
        super().finish(ts)

    # -- window, pause, stop ---------------------------------------------------------
    def drop_waiting(self, ts: int, status: str) -> None:
        for k in range(self.cfg.contacts):
            if not self.final[k] and not self.awaiting[k]:
                self.finalize(ts, k, status)

    def resume_work(self, ts: int) -> None:
        self.act(ts, self._send_next)
