"""Everything the flow's campaign step makes of an event log, written to one file (run as a script).

    python tests/engine_outputs.py LOG OUT

Feeds LOG (NDJSON) through one `flows.campaign_step.CampaignLogic` per campaign, in replay mode with a frame
after every batch (batches of 97 lines, so a frame lands mid-campaign), and writes to OUT, one JSON line
each: every output item (frames with their `/stats` body, detail records, alerts, dead letters without
their wall-clock ``at``), then each campaign's final state and gate in the recovery format. Whichever build
of the engine the process imports (engine/compiled.py): tests/test_compiled_engine.py runs it under both
and requires the same bytes.
"""

from __future__ import annotations

import dataclasses
import sys

import orjson

from engine.storage.keys import route_key
from engine.storage.recovery_format import encode
from flows.campaign_step import CampaignLogic
from flows.config import FlowConfig
from flows.messages import CampaignBatch, DeadLetter


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)  # type: ignore[arg-type]
    raise TypeError(type(value).__name__)


def main(log: str, out: str) -> None:
    cfg = FlowConfig(replay=True, frame_interval_ms=0, heartbeat_ms=0, retire_after_ms=0)
    logics: dict[str, CampaignLogic] = {}
    lines: list[bytes] = []
    with open(log, "rb") as f:
        lines = [ln.rstrip(b"\n") for ln in f if ln.strip()]
    with open(out, "wb") as sink:
        def emit(items) -> None:
            for item in items:
                if isinstance(item, DeadLetter):
                    item = DeadLetter({k: v for k, v in item.record.items() if k != "at"})
                sink.write(orjson.dumps([type(item).__name__, list(item)], default=_plain,
                                        option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS) + b"\n")

        for start in range(0, len(lines), 97):
            by_route: dict[str, list] = {}
            for n, raw in enumerate(lines[start:start + 97], start):
                try:
                    ev = orjson.loads(raw)
                    route = route_key(ev["org_id"], ev["campaign_id"])
                except Exception:  # the step judges it: a dead letter of the first campaign's step
                    route = next(iter(logics), "unroutable")
                by_route.setdefault(route, []).append((f"file:{n}", raw))
            for route, entries in by_route.items():
                logic = logics.setdefault(route, CampaignLogic(cfg, None))
                items, _ = logic.on_batch([CampaignBatch(route, entries)])
                emit(items)
        for route in sorted(logics):
            logic = logics[route]
            emit(logic.on_eof()[0])
            sink.write(encode((logic.state, logic.gate)).hex().encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
