"""Why `callpulse flow` stopped, in one line for an operator: a full disk (`disk_full_line`, exit
`EXIT_DISK_FULL`), or the line of an exception chain that says what happened (`last_line`, `chain_text`).

Apart from the command (callpulse/commands/flow.py) so that the command reads as its steps; also used by
the tests of these lines.
"""

from __future__ import annotations

import os
import shutil

EXIT_DISK_FULL = 4  # the recovery directory's disk is full (docs/operations.md, "Exit codes of callpulse flow")

DISK_FULL = ("database or disk is full", "No space left on device", "Disk quota exceeded", "[Errno 28]",
             "[Errno 122]")
IO_ERROR = ("disk I/O error", "[Errno 5]")  # what a full disk can also look like (SQLite's WAL index)
FULL_BELOW_BYTES = 1 << 20


def disk_full_line(text: str, state_dir: str | None) -> str | None:
    """One line for an operator when ``text`` (an exception chain, `chain_text`) says the disk is full:
    Bytewax's SQLite ("database or disk is full") or a chunk or dataset-id write (ENOSPC, EDQUOT); or an
    I/O error while the directory's filesystem has less than 1 MiB free."""
    if any(marker in text for marker in DISK_FULL):
        why = last_line(text, DISK_FULL)
    elif state_dir and any(marker in text for marker in IO_ERROR) and _free_bytes(state_dir) < FULL_BELOW_BYTES:
        why = f"an I/O error with {_free_bytes(state_dir)} bytes free"
    else:
        return None
    where = f"the disk of the recovery directory {os.path.abspath(state_dir)}" if state_dir else "the disk"
    return (f"callpulse flow: stopped: {where} is full ({why}). Free space there, or move "
            f"the recovery directory whole to a bigger disk, then restart: the flow resumes from its last "
            f"snapshot (exit {EXIT_DISK_FULL}; docs/operations.md)")


def _free_bytes(path: str) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return FULL_BELOW_BYTES  # unknown: not judged full


def files_dir(args) -> str | None:
    """Where the flow writes files: the recovery dir, or with --no-recovery the --dataset-file's directory."""
    if not args.no_recovery:
        return args.recovery_dir
    return (os.path.dirname(args.dataset_file) or ".") if args.dataset_file else None


def last_line(text: str, prefer: tuple[str, ...] = ()) -> str:
    """The line of an exception chain that says what happened: the first with a ``prefer`` marker, else
    the last non-empty one; short."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hit = next((ln for ln in lines if any(m in ln for m in prefer)), None)
    line = hit or (lines[-1] if lines else "unknown error")
    for marker in prefer:  # the marker, not the Rust unwrap around it
        if marker in line and marker.startswith(("database", "No space", "Disk quota")):
            return marker
    return line if len(line) <= 300 else line[:297] + "..."


def chain_text(exc: BaseException) -> str:
    """Every message of an exception and of those it came from, one per line: Bytewax wraps a Python error
    raised in a step in errors of its own."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)
