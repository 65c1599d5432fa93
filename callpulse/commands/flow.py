"""`callpulse flow` — run the Bytewax dataflow (flows/dataflow.py) until SIGTERM/SIGINT.

Recovery is on by default (``--recovery-dir``, default ``./var/recovery``,
created with Bytewax's ``init_db_dir`` when it holds no partitions). The
first SIGTERM/SIGINT ends the input; the last frames are written, Bytewax
writes the last snapshots, and the command exits 0 (a second signal aborts).

Scaling: ``--workers N`` worker threads per process (Bytewax ``-w``; they
share the GIL, so the Python fold does not run faster), ``--processes P``
local processes (real parallelism; this command starts and supervises them),
or ``-i/--process-id`` with ``-a/--addresses`` to run one process of a cluster
you start yourself (as ``python -m bytewax.run -i -a``). See docs/flow.md.

Beside it: ``flow_errors.py`` (the one line an operator reads when the flow stops on an error, e.g. a
full disk) and ``flow_processes.py`` (the supervisor of ``--processes``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from callpulse.commands.flow_errors import EXIT_DISK_FULL, chain_text, disk_full_line, files_dir, last_line
from callpulse.commands.flow_processes import supervise

HELP = "Run the Bytewax dataflow (ingest streams -> metrics, frames, alerts in Redis) until SIGTERM/SIGINT."

DEFAULT_RECOVERY_DIR = "var/recovery"


def add_arguments(parser) -> None:
    parser.add_argument("--replay", action="store_true",
                        help="replay mode: the watermark moves only with events (no wall-clock ticks, "
                             "no future check), for recorded logs")
    parser.add_argument("-w", "--workers", type=int, default=1, metavar="N",
                        help="worker threads per process (default 1)")
    parser.add_argument("-p", "--processes", type=int, default=1, metavar="P",
                        help="start P local processes of N workers each (default 1)")
    parser.add_argument("-i", "--process-id", type=int, default=None,
                        help="this process's index in a cluster started by hand (needs -a)")
    parser.add_argument("-a", "--addresses", default=None,
                        help='host:port of every process of the cluster, ";"-separated (with -i)')
    rec = parser.add_argument_group("recovery")
    rec.add_argument("--recovery-dir", default=DEFAULT_RECOVERY_DIR,
                     help=f"Bytewax recovery directory (default ./{DEFAULT_RECOVERY_DIR}; created if missing)")
    rec.add_argument("--no-recovery", action="store_true",
                     help="no recovery: a restart re-reads the streams from the beginning")
    rec.add_argument("-s", "--snapshot-interval", type=float, default=10.0, metavar="SECONDS",
                     help="epoch length = snapshot interval (default 10, Bytewax's own default epoch): a crash "
                          "re-reads at most about this much input; shorter epochs snapshot big campaigns more "
                          "often (docs/flow.md, cost model)")
    rec.add_argument("-b", "--backup-interval", type=float, default=10.0, metavar="SECONDS",
                     help="how long superseded snapshots are kept (default 10)")
    rec.add_argument("--seal-chunk-rows", type=int, default=None, metavar="N",
                     help="sealed attempts are frozen into immutable chunks of N rows, each written to the "
                          "recovery dir once (default 65536; fixed for a campaign once it has frozen chunks)")
    rec.add_argument("--show-snapshot", default=None, metavar="ORG/CAMPAIGN|all",
                     help="print what the recovery dir holds for a campaign (its state's parts and the /stats "
                          "body they give, as JSON; 'all' lists the campaigns) and exit: starts no flow, reads "
                          "no Redis")
    rec.add_argument("--recovery-parts", type=int, default=None,
                     help="partitions to create in a new recovery dir (default: total workers)")
    rec.add_argument("--accept-new-dataset", action="store_true",
                     help="acknowledge a lost Redis dataset: adopt the dataset Redis holds now although the flow "
                          "worked on another one (--no-recovery after a recorded loss, --dataset-file, or a recovery "
                          "dir without state). Use once, after docs/operations.md 'After data loss'")
    rec.add_argument("--dataset-file", default=None, metavar="FILE",
                     help="with --no-recovery: keep the dataset id in FILE across restarts, so a Redis that comes "
                          "back without its data is refused even when the flow restarted too (with recovery the "
                          "id is kept in the recovery dir)")
    src = parser.add_argument_group("input")
    src.add_argument("--file", action="append", default=[], metavar="NDJSON",
                     help="read this NDJSON file instead of the ingest streams (repeatable; ends at EOF)")
    src.add_argument("--until-drained", action="store_true",
                     help="end (and exit) once every ingest stream has been read to its end")
    src.add_argument("--partitions", type=int, default=None,
                     help="ingest partitions (default CALLPULSE_PARTITIONS or 8)")
    src.add_argument("--retain-ms", type=int, default=None,
                     help="with recovery on, trim each ingest stream to entries at most this much older "
                          "(by entry id time) than the read position, once a minute (default 1 h; 0 = never)")
    eng = parser.add_argument_group("engine and frames")
    # the engine and recovery knobs default to None here: FlowConfig holds the defaults (the help repeats them)
    eng.add_argument("--lateness-ms", type=int, default=None, help="lateness bound (default 30000)")
    eng.add_argument("--min-sample", type=int, default=None, help="alert min_sample (default 50)")
    eng.add_argument("--retire-after-ms", type=int, default=None,
                     help="a completed, stopped or cancelled campaign without an event for this long (wall "
                          "clock) is archived to Redis and leaves memory, snapshots and heartbeats; an event "
                          "for it brings it back (default 3600000 = 1 h; 0 = never)")
    eng.add_argument("--frame-interval-ms", type=int, default=None,
                     help="minimum time between two frames of a campaign (default 250 = 4/s)")
    eng.add_argument("--heartbeat-ms", type=int, default=None,
                     help="a frame at least this often, even when nothing changed (default 5000; 0 = off)")


def _flow_config(args):
    """The flow's one settings object (flows/config.py): these flags, else the environment, else the defaults."""
    from flows.config import FlowConfig

    return FlowConfig.from_env(replay=args.replay, partitions=args.partitions,
                               files=tuple(args.file), until_drained=args.until_drained,
                               recovery=not args.no_recovery,
                               recovery_dir=None if args.no_recovery else args.recovery_dir,
                               lateness_ms=args.lateness_ms, min_sample=args.min_sample,
                               seal_chunk_rows=args.seal_chunk_rows, retire_after_ms=args.retire_after_ms,
                               frame_interval_ms=args.frame_interval_ms, heartbeat_ms=args.heartbeat_ms,
                               retain_ms=args.retain_ms)


def _ensure_recovery_dir(path: Path, parts: int) -> None:
    from bytewax.recovery import init_db_dir

    path.mkdir(parents=True, exist_ok=True)
    if not any(path.glob("part-*.sqlite3")):
        init_db_dir(path, parts)
        print(f"callpulse flow: created {parts} recovery partition(s) in {path}", file=sys.stderr)


def _wait_recovery_dir(path: Path, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_dir() and any(path.glob("part-*.sqlite3")):
            return True
        time.sleep(0.1)
    return False


def _record_start(cfg, args, total_workers: int) -> tuple[int, str | None]:
    """Key layout migration, dataset check (flows.dataset) and the start record: (0, the dataset id adopted)
    or (an exit status, None)."""
    import redis

    from engine.storage.keys import flow_status_key
    from flows.dataset import EXIT_DATASET_LOST, DatasetLost, LossNotAcknowledged, adopt_at_start, report_lost
    from flows.key_layout import migrate
    from flows.liveness import mark_start
    from flows.patience import Patience
    from flows.redis_connect import connect

    client = connect(cfg.redis_url, cluster=cfg.redis_cluster)
    recovery_dir = None if args.no_recovery else Path(args.recovery_dir)
    id_file = Path(args.dataset_file) if args.dataset_file else None
    try:
        # Redis may still be starting (or restarting): wait for it rather than exit
        ds = Patience("flow start", cfg.patience).call(
            lambda: adopt_at_start(client, recovery_dir, id_file=id_file, accept_new=args.accept_new_dataset))
        migrate(client)
        client.hdel(flow_status_key(), "dataset_error", "dataset_error_ms")
        mark_start(client)  # the last run's stop record and marks no longer hold (flows/liveness.py)
        client.hset(flow_status_key(), mapping={
            "mode": "replay" if cfg.replay else "live", "workers": total_workers,
            "started_ms": int(time.time() * 1000), "pid": os.getpid(), "dataset": ds,
            "min_sample": cfg.min_sample,  # the dashboard's "too few answers to judge" (api/org_live.py)
            "lateness_ms": cfg.lateness_ms})  # ingest's late notice (api/late_notice.py)
        return 0, ds
    except DatasetLost as exc:
        if not isinstance(exc, LossNotAcknowledged):  # else the recorded loss stays what /readyz shows
            report_lost(client, str(exc))
        print(f"callpulse flow: {exc}", file=sys.stderr, flush=True)
        return EXIT_DATASET_LOST, None
    except redis.RedisError as exc:
        raise SystemExit(f"callpulse flow: Redis at {cfg.redis_url}: {exc}") from None
    finally:
        client.close()


def run(args) -> int:
    if args.show_snapshot is not None:
        from callpulse.commands.flow_snapshot import show_snapshot

        return show_snapshot(args.recovery_dir, args.show_snapshot)
    if args.workers < 1 or args.processes < 1:
        print("callpulse flow: --workers and --processes must be >= 1", file=sys.stderr)
        return 2
    if (args.process_id is None) != (args.addresses is None):
        print("callpulse flow: -i/--process-id and -a/--addresses go together", file=sys.stderr)
        return 2
    if args.process_id is not None and args.processes > 1:
        print("callpulse flow: use either --processes or -i/-a", file=sys.stderr)
        return 2
    if args.file and args.until_drained:
        print("callpulse flow: --until-drained is for the ingest streams (--file ends at EOF)", file=sys.stderr)
        return 2
    for f in args.file:
        if not os.path.isfile(f):
            print(f"callpulse flow: no such file: {f}", file=sys.stderr)
            return 2
    if args.dataset_file and not args.no_recovery:
        print(f"callpulse flow: --dataset-file is for --no-recovery (with recovery the dataset id is kept in "
              f"{args.recovery_dir}/dataset-id)", file=sys.stderr)
        return 2

    cfg = _flow_config(args)
    n_procs = len(args.addresses.split(";")) if args.addresses else args.processes
    total = n_procs * args.workers
    try:
        if not args.no_recovery:
            if args.process_id in (None, 0):
                _ensure_recovery_dir(Path(args.recovery_dir), args.recovery_parts or total)
            elif not _wait_recovery_dir(Path(args.recovery_dir)):
                print(f"callpulse flow: no recovery partitions in {args.recovery_dir} (process 0 creates them)",
                      file=sys.stderr)
                return 2
        if args.process_id in (None, 0):
            rc, dataset = _record_start(cfg, args, total)
            if rc:
                return rc
            # the sinks and the beat of this process check it; the processes it starts get it in their environment
            cfg = replace(cfg, dataset=dataset)
    except BaseException as exc:  # Bytewax's Rust panics (pyo3 PanicException) are BaseExceptions
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        line = disk_full_line(chain_text(exc), files_dir(args))
        if line is None:
            raise
        from flows.liveness import record_stop

        record_stop(cfg.redis_url, "error", line.removeprefix("callpulse flow: stopped: "), first=False,
                    cluster=cfg.redis_cluster)
        print(line, file=sys.stderr, flush=True)
        return EXIT_DISK_FULL

    if args.processes > 1:
        return supervise(args, cfg)
    return _run_here(args, cfg)


def _run_here(args, cfg) -> int:
    from datetime import timedelta

    from bytewax.recovery import RecoveryConfig
    from bytewax.run import cli_main

    from flows.allocator import keep_big_blocks_mapped
    from flows.dataflow import build_flow
    from flows.lifecycle import install_signal_handlers

    keep_big_blocks_mapped()  # before the state grows (flows/allocator.py)

    recovery = None
    if not args.no_recovery:
        recovery = RecoveryConfig(Path(args.recovery_dir), timedelta(seconds=args.backup_interval))
    kwargs = {"workers_per_process": args.workers,
              "epoch_interval": timedelta(seconds=args.snapshot_interval),
              "recovery_config": recovery}
    if args.process_id is not None:
        kwargs["process_id"] = args.process_id
        kwargs["addresses"] = args.addresses.split(";")
    install_signal_handlers()
    mode = "replay" if cfg.replay else "live"
    where = ", ".join(cfg.files) if cfg.files else f"ingest streams at {cfg.redis_url}"
    print(f"callpulse flow: {mode} mode, {args.workers} worker(s), reading {where}, "
          f"recovery {'off' if recovery is None else args.recovery_dir}", file=sys.stderr, flush=True)
    from flows.lifecycle import STOP, STOPPED_BY
    from flows.liveness import Beat, record_stop

    # /readyz: "flow not running" soon after a SIGKILL
    beat = Beat(cfg.redis_url, dataset=cfg.dataset, cluster=cfg.redis_cluster).start()
    try:
        cli_main(build_flow(cfg), **kwargs)
    except KeyboardInterrupt:
        beat.stop()
        record_stop(cfg.redis_url, "aborted", "aborted by a second stop signal (the last epoch was not closed)",
                    cluster=cfg.redis_cluster)
        raise
    except BaseException as exc:  # Exception, or a Rust panic (pyo3 PanicException)
        from flows.dataset import EXIT_DATASET_LOST

        beat.stop()
        if isinstance(exc, SystemExit):
            raise
        text = chain_text(exc)
        if "Refusing to write a partial dataset" in text:
            record_stop(cfg.redis_url, "error", "Redis lost its data (exit 3)", cluster=cfg.redis_cluster)
            print("callpulse flow: stopped: Redis lost its data (see above and docs/operations.md)",
                  file=sys.stderr, flush=True)
            return EXIT_DATASET_LOST
        line = disk_full_line(text, files_dir(args))
        if line is not None:
            record_stop(cfg.redis_url, "error", line.removeprefix("callpulse flow: stopped: "),
                        cluster=cfg.redis_cluster)
            print(line, file=sys.stderr, flush=True)
            return EXIT_DISK_FULL
        record_stop(cfg.redis_url, "error", f"crashed: {last_line(text)}", cluster=cfg.redis_cluster)
        raise
    beat.stop()
    if STOP.is_set():
        record_stop(cfg.redis_url, "signal", f"stopped by {'/'.join(STOPPED_BY) or 'a stop request'}",
                    cluster=cfg.redis_cluster)
    else:
        record_stop(cfg.redis_url, "finished", "its input ended (--until-drained or --file)",
                    cluster=cfg.redis_cluster)
    from flows.step_stats import RETIREMENTS, SNAPSHOT_STATS

    print(f"callpulse flow: stopped ({SNAPSHOT_STATS.summary()}; {RETIREMENTS.summary()})", file=sys.stderr,
          flush=True)
    return 0
