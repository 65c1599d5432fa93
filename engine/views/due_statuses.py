"""The statuses the follow-ups view covers, and the view of a campaign the flow has written none for.

The read side's part of `engine.state.followups`, in a module of its own so that the API (`GET .../followups`,
api/read_model/timeline.py) imports neither numpy nor the contact table to serve it: `engine.state.followups`
keeps the schedule itself and the view the flow computes from a state.
"""

from __future__ import annotations

DUE_STATUSES = ("followup_scheduled", "retrying")


def view_without_due(as_of: str | None, by_status: dict) -> dict:
    """The view of a campaign whose flow has written none yet (a campaign last written by a release before
    the schedule, e.g. retired since): its counts from the `/stats` ``contacts.by_status``, every one of them
    ``without_due``."""
    view: dict = {"as_of": as_of}
    for status in DUE_STATUSES:
        n = by_status.get(status, 0)
        view[status] = {"count": n, "due_now": 0, "without_due": n, "next_due_at": None, "last_due_at": None}
    view["by_hour"] = []
    view["later"] = dict.fromkeys(DUE_STATUSES, 0)
    return view
