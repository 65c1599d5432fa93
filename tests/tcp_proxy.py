"""A TCP proxy between a client and Redis that can withhold or cut a chosen command (fault injection).

Every connection is pumped both ways by two threads. `arm(pattern, mode)` acts on the first client
bytes that contain ``pattern`` (e.g. ``b"EVALSHA"``, the ingest append), once:

- ``hold``: the bytes are not forwarded and the connection stays open (the client waits, as a process
  that is killed mid-request would);
- ``cut_before``: the bytes are not forwarded and the connection is closed (a network blip before the
  command reached Redis);
- ``cut_after``: the bytes reach Redis but the connection is closed before the reply comes back (a blip,
  or a crash, after Redis did the work).

`triggered` is set when the rule fired. `drop_all()` closes every open connection; `refuse(True)` makes
new connections close at once (Redis unreachable) until `refuse(False)`.
"""

from __future__ import annotations

import socket
import threading

from callpulse.redis_local import free_port


class TcpProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.port = free_port()
        self.url = f"redis://{host}:{self.port}/0"
        self.triggered = threading.Event()
        self._rule: tuple[bytes, str] | None = None
        self._refusing = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.create_server((host, self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, pattern: bytes, mode: str) -> None:
        assert mode in ("hold", "cut_before", "cut_after")
        self.triggered.clear()
        self._rule = (pattern, mode)

    def disarm(self) -> None:
        self._rule = None

    def refuse(self, on: bool) -> None:
        self._refusing = on
        if on:
            self.drop_all()

    def drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _close(s)

    def close(self) -> None:
        self._closed = True
        _close(self._server)
        self.drop_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._refusing:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            cut = threading.Event()  # set when this connection's reply is to be swallowed (cut_after)
            threading.Thread(target=self._pump, args=(client, upstream, True, cut), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, cut), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool, cut: threading.Event) -> None:
        held = False
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if held:
                continue  # a held connection forwards nothing more
            if cut.is_set() and not from_client:
                # Redis replied, so it ran the command: mark the rule fired *before* the client can see
                # its connection drop, then drop it without the reply.
                self.triggered.set()
                break
            rule = self._rule if from_client else None
            if rule is not None and rule[0] in data:
                self._rule = None
                mode = rule[1]
                if mode == "cut_after":
                    cut.set()  # the other pump swallows the reply and closes both sides
                    try:
                        dst.sendall(data)
                    except OSError:
                        pass
                    return
                self.triggered.set()
                if mode == "hold":
                    held = True
                    continue
                break  # cut_before
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
