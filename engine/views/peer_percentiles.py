"""Peer percentiles across campaigns (`GET /v1/benchmarks?kind=`): how a campaign's rates compare with
its peers of the same kind (mean and p25/p50/p75 per rate). Not the `benchmarks/` performance suite."""

from __future__ import annotations

import numpy as np

BENCHMARK_RATES = {
    "answer_rate": ("rates", "answer_rate"),
    "connect_rate": ("rates", "connect_rate"),
    "completion_rate": ("rates", "completion_rate"),
    "abandon_rate": ("abandon", "windows", "lifetime", "rate"),
    "delivery_rate": ("email", "rates", "delivery_rate"),
    "open_rate": ("email", "rates", "open_rate"),
    "click_rate": ("email", "rates", "click_rate"),
    "reply_rate": ("email", "rates", "reply_rate"),
    "conversion_rate": ("email", "rates", "conversion_rate"),
}


def _dig(body: dict, path: tuple):
    for part in path:
        body = body[part]
    return body


def benchmarks(stats_bodies: list[dict], org_id: str, kind: str) -> dict:
    """Per rate: mean and p25/p50/p75 (linear interpolation) over the org's campaigns of ``kind``."""
    peers = [b for b in stats_bodies if b["org_id"] == org_id and b["kind"] == kind]
    out: dict[str, dict[str, float | int | None]] = {}
    for name, path in BENCHMARK_RATES.items():
        values = np.array([_dig(b, path) for b in peers], dtype=float)
        if values.size == 0:
            out[name] = {"average": None, "p25": None, "p50": None, "p75": None, "sample_size": 0}
            continue
        p25, p50, p75 = np.percentile(values, [25, 50, 75])
        out[name] = {"average": float(values.mean()), "p25": float(p25), "p50": float(p50),
                     "p75": float(p75), "sample_size": int(values.size)}
    return out
