"""`CampaignState`'s latest times and pass bounds that a retraction marked stale: recomputed from the
open and sealed attempts before a snapshot reads them (engine.state.campaign composes this mixin)."""

from __future__ import annotations

from engine.state.parts import StateAttributes
from engine.storage.contact_table import NO_TS


class StaleExtremes(StateAttributes):
    # stale maxima ------------------------------------------------------------

    def refresh_extremes(self) -> None:
        """Recompute maxima that a retraction lowered (rare: an earlier duplicate fact arrived late)."""
        if self.last_dial.stale:
            dials = [a.dial[0] for a in self.attempts.values() if a.dial is not None]
            self.last_dial.recomputed(_max_with(max(dials, default=None), self._sealed_max("dial")))
        if self.last_send.stale:
            sends = [m.keys["email.sent"][0] for m in self.messages.values() if "email.sent" in m.keys]
            self.last_send.recomputed(_max_with(max(sends, default=None), self._sealed_max("email.sent",
                                                                                           self.sealed_messages)))
        if self.last_end.stale:
            ends = [a.end[0] for a in self.attempts.values() if a.end is not None]
            self.last_end.recomputed(_max_with(max(ends, default=None), self._sealed_max("end")))
        stale = [n for n, p in self.passes.items() if p.stale]
        if stale:
            for n in stale:
                p = self.passes[n]
                p.started = p.ended = None
                p.stale = False
            for a in self.attempts.values():
                if a.dial is None or a.pass_no not in stale:
                    continue
                p = self.passes[a.pass_no]
                if p.started is None or a.dial[0] < p.started:
                    p.started = a.dial[0]
                if a.end is not None and (p.ended is None or a.end[0] > p.ended):
                    p.ended = a.end[0]
            if self.sealed.live:
                self._refresh_passes_from_sealed(stale)

    def _sealed_max(self, column: str, sealed=None):
        """Largest ts in a column of the live sealed attempts (or of ``sealed``: the sealed messages);
        None when none has that fact."""
        sealed = self.sealed if sealed is None else sealed
        if not sealed.live:
            return None
        col = sealed.column(column)[sealed.live_rows()]
        col = col[col != NO_TS]
        return int(col.max()) if len(col) else None

    def _refresh_passes_from_sealed(self, stale: list[int]) -> None:
        sealed = self.sealed
        live = sealed.live_rows()
        pass_no, dial, end = sealed.column("pass_no"), sealed.column("dial"), sealed.column("end")
        for n in stale:
            p = self.passes[n]
            rows = live & (pass_no == n) & (dial != NO_TS)
            if rows.any():
                first = int(dial[rows].min())
                if p.started is None or first < p.started:
                    p.started = first
                ends = end[rows]
                ends = ends[ends != NO_TS]
                if len(ends) and (p.ended is None or int(ends.max()) > p.ended):
                    p.ended = int(ends.max())


def _max_with(a, b):
    return b if a is None else a if b is None else max(a, b)
