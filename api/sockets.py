"""Bound what a client that never reads can pin: kernel send buffer, asyncio buffer, time.

- `BoundedHTTPProtocol` (uvicorn's HTTP protocol, passed as ``uvicorn.Config(http=...)`` by
  `callpulse api` and `tests.support.ServerThread`) caps ``SO_SNDBUF`` on every accepted socket
  (Linux otherwise autotunes it up to ``tcp_wmem`` max, ~4 MiB, per socket) and keeps the
  transports by peer address so that a stalled client can be cut off.
- `BoundedHTTPProtocol` also closes a connection that has not sent a request's complete headers
  within ``header_timeout_s`` (``CALLPULSE_HEADER_TIMEOUT_S``, default 10 s; ``callpulse api
  --header-timeout-s``) of its opening or of its previous response: slow-loris connections cannot
  hold every file descriptor. A partial request gets a 408 first.
- `StallReaper` watches the SSE streams: a stream whose pending send has not completed for
  ``stall_s`` (the oldest unsent frame is that old: the socket buffer and uvicorn's 64 KiB
  write buffer are full) is reset (`reset`: ``SO_LINGER`` 0, then abort, so the kernel sends an RST
  and frees its queue at once; a plain close would keep the unsent bytes of a peer that never
  reads, in FIN_WAIT1, for minutes). The client gets ECONNRESET and may reconnect and resume with
  ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.settings import ApiSettings

log = logging.getLogger("callpulse.api.sockets")

TRANSPORTS: dict[tuple, asyncio.Transport] = {}  # (host, port) of the peer -> its transport


class BoundedHTTPProtocol(H11Protocol):
    # the settings' defaults (CALLPULSE_SNDBUF, CALLPULSE_HEADER_TIMEOUT_S), for a server made without settings
    # (tests/support.py); `configured` gives the process's own
    sndbuf = ApiSettings.sndbuf
    header_timeout_s = ApiSettings.header_timeout_s  # 0: no header timeout
    _header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def with_header_timeout(cls, header_timeout_s: float) -> type[BoundedHTTPProtocol]:
        """This protocol with another header timeout (``callpulse api --header-timeout-s``)."""
        return type(cls.__name__, (cls,), {"header_timeout_s": header_timeout_s})

    @classmethod
    def configured(cls, settings: ApiSettings) -> type[BoundedHTTPProtocol]:
        """This protocol as the process's settings say (``sndbuf``, ``header_timeout_s``: api/settings.py)."""
        return type(cls.__name__, (cls,), {"header_timeout_s": settings.header_timeout_s, "sndbuf": settings.sndbuf})

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and self.sndbuf > 0:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        if self.client:
            TRANSPORTS[tuple(self.client)] = transport
        self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        if self.client:
            TRANSPORTS.pop(tuple(self.client), None)
        super().connection_lost(exc)

    # -------------------------------------------------------- header timeout (slow loris)
    # Armed when the connection opens and again when a response completes (the next request of a
    # keep-alive connection); stopped once h11 has a request's complete headers (uvicorn then sets
    # a new ``scope``). uvicorn's own keep-alive timer is cancelled by any byte received, so alone it
    # would let a client that sends a byte now and then, and never a whole header block, hold a socket.

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if self.header_timeout_s > 0:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def handle_events(self) -> None:
        scope = self.scope
        super().handle_events()
        if self.scope is not scope:  # a request's headers were complete (its cycle started, or an upgrade)
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_header_timer()  # before super(): it may start a pipelined request at once
        super().on_response_complete()

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:  # the rest of a body whose response went out early:
            self._arm_header_timer()  # not a header wait; look again later
            return
        partial = bool(self.conn.trailing_data[0])
        if partial:  # part of a request came: say why it ends (an idle connection just closes)
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                                 b"content-length: 33\r\nconnection: close\r\n\r\n"
                                 b"request headers not sent in time\n")
        self.transport.close()
        log.info("closed connection %s: no complete request headers within %.0f s%s", self.client,
                 self.header_timeout_s, " (partial request)" if partial else "")


LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger {l_onoff = 1, l_linger = 0}


def reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset: ``SO_LINGER`` 0, then abort. The kernel drops the unsent queue and the
    socket at once and the peer gets ECONNRESET; a bare abort() is a plain close(), which queues a FIN
    behind the unsent bytes and keeps them (FIN_WAIT1) as long as the peer does not read, for minutes."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()


class _Watch:
    __slots__ = ("peer", "since")

    def __init__(self, peer):
        self.peer = peer
        self.since = 0.0  # monotonic time the pending send started; 0 = nothing pending


class StallReaper:
    def __init__(self, stall_s: float, metrics=None):  # stall_s: ApiSettings.sse_stall_s
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
                        reset(transport)  # RST; uvicorn sees the disconnect and the stream ends
                    self.dropped += 1
                    if self.metrics is not None:
                        self.metrics.sse_dropped.inc()
                    log.info("dropped SSE client %s: a send stalled for over %.0f s", w.peer, self.stall_s)
