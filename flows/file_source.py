"""Bytewax source over NDJSON files, for replays of recorded logs (`callpulse flow --file F`).

One partition per file, read in order, `count` lines per batch; blank lines
are skipped (SPEC §1). The resume state is ``(byte offset, line number)`` of
the next line, so a recovered replay continues after the last line it had
read. The partition ends (EOF) at the end of the file: the flow then writes
its final frames and exits.

Items are grouped by campaign like the Redis source's (`flows.routing`), each
entry ``(ref, raw)``: ``ref`` = ``"file:<absolute path>:<line number>"``,
``raw`` = the line's bytes.

Per-campaign order is the order of the lines: a campaign's events should be
in one file (several files are read in parallel, with no order between them).
Bytewax's own `bytewax.connectors.files.FileSource` reads lines too, but
yields `str` and has no line numbers for dead-letter references, hence this
small class.
"""

from __future__ import annotations

import os

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.lifecycle import STOP
from flows.messages import Entry, Routed
from flows.routing import grouped, route_of_raw

DEFAULT_COUNT = 1000


class NdjsonPartition(StatefulSourcePartition[Routed, tuple]):
    def __init__(self, path: str, offset: int, line: int, count: int):
        self.path = path
        self.f = open(path, "rb")
        self.f.seek(offset)
        self.line = line
        self.count = count
        self.prefix = f"file:{path}:"

    def next_batch(self) -> list:
        if STOP.is_set():
            raise StopIteration
        items: list[tuple[str, Entry]] = []
        readline = self.f.readline
        while len(items) < self.count:
            raw = readline()
            if not raw:
                if items:
                    return grouped(items)
                raise StopIteration
            self.line += 1
            if raw.strip():
                raw = raw.rstrip(b"\r\n")
                items.append((route_of_raw(raw), (self.prefix + str(self.line), raw)))
        return grouped(items)

    def snapshot(self) -> tuple:
        return (self.f.tell(), self.line)

    def close(self) -> None:
        self.f.close()


class NdjsonFileSource(FixedPartitionedSource[Routed, tuple]):
    def __init__(self, paths: list[str], *, count: int = DEFAULT_COUNT):
        self.paths = [os.path.abspath(p) for p in paths]
        self.count = count

    def list_parts(self) -> list[str]:
        # The partition key is the path, so a recovery directory never resumes one file at another's offset.
        return list(self.paths)

    def build_part(self, step_id: str, for_part: str, resume_state: tuple | None) -> NdjsonPartition:
        offset, line = resume_state if resume_state is not None else (0, 0)
        return NdjsonPartition(for_part, offset, line, self.count)
