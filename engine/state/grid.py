"""Time units of the campaign state and the layout of its daily quarter-hour cells."""

from __future__ import annotations

SECOND, MINUTE, HOUR = 1000, 60_000, 3_600_000
QUARTER_HOUR = 900_000
NEVER = 1 << 62  # a time later than any event's
SEAL_EVERY = MINUTE  # sealing sweeps run when the watermark enters a new minute

# Daily facts are kept per UTC quarter-hour: every current time zone's local
# midnight falls on a quarter-hour, so each bucket lies in one local date of
# whatever zone the campaign uses now (a zone change re-buckets exactly).
DAILY_FIELDS = ("dials", "answered", "connected", "abandoned", "ended",
                "emails_sent", "opened", "replied", "cost_micros")
D_DIALS, D_ANSWERED, D_CONNECTED, D_ABANDONED, D_ENDED, D_SENT, D_OPENED, D_REPLIED, D_COST = range(9)
