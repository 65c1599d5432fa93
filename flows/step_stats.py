"""Counters of this process's campaign steps, printed by `callpulse flow` when it stops."""

from __future__ import annotations


class SnapshotStats:
    """Campaign snapshots taken by this process: count, bytes, time."""

    def __init__(self):
        self.count = self.bytes = 0
        self.seconds = self.max_seconds = 0.0
        self.max_bytes = 0

    def record(self, seconds: float, size: int) -> None:
        self.count += 1
        self.bytes += size
        self.seconds += seconds
        self.max_seconds = max(self.max_seconds, seconds)
        self.max_bytes = max(self.max_bytes, size)

    def summary(self) -> str:
        if not self.count:
            return "no campaign snapshots"
        return (f"{self.count} campaign snapshots, {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s "
                f"(largest {self.max_bytes / 1e6:.2f} MB, slowest {self.max_seconds * 1000:.1f} ms)")


class RetirementStats:
    """Campaigns retired to their archive and revived from it (flows/retirement.py)."""

    def __init__(self):
        self.retired = self.revived = 0

    def summary(self) -> str:
        return f"{self.retired} campaigns retired, {self.revived} revived"


SNAPSHOT_STATS = SnapshotStats()
RETIREMENTS = RetirementStats()
