"""Bound what a client that never reads can pin: kernel send buffer, asyncio buffer, time.

- `BoundedHTTPProtocol` (uvicorn's HTTP protocol, passed as ``uvicorn.Config(http=...)`` by
  `callpulse api` and `tests.support.ServerThread`) caps ``SO_SNDBUF`` on every accepted socket
  (Linux otherwise autotunes it up to ``tcp_wmem`` max, ~4 MiB, per socket) and keeps the
  transports by peer address so that a stalled client can be cut off.
- `StallReaper` watches the SSE streams: a stream whose pending send has not completed for
  ``stall_s`` (the oldest unsent frame is that old: the socket buffer and uvicorn's 64 KiB
  write buffer are full) is aborted (RST: the kernel frees its queue at once; a plain close
  would keep the unsent bytes of a peer that never reads). The client may reconnect and resume
  with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("callpulse.api.sockets")

DEFAULT_SNDBUF = int(os.environ.get("CALLPULSE_SNDBUF", 64 * 1024))  # the kernel doubles it (bookkeeping)
TRANSPORTS: dict[tuple, asyncio.Transport] = {}  # (host, port) of the peer -> its transport


class BoundedHTTPProtocol(H11Protocol):
    sndbuf = DEFAULT_SNDBUF

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and self.sndbuf > 0:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        if self.client:
            TRANSPORTS[tuple(self.client)] = transport

    def connection_lost(self, exc) -> None:
        if self.client:
            TRANSPORTS.pop(tuple(self.client), None)
        super().connection_lost(exc)


class _Watch:
    __slots__ = ("peer", "since")

    def __init__(self, peer):
        self.peer = peer
        self.since = 0.0  # monotonic time the pending send started; 0 = nothing pending


class StallReaper:
    def __init__(self, stall_s: float = 10.0, metrics=None):
        self.stall_s = stall_s
        self.metrics = metrics
        self.watches: set[_Watch] = set()
        self.dropped = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def watch(self, gen, peer):
        """Wrap an SSE body: the time between a yield and the next resume is the send time."""
        w = _Watch(tuple(peer) if peer else None)
        self.watches.add(w)
        try:
            async for chunk in gen:
                w.since = time.monotonic()
                yield chunk
                w.since = 0.0
        finally:
            self.watches.discard(w)
            with contextlib.suppress(Exception):
                await gen.aclose()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.stall_s / 4))
            now = time.monotonic()
            for w in list(self.watches):
                if w.since and now - w.since > self.stall_s:
                    w.since = 0.0
                    self.watches.discard(w)
                    transport = TRANSPORTS.get(w.peer) if w.peer else None
                    if transport is not None:
                        transport.abort()  # RST; uvicorn sees the disconnect and the stream ends
                    self.dropped += 1
                    if self.metrics is not None:
                        self.metrics.sse_dropped.inc()
                    log.info("dropped SSE client %s: a send stalled for over %.0f s", w.peer, self.stall_s)
