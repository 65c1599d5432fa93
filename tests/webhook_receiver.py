"""A real HTTP receiver for webhook tests: a ThreadingHTTPServer on a free port in a thread.

Each path has a plan: answer 503 to the first ``fail_first`` requests of every webhook-id (or to
every request with ``fail_first=None``), then 200. Every request is recorded with its time,
headers and raw body; the tests verify the signatures themselves.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from callpulse.redis_local import free_port


@dataclass
class Received:
    at: float
    path: str
    headers: dict
    body: bytes
    status: int


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plans: dict[str, int | None] = {}
        self.requests: list[Received] = []
        self.seen: dict[tuple, int] = defaultdict(int)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    key = (self.path, self.headers.get("webhook-id"))
                    receiver.seen[key] += 1
                    plan = receiver.plans.get(self.path, 0)
                    status = 503 if plan is None or receiver.seen[key] <= plan else 200
                    receiver.requests.append(Received(time.monotonic(), self.path,
                                                      {k.lower(): v for k, v in self.headers.items()},
                                                      body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def on(self, path: str, fail_first: int | None) -> str:
        self.plans[path] = fail_first
        return self.url + path

    def got(self, path: str, status: int | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path and (status is None or r.status == status)]

    def delivered_ids(self, path: str) -> list[str]:
        return sorted(r.headers["webhook-id"] for r in self.got(path, 200))
