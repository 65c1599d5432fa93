"""`callpulse api [--host H] [--port P] [--dev]` — serve the HTTP API (REST + SSE) with uvicorn.

One process = one shared async Redis client and one Redis pub/sub subscription
fanned out to every SSE client (on a Redis Cluster: the sharded channels its clients
need; see docs/api.md). Run several processes behind a load balancer to scale out
(docs/operations.md, *Several API processes*); each caps its SSE streams
(``--sse-max-connections``).
"""

from __future__ import annotations

import sys

HELP = "Serve the HTTP API (REST + server-sent events) on uvicorn."


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--dev", action="store_true",
                        help="dev mode: also accept the fixed demo key (api.auth.DEV_KEY); never in production "
                             "(env CALLPULSE_DEV=1 does the same)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    parser.add_argument("--heartbeat", type=float, default=None,
                        help="SSE: re-send the latest frame after this many quiet seconds (default 5)")
    parser.add_argument("--sse-stall-s", type=float, default=None,
                        help="cut off an SSE client whose pending send has not completed for this long "
                             "(a client that does not read; default 10)")
    parser.add_argument("--sse-max-connections", type=int, default=None,
                        help="open SSE streams this process serves; past it new ones get 503 with Retry-After "
                             "(default env CALLPULSE_SSE_MAX_CONNECTIONS, else 10000)")
    parser.add_argument("--header-timeout-s", type=float, default=None,
                        help="close a connection that has not sent a request's complete headers within this "
                             "many seconds of opening or of its previous response (slow loris; 0 = never; "
                             "default env CALLPULSE_HEADER_TIMEOUT_S, else 10)")
    parser.add_argument("--no-webhooks", action="store_true",
                        help="do not deliver webhooks from this process (env CALLPULSE_WEBHOOKS=0 does the same); "
                             "the /v1/webhooks routes still work")
    parser.add_argument("--graceful-timeout", type=float, default=5.0,
                        help="seconds to wait for open connections on shutdown (default 5)")


def run(args) -> int:
    import uvicorn

    from api.app import build_app
    from api.auth import DEV_KEY
    from api.settings import ApiSettings
    from api.sockets import BoundedHTTPProtocol

    try:  # the process's one settings object: these flags, else the environment, else the defaults
        settings = ApiSettings.from_env(dev_mode=args.dev or None, heartbeat_s=args.heartbeat,
                                        sse_stall_s=args.sse_stall_s, webhooks=False if args.no_webhooks else None,
                                        sse_max_connections=args.sse_max_connections,
                                        header_timeout_s=args.header_timeout_s)
    except ValueError as exc:  # a malformed or out-of-range setting (e.g. CALLPULSE_INGEST_RATE): one line, exit 2
        print(f"callpulse api: {exc}", file=sys.stderr)
        return 2
    app = build_app(settings)
    protocol = BoundedHTTPProtocol.configured(settings)
    if settings.dev_mode:
        print(f"callpulse api: DEV MODE — the demo key {DEV_KEY} is accepted (X-Org picks the org)",
              file=sys.stderr)
    print(f"callpulse api: http://{args.host}:{args.port}  (docs at /docs, Redis {settings.redis_url})",
          file=sys.stderr)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.graceful_timeout, lifespan="on",
                            http=protocol)  # capped SO_SNDBUF, header timeout per socket (api/sockets.py)
    _server_class()(config).run()
    return 0


def _server_class():
    import contextlib
    import signal
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGTERM/SIGINT end with exit status 0 after the graceful shutdown
        (uvicorn re-raises the captured signal, which makes the process die of it)."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    return Server

