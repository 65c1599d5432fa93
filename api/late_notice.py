"""Tell the sender which accepted events the flow will drop as late (SPEC §1 *Order*).

Ingest does not refuse a late event: it is appended like any other, so the flow counts it in
``diagnostics.late`` and dead-letters it with reason ``late`` (the spec's contract). But "accepted"
alone would leave the sender believing it counts, so the answer also lists the events that the
campaign's watermark already makes late, as the flow sees it:

- the watermark is the one the flow's lateness gate judges by (``engine.state.gate.EventGate``: the largest
  event ts the campaign applied), which the flow stores with each frame under
  ``engine.storage.keys.watermark_key`` (kept when the campaign retires), read *before* the append (after
  it, the flow may already have folded this very body in, and an early event of the body would look
  late behind a later one). Not the ``as_of`` of the stored ``/stats`` body: in live mode that also
  follows the wall clock while the campaign is quiet, which the gate does not (events two days old
  were listed late after a quiet spell, and the flow applied them all). Only when the key is absent
  (data written by a flow older than the key) is ``as_of`` read instead;
- then the body's own accepted events move it, in order, as the flow's gate will (a rejected or
  duplicate event moves nothing);
- the bound is the flow's ``lateness_ms``, recorded in the flow status hash at its start (30 000
  when the flow has not recorded it).

It is advice, not the verdict (docs/api.md *Late events*): the flow may not have written its latest
watermark yet (events still in the streams, or folded but not yet framed), so an event can be late
and not listed. Used by POST /v1/events and ``callpulse ingest``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from engine.state.gate import DEFAULT_LATENESS_MS
from engine.storage.keys import flow_status_key, stats_key, watermark_key
from engine.validation.events import EventRejected, parse_time


class LateCheck:
    """Watermarks per campaign, carried across the chunks of one ingest (``callpulse ingest``)."""

    def __init__(self, client):
        self.client = client
        self.lateness_ms = DEFAULT_LATENESS_MS
        self.watermarks: dict[tuple[str, str], int] = {}

    def read(self, events: Iterable[dict]) -> None:
        """One round trip: the flow's lateness bound and the stored watermark of each campaign named
        (its gate's, else, written by an older flow, its body's ``as_of``).

        A stored watermark only ever raises the one carried from earlier chunks."""
        camps = sorted({(ev["org_id"], ev["campaign_id"]) for ev in events})
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(flow_status_key(), "lateness_ms")
        for org, camp in camps:
            pipe.get(watermark_key(org, camp))
            pipe.get(stats_key(org, camp))
        bound, *stored = pipe.execute()
        self.lateness_ms = _int_or(bound, DEFAULT_LATENESS_MS)
        for camp, gate_wm, body in zip(camps, stored[::2], stored[1::2]):
            wm = _int_or(gate_wm, None)
            if wm is None:
                wm = _as_of_ms(body)
            if wm is not None and (camp not in self.watermarks or wm > self.watermarks[camp]):
                self.watermarks[camp] = wm

    def late(self, events: Sequence[dict], fresh: Sequence[bool], positions: Sequence[int]) -> list[tuple[int, str]]:
        """``(position, reason)`` of each appended (``fresh``) event the watermark makes late.

        Call after ``read`` on the same events; advances the carried watermarks as the flow will."""
        out = []
        bound = self.lateness_ms
        for ev, ok, pos in zip(events, fresh, positions):
            if not ok:
                continue  # a duplicate is not appended: the flow never judges it
            camp, ts = (ev["org_id"], ev["campaign_id"]), ev["ts"]
            wm = self.watermarks.get(camp)
            if wm is not None and ts < wm - bound:
                out.append((pos, f"event ts {ts} is {wm - ts} ms behind the campaign's watermark {wm} "
                                 f"(lateness bound {bound} ms): the flow will not apply it; it is counted "
                                 f"in diagnostics.late and dead-lettered with reason 'late'"))
            elif wm is None or ts > wm:
                self.watermarks[camp] = ts
        return out


def _int_or(raw, default: int | None) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def _as_of_ms(body: bytes | None) -> int | None:
    if body is None:
        return None
    try:
        as_of = orjson.loads(body).get("as_of")
        return parse_time(as_of, "as_of") if as_of is not None else None
    except (orjson.JSONDecodeError, AttributeError, EventRejected):
        return None
