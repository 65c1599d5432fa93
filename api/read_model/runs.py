"""Which run an attempt belongs to, read from the run table stored with the campaign's stats.

An attempt belongs to the last run (in run order) whose start is at or before its dial
(engine/state/runs.py), so each run owns the dial times [its start, the next run's start). A late
run event can move that boundary, and with it attempts whose detail records were written long
ago; so the run is not written into the attempt records but resolved when they are read, from
the `runs` list of the stats body the flow stored with them. The attempt index is scored by dial
time, so `?run=N` is one score range of it.
"""

from __future__ import annotations

from bisect import bisect_right

from api.read_model.campaigns import stats_body
from engine.validation.events import parse_time

NEVER_DIALED = 0  # score of an attempt without a call.dialed in the attempt index (flows/redis_sink.py)


class RunRanges:
    def __init__(self, body: dict):
        runs = body.get("runs") or [{"run": 1, "started_at": None}]  # a body stored before runs existed
        self.numbers = [r["run"] for r in runs]
        self.starts = [parse_time(r["started_at"], "started_at") for r in runs[1:]]

    def run_of(self, dial_ms: int | None) -> int | None:
        """The run of an attempt dialed at ``dial_ms`` (None: never dialed, in no run)."""
        if dial_ms is None:
            return None
        return self.numbers[bisect_right(self.starts, dial_ms)]

    def score_range(self, run: int) -> tuple[str, str] | None:
        """(min, max) of the attempt index scores of the run's attempts; None when no such run."""
        if run not in self.numbers:
            return None
        i = self.numbers.index(run)
        lo = self.starts[i - 1] if i else NEVER_DIALED
        lo_arg = f"({NEVER_DIALED}" if lo <= NEVER_DIALED else str(lo)  # never-dialed attempts are in no run
        hi_arg = f"({self.starts[i]}" if i < len(self.starts) else "+inf"
        return lo_arg, hi_arg


async def run_ranges(r, org: str, camp: str) -> RunRanges:
    """The campaign's run table, from its stats body (404 when the campaign is unknown)."""
    return RunRanges(await stats_body(r, org, camp))
