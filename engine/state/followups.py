"""Follow-ups and retries with their due times (issue 24): the schedule a campaign keeps of its contacts now
in ``followup_scheduled`` or ``retrying``, and the view the flow writes beside the `/stats` body.

A contact's ``due_at`` is the one of its current status (latest by ``(ts, event_id)``), kept in the contact
table's ``due`` column while that status is one of the two (`engine.state.contacts`). `DueSchedule` counts
those contacts per status and per due *minute*; the state adds and retracts a contact's contribution with the
rest of its contributions (`_contact_contrib`), so the schedule is exact under any arrival order and O(1) per
status change, and it holds one small dict entry per distinct due minute, not one per contact.

It is not pickled: `DueSchedule.of_table` derives it from the table's status and due columns when a state is
loaded (numpy, milliseconds for a million contacts). A state recovered from before the due column has zeros
there: its contacts already in those statuses count as ``without_due`` until their next status.

Times are kept to the minute: a due time counts as due from the start of its minute, and ``next_due_at`` /
``last_due_at`` are minute starts.

`DUE_STATUSES` and the view of a campaign without a schedule (`view_without_due`) live in
`engine.views.due_statuses`, which the API imports without numpy.
"""

from __future__ import annotations

import numpy as np

from engine.state.grid import HOUR, MINUTE
from engine.storage.contact_table import STATUS_CODE
from engine.timefmt import format_time
from engine.views.due_statuses import DUE_STATUSES

DUE_CODES = frozenset(STATUS_CODE[s] for s in DUE_STATUSES)
BY_HOUR_MINUTES = 48 * 60  # `by_hour` covers the due times of the next 48 hours; later ones are summed


class DueSchedule:
    """Per status code of `DUE_STATUSES`: contacts with a due time, counted by due minute. ``changes`` moves on
    every contribution to these statuses (with a due time or without), so a reader knows when to look again."""

    __slots__ = ("minutes", "with_due", "changes")

    def __init__(self):
        self.minutes: dict[int, dict[int, int]] = {code: {} for code in DUE_CODES}
        self.with_due: dict[int, int] = dict.fromkeys(DUE_CODES, 0)
        self.changes = 0

    def add(self, code: int, due: int, s: int) -> None:
        """Add (s = 1) or retract (s = -1) a contact in status ``code`` whose due column holds ``due``
        (due_at + 1; 0 = none)."""
        self.changes += 1
        if not due:
            return
        by_minute = self.minutes[code]
        m = (due - 1) // MINUTE
        n = by_minute.get(m, 0) + s
        if n:
            by_minute[m] = n
        else:
            del by_minute[m]
        self.with_due[code] += s

    @classmethod
    def of_table(cls, table) -> DueSchedule:
        """The schedule of a contact table's columns (a loaded state)."""
        out = cls()
        n = len(table.status)
        if not n:
            return out
        status = np.frombuffer(table.status, dtype=np.int8, count=n)
        due = np.frombuffer(table.due, dtype=np.int64, count=n)
        for code in DUE_CODES:
            dues = due[(status == code) & (due != 0)]
            minutes, counts = np.unique((dues - 1) // MINUTE, return_counts=True)
            out.minutes[code] = dict(zip(minutes.tolist(), counts.tolist()))
            out.with_due[code] = int(dues.size)
        return out


def _fmt_minute(m: int | None) -> str | None:
    return None if m is None else format_time(m * MINUTE)


def followups_view(state) -> dict:
    """The follow-ups view of a `CampaignState` as of its watermark ``now``: per status the contacts in it
    (``count``), those due now (due minute started), those without a due time, the next due minute still
    ahead and the latest one; ``by_hour``: the due times of the next 48 hours by UTC hour (only hours with
    something due, ascending); ``later``: those further ahead. For each status
    ``count = due_now + without_due + sum(by_hour) + later``."""
    sched: DueSchedule = state.due_schedule
    now_min = state.now // MINUTE
    horizon = now_min + BY_HOUR_MINUTES
    hours: dict[int, list[int]] = {}
    view: dict = {"as_of": format_time(state.now)}
    later = {}
    for i, status in enumerate(DUE_STATUSES):
        code = STATUS_CODE[status]
        due_now = beyond = 0
        nxt = last = None
        for m, n in sched.minutes[code].items():
            if last is None or m > last:
                last = m
            if m <= now_min:
                due_now += n
                continue
            if nxt is None or m < nxt:
                nxt = m
            if m <= horizon:
                hours.setdefault(m * MINUTE // HOUR, [0, 0])[i] += n
            else:
                beyond += n
        count = state.by_status[status]
        view[status] = {"count": count, "due_now": due_now, "without_due": count - sched.with_due[code],
                        "next_due_at": _fmt_minute(nxt), "last_due_at": _fmt_minute(last)}
        later[status] = beyond
    view["by_hour"] = [{"hour": format_time(h * HOUR), DUE_STATUSES[0]: a, DUE_STATUSES[1]: b}
                       for h, (a, b) in sorted(hours.items())]
    view["later"] = later
    return view
