"""The API's read model: every Redis query a route makes, so that routes stay thin.

The flow writes; this package only reads (key layout: engine/storage/keys.py). Modules by what they read:
- ``campaigns``: the stats bodies (one serialised SPEC §3 body per campaign), campaign list and
  detail, batches, daily rows (from the flow's quarter-hour cells) and email replies;
- ``contacts``: contact records with their attempts trails, and the activity log;
- ``calls``: the call table (filters by callback, outcome and run) with transcripts;
- ``runs``: which run an attempt belongs to (resolved at read time);
- ``exports``: the streamed CSV / JSON exports;
- ``timeline``: a campaign's minute points and its follow-ups view (stored as JSON by the flow);
- ``messages``: the email message list and its CSV;
- ``org``: org-wide reads (usage, recent alerts, benchmarks).

Domain rules (contact buckets, the daily cell layout, benchmarks) come from the engine, never re-derived here.
"""


def dec(b) -> str:
    """A Redis reply (bytes) as str."""
    return b.decode() if isinstance(b, bytes) else b


async def hscan(r, key: str, count: int):
    """Every (field, value) of a hash, ``count`` at a time (constant memory)."""
    cursor = 0
    while True:
        cursor, items = await r.hscan(key, cursor, count=count)
        for k, v in items.items():
            yield k, v
        if not cursor:
            return
