"""`callpulse flow --processes P`: start P local processes of the flow as one Bytewax cluster, forward
SIGTERM/SIGINT to them and wait; when one fails, the others are stopped (a cluster cannot go on without
one of its processes) and the failure is recorded as the flow's stop reason.

Apart from the command (callpulse/commands/flow.py), which calls `supervise` instead of running the flow
in its own process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def supervise(args, cfg) -> int:
    """Start `args.processes` local processes (`-i k -a ...`), forward signals, and wait for them. ``cfg``: the
    supervisor's `FlowConfig` (its Redis, and the dataset it adopted, which each process is given)."""
    from callpulse.redis_local import free_port
    from callpulse.settings import child_env
    from flows.config import DATASET_SETTING

    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(args.processes))
    base = [sys.executable, "-m", "callpulse.cli", "flow", *child_argv(args)]
    env = child_env(**{DATASET_SETTING: cfg.dataset}) if cfg.dataset else None  # for their sinks and beats
    children = []
    for i in range(args.processes):
        children.append(subprocess.Popen([*base, "--process-id", str(i), "--addresses", addresses],
                                         preexec_fn=_die_with_parent, env=env))

    def forward(signum, _frame):
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    from flows.liveness import record_stop

    index = {id(c): i for i, c in enumerate(children)}
    rc = 0
    while children:
        for c in list(children):
            code = c.poll()
            if code is None:
                continue
            children.remove(c)
            if code != 0:
                if rc == 0:  # before the others are stopped: their "stopped by SIGTERM" is not why
                    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    record_stop(cfg.redis_url, "error", f"flow process {index[id(c)]} {how}",
                                cluster=cfg.redis_cluster)
                rc = rc or code
                for other in children:  # a cluster cannot go on without one of its processes
                    if other.poll() is None:
                        other.terminate()
        time.sleep(0.05)
    return rc


def child_argv(args) -> list[str]:
    """The options of this command for one child process (everything but --processes)."""
    out = ["--workers", str(args.workers), "--recovery-dir", args.recovery_dir,
           "--snapshot-interval", str(args.snapshot_interval), "--backup-interval", str(args.backup_interval)]
    for flag in ("replay", "no_recovery", "until_drained", "accept_new_dataset"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    # the options left unset stay unset: the child's FlowConfig takes the same environment and defaults
    for flag in ("lateness_ms", "min_sample", "seal_chunk_rows", "retire_after_ms", "frame_interval_ms",
                 "heartbeat_ms", "retain_ms", "partitions", "recovery_parts", "dataset_file"):
        if getattr(args, flag) is not None:
            out += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    for f in args.file:
        out += ["--file", f]
    return out


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the supervisor dies, so no orphan keeps a port or the streams."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
