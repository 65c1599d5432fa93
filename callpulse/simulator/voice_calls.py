"""What one voice call does once dialed: the odds of each kind of voice campaign (`PROFILES`), what is
said (`SCRIPTS`), how an unanswered call ends (`NO_ANSWER_SIP`), and the event script of an answered call
with its costs (`answered_call`).

`VoiceCampaign` (voice_campaign.py) draws a call's whole script at dial time and books its end. The draws
come from the campaign's RNG in a fixed order: moving or adding one changes every seed's event stream.
"""

from __future__ import annotations

# Per campaign kind: P(answer), P(machine | answer), P(busy), P(failed),
# P(callback | connected), P(meeting | connected).
PROFILES = {
    "sales-outreach": (0.32, 0.30, 0.06, 0.05, 0.08, 0.12),
    "appointment-reminder": (0.55, 0.20, 0.04, 0.03, 0.03, 0.0),
    "collections": (0.28, 0.35, 0.07, 0.06, 0.10, 0.0),
    "survey": (0.38, 0.25, 0.05, 0.04, 0.02, 0.0),
}
SCRIPTS = {
    "sales-outreach": (["Hi, this is Aria from {company} — do you have a minute?",
                        "We help teams cut onboarding time in half.",
                        "Would a 20-minute demo next week work for you?",
                        "Great, I'll send a calendar invite."],
                       ["Sure, what is this about?", "Hmm, we already have a vendor.",
                        "Tuesday afternoon could work.", "Not interested, thanks."]),
    "appointment-reminder": (["Hello, this is a reminder of your appointment tomorrow at 10:30.",
                              "Can you confirm you will attend?", "Thank you, see you then."],
                             ["Yes, I'll be there.", "Can I move it to Friday?", "Who is this?"]),
    "collections": (["Hello, I'm calling about your account balance.",
                     "Would you like to set up a payment plan?",
                     "I can take a payment today if that helps."],
                    ["I paid that last week.", "Can you call me back later?",
                     "OK, let's do a plan."]),
    "survey": (["Hi, we're running a short customer satisfaction survey.",
                "On a scale of one to five, how was your last visit?", "Thanks for your time!"],
               ["Sure.", "Four, I guess.", "I'm busy right now."]),
}
NO_ANSWER_SIP = ((408, 0.55), (480, 0.18), (487, 0.15), (None, 0.12))
MIN, HOUR = 60_000, 3_600_000  # ms


def answered_call(sim, t: int, k: int, aid: str, follow_up: bool) -> tuple[int, str]:
    """Script of an answered call of ``sim`` (a `VoiceCampaign`) from call.answered to call.ended;
    returns (end ts, outcome)."""
    r = sim.rng
    rand = r.random
    emit = sim.emit
    a = {"attempt_id": aid}
    # Ring time: log-normal around 7 s, 1.5-30 s.
    ans = t + int(min(30000, max(1500, r.lognormvariate(8.85, 0.5))))
    emit(ans, "call.answered", a)
    sim.status(ans + sim.ri(2, 30), k, "in_progress")
    thr = sim.threshold
    if rand() < (0.05 if follow_up else sim.p_machine):
        emit(ans + sim.ri(1500, 4000), "call.amd", {**a, "result": "machine"})
        end = ans + sim.ri(8000, 40000)  # voicemail drop
        emit(end, "call.ended", {**a, "sip_code": 200})
        call_cost(sim, end, "telephony", (end - t) / MIN * 0.013)
        return end, "machine"
    amd = "human" if rand() < 0.95 else "unknown"
    abandoned = rand() < abandon_prob(sim)
    booked = None  # (agent, bridge, talk, wrap) when a floor of agents takes the call (--agents)
    if sim.floor is not None and not abandoned:
        booked = sim.floor.call(ans, sim.threshold)
        abandoned = booked is None  # nobody free to take it
    if abandoned and rand() < 0.6:
        # Nobody free to take the call: the callee hangs up on silence.
        emit(ans + sim.ri(300, max(400, thr)), "call.amd", {**a, "result": amd})
        end = ans + thr + sim.ri(500, 6000)
        emit(end, "call.ended", {**a, "sip_code": 200})
        call_cost(sim, end, "telephony", (end - t) / MIN * 0.013)
        return end, "abandoned"
    greeting_end = None
    if abandoned:
        if sim.abandon_from == "greeting_end":  # too late counted from the end of the greeting
            greeting_end = ans + sim.ri(300, 1500)
            bridged = greeting_end + thr + sim.ri(100, 4000)
        else:
            bridged = ans + thr + sim.ri(100, 4000)  # connected, but too late
        talk = sim.ri(5000, 60000)
    elif booked is not None:
        _agent, bridged, talk, _wrap = booked
    else:
        bridged = ans + sim.ri(250, max(300, int(thr * 0.9)))
        talk = int(min(900_000, max(8000, r.lognormvariate(11.2, 0.7))))  # ~75 s median
    if greeting_end is None:
        greeting_end = ans + int((bridged - ans) * r.uniform(0.3, 0.95))
    emit(greeting_end, "call.amd", {**a, "result": amd})
    emit(bridged, "call.bridged", a if booked is None else {**a, "agent_id": booked[0]})
    assistant, user = sim.script
    pick = sim.pick
    lines = sim.ri(2, 6)
    for i in range(lines):
        bank = assistant if i % 2 == 0 else user
        emit(bridged + talk * (i + 1) // (lines + 1), "call.transcript",
             {**a, "role": "assistant" if i % 2 == 0 else "user", "content": pick(bank)})
    end = bridged + talk
    conv = f"conv-{sim.cid}-{aid}"
    wrap = booked[3] if booked is not None else sim.ri(0, 3000) if sim.bot else sim.ri(10000, 90000)
    emit(end, "call.ended", {**a, "sip_code": 200, "wrap_ms": wrap, "conversation_id": conv,
                             "recording_url": f"https://recordings.example.com/{sim.org}/{conv}.wav"})
    emit(end + sim.ri(3000, 30000), "conversation.evaluated",
         {**a, "conversation_id": conv,
          "results": {"quality.greeting": rand() < 0.95, "quality.compliance": rand() < 0.9,
                      "sentiment.score": round(r.uniform(-1, 1), 2),
                      "outcome.interested": rand() < 0.3}})
    call_cost(sim, end, "telephony", (end - t) / MIN * 0.013)
    call_cost(sim, end + 1, "ai_generation", talk / 1000 * 0.0006)
    return end, ("abandoned" if abandoned else "connected")

def abandon_prob(sim) -> float:
    """P(a human-answered call is abandoned): --abandon-prob, rising to --abandon-ramp by the last dispatch."""
    p0, p1 = sim.cfg.abandon_prob, sim.cfg.abandon_ramp
    if p1 is None:
        return p0
    done = min(1.0, sim.dispatched / max(1, sim.cfg.contacts))
    return p0 + (p1 - p0) * done

def call_cost(sim, ts: int, category: str, usd: float) -> None:
    sim.emit(ts + sim.ri(500, 5000), "cost.incurred",
              {"category": category, "usd": round(usd, 6)})
