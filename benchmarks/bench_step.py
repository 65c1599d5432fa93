"""The flow's campaign step alone (parse, gate, apply, frames, detail records; no Bytewax, no Redis), events/s.

    python -S benchmarks/bench_step.py [ROOT] [N] [FILE]

ROOT (default: this checkout) is put first on ``sys.path`` and Python runs with ``-S`` (no site: the
editable install would otherwise import this checkout's packages whatever ROOT is), so a ``git worktree``
of an older commit can be measured beside this one in the same session. N (default 1,500,000): the first
N events of ``var/bench/voice-1000000.ndjson`` (made by ``callpulse bench scale --contacts 1000000
--reuse``), or of FILE (e.g. ``var/bench/voice-30000.ndjson``: ``callpulse bench scale --reuse``), fed in
batches of 1,000 to ``CampaignLogic.on_batch``.
"""

import glob
import sys
import time
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
root = sys.argv[1] if len(sys.argv) > 1 else str(HERE)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_500_000
sys.path[:0] = [root, *glob.glob(str(HERE / ".venv/lib/python3*/site-packages"))]

import orjson  # noqa: E402

from engine.storage.keys import route_key  # noqa: E402
from flows.campaign_step import CampaignLogic  # noqa: E402
from flows.config import FlowConfig  # noqa: E402
from flows.messages import CampaignBatch  # noqa: E402

DATA = Path(sys.argv[3]) if len(sys.argv) > 3 else HERE / "var/bench/voice-1000000.ndjson"
if not DATA.exists():
    sys.exit(f"bench step: {DATA} is missing: run `callpulse bench scale --contacts 1000000 --reuse` first")
with open(DATA, "rb") as f:
    lines = [ln.rstrip(b"\n") for ln in islice(f, n)]
first = orjson.loads(lines[0])
route = route_key(first["org_id"], first["campaign_id"])
logic = CampaignLogic(FlowConfig(replay=True, retire_after_ms=0), None)
t0 = time.perf_counter()
for i in range(0, len(lines), 1000):
    logic.on_batch([CampaignBatch(route, [(f"f:{j}", raw) for j, raw in enumerate(lines[i:i + 1000], i)])])
dt = time.perf_counter() - t0
print(f"{root}: {len(lines):,} events in {dt:.1f} s = {len(lines) / dt:,.0f} events/s")
