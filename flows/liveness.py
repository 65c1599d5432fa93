"""Whether the flow runs, for `/readyz`: a liveness beat and a stop record in the flow status.

`callpulse flow` writes, in ``callpulse:flow:status`` (`engine.storage.keys.flow_status_key`):

- ``alive_ms`` every ``ALIVE_EVERY_S`` (and ``alive_every_ms``), from a thread of its own, so the beat
  does not depend on the dataflow's progress: a flow that is alive but behind keeps beating (and
  `/readyz` judges its lag as before), a killed one (SIGKILL, the OOM killer, a power cut) stops at
  once, and `/readyz` says "flow not running" after a few missed beats;
- ``stopped_ms``, ``stop_kind`` and ``stop_reason`` when it ends for any reason it can see: an error
  (``error``), a stop signal (``signal``), a second signal (``aborted``), or the end of its input
  (``finished``: ``--until-drained``, ``--file``). The first record of a run wins (a cluster's other
  processes, stopped because one failed, do not hide why). `/readyz` answers 503 with the reason at
  once, except after ``finished`` (judged by the lag bound, as before).

A flow that starts clears the record (`mark_start`). Everything here is best effort: a Redis that
cannot be reached makes `/readyz` 503 on its own.
"""

from __future__ import annotations

import sys
import threading
import time

from engine.storage.keys import flow_status_key
from flows.dataset import current, lost_message, report_lost
from flows.redis_connect import connect

ALIVE_EVERY_S = 1.0
STOP_FIELDS = ("stopped_ms", "stop_kind", "stop_reason")

# HSET the stop record unless this run already has one (one slot: the status hash only)
_RECORD_STOP = """
if redis.call('HEXISTS', KEYS[1], 'stop_reason') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'stopped_ms', ARGV[1], 'stop_kind', ARGV[2], 'stop_reason', ARGV[3])
return 1
"""


def _ms() -> int:
    return int(time.time() * 1000)


def _client(redis_url: str, cluster: bool | None = None):
    return connect(redis_url, cluster=cluster, socket_timeout=2, socket_connect_timeout=2)


def mark_start(client) -> None:
    """At the start of a run: no stop recorded, alive now, and no poll or write reported yet (the last
    run's ``tick_ms``/``write_ms`` would make `/readyz` 200 before this run works)."""
    client.hdel(flow_status_key(), *STOP_FIELDS, "tick_ms", "write_ms")
    client.hset(flow_status_key(), mapping={"alive_ms": _ms(), "alive_every_ms": int(ALIVE_EVERY_S * 1000)})


def record_stop(redis_url: str, kind: str, reason: str, *, first: bool = True, cluster: bool | None = None) -> bool:
    """Record why the flow ended, unless this run already recorded it (``first``; else overwrite: a start
    that failed before it cleared the last run's record); best effort (True if written). ``cluster``: the
    settings' ``CALLPULSE_REDIS_CLUSTER`` (None: ask Redis)."""
    try:
        client = _client(redis_url, cluster)
        try:
            if not first:
                client.hset(flow_status_key(), mapping={"stopped_ms": _ms(), "stop_kind": kind, "stop_reason": reason})
                return True
            return bool(client.eval(_RECORD_STOP, 1, flow_status_key(), _ms(), kind, reason))
        finally:
            client.close()
    except Exception as exc:  # Redis down (or gone): /readyz says so itself
        print(f"callpulse flow: could not record the stop in Redis ({type(exc).__name__}: {exc})",
              file=sys.stderr, flush=True)
        return False


class Beat:
    """A daemon thread that writes ``alive_ms`` every ``every_s`` while the flow runs.

    It writes only while Redis holds the flow's dataset (``dataset``: the id `callpulse flow` adopted at
    start, `FlowConfig.dataset`); otherwise it records the loss (``dataset_error``, flows/dataset.py) once,
    even when the flow has nothing to write, and stops beating."""

    def __init__(self, redis_url: str, every_s: float = ALIVE_EVERY_S, *, dataset: str | None = None,
                 cluster: bool | None = None):
        self.redis_url = redis_url
        self.cluster = cluster
        self.every_s = every_s
        self.dataset = dataset
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="callpulse-liveness", daemon=True)
        self.lost = False

    def start(self) -> Beat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def _run(self) -> None:
        client = None
        every_ms = int(self.every_s * 1000)
        try:
            while not self.done.is_set():
                try:
                    client = client or _client(self.redis_url, self.cluster)
                    self.beat(client, every_ms)
                except Exception:  # Redis unreachable: /readyz says so; beat again next time
                    pass
                self.done.wait(self.every_s)
        finally:
            if client is not None:
                client.close()

    def beat(self, client, every_ms: int) -> None:
        if self.lost:
            return
        if self.dataset is not None:
            found = current(client)
            if found != self.dataset:
                self.lost = True
                msg = lost_message(self.dataset, found, "the running flow")
                print(f"callpulse flow: {msg}", file=sys.stderr, flush=True)
                report_lost(client, msg)
                return
        client.hset(flow_status_key(), mapping={"alive_ms": _ms(), "alive_every_ms": every_ms})
