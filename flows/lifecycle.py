"""Graceful stop for the flow: a process-wide flag the sources poll.

`callpulse flow` installs `install_signal_handlers()`: the first SIGTERM or
SIGINT sets `STOP`; every source partition then ends its input
(`StopIteration`) at its next poll, so the dataflow reaches EOF the normal
way: the stateful steps emit their last frames (`on_eof`), the sink writes
them, Bytewax closes the epoch and writes the last recovery snapshots, and
the process exits 0. A second signal aborts at once (KeyboardInterrupt).

Python runs signal handlers on the main thread only. Bytewax's main thread
either runs the single worker (whose Python calls let the handler run) or,
with several workers, sleeps in a loop that calls `check_signals`; either way
the handler runs within a few milliseconds and the worker threads see the
flag.
"""

from __future__ import annotations

import signal
import sys
import threading

STOP = threading.Event()
STOPPED_BY: list[str] = []  # the name of the signal that set STOP (for the stop record, flows/liveness.py)


def request_stop() -> None:
    STOP.set()


def _handler(signum, _frame) -> None:
    if STOP.is_set():
        raise KeyboardInterrupt  # second signal: abort now
    print(f"callpulse flow: {signal.Signals(signum).name} received, finishing the current epoch "
          "(send again to abort)", file=sys.stderr, flush=True)
    STOPPED_BY.append(signal.Signals(signum).name)
    STOP.set()


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
