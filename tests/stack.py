"""One fixture for the real stack that the API tests read: simulate -> ingest -> the flow -> serve.

``stack`` (module scope) is a factory. Each call empties the session's Redis (tests/conftest.py), writes the
events (``callpulse simulate`` runs and hand-written ones), ingests them and runs the flow until drained
(``live=True``: the flow keeps running instead), creates API keys and starts API servers (uvicorn in this
process, tests/support.py ServerThread). Everything it started stops when the module's tests are done::

    @pytest.fixture(scope="module")
    def env(stack):
        s = stack(["--orgs", "1", "--campaigns", "2", "--contacts", "80"], min_sample=10,
                  keys={"read": {"org": "org-1", "scopes": ["campaigns:read"]}}, apps=[{"heartbeat_s": 1.0}])
        return {"http": s.client("read"), "events": s.events}

One stack per module (a module's tests only read it, or add what they need beside it), never one per test:
the flow's start and drain is the slow part.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.support import ServerThread, run_cli, start_flow, stop_process


@dataclass
class Stack:
    """What a ``stack(...)`` call started; stopped by the fixture at the end of the module."""

    redis_url: str
    redis: redis.Redis
    tmp: Path
    files: list[Path]  # every file ingested (or, live without ingest, written): the simulations first
    lines: list[bytes]  # the simulated events' NDJSON lines, in file order
    events: list[dict]  # the same, decoded (raw, as written: engine.validation.validate.parse_event normalises them)
    keys: dict[str, str]  # name -> API key secret
    ingested: list[dict] = field(default_factory=list)  # what `callpulse ingest` printed, per file (counts)
    servers: list[ServerThread] = field(default_factory=list)
    flow: subprocess.Popen | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The first API server's base URL."""
        return self.servers[0].url

    def serve(self, **app_settings) -> ServerThread:
        """Another API server on this Redis: ``create_app(redis_url, **app_settings)``."""
        from api.app import create_app

        server = ServerThread(create_app(self.redis_url, **app_settings)).start()
        self.servers.append(server)
        return server

    def client(self, key: str | None = None, server: int = 0, timeout: float = 30) -> httpx.Client:
        """An HTTP client of server ``server``, sending ``keys[key]`` as its bearer token when given."""
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key is not None else {}
        http = httpx.Client(base_url=self.servers[server].url, timeout=timeout, headers=headers)
        self._clients.append(http)
        return http

    def stop(self) -> None:
        for http in self._clients:
            http.close()
        for server in self.servers:
            server.stop()
        if self.flow is not None:
            stop_process(self.flow)
        self.redis.close()


def _ok(r: subprocess.CompletedProcess, what: str) -> None:
    assert r.returncode == 0, f"{what}: {r.stderr.decode(errors='replace')[-4000:]}"


class StackFactory:
    """The ``stack`` fixture's value: call it for a stack; `stop` ends every stack it made."""

    def __init__(self, redis_url: str, tmp_path_factory: pytest.TempPathFactory, name: str):
        self.redis_url, self.tmp_path_factory, self.name = redis_url, tmp_path_factory, name
        self.made: list[Stack] = []

    def __call__(self, *simulations: Sequence[str], extra: Mapping[str, Iterable[dict]] = {},
                 min_sample: int | None = None, flow_args: Sequence[str] = (), live: bool = False,
                 ingest: bool = True, keys: Mapping[str, Mapping] = {},
                 apps: Sequence[Mapping] = ({},)) -> Stack:
        """A fresh stack on the emptied Redis.

        ``simulations``: the arguments of one ``callpulse simulate`` run each (``--out`` is added).
        ``extra``: hand-written events, file name -> events, ingested after the simulations.
        ``min_sample``, ``flow_args``: the flow's ``--min-sample`` and any other flags.
        ``live``: start the flow (``callpulse flow --replay --no-recovery``) and keep it running, instead of
        running it until drained; ``ingest=False`` writes the files without ingesting them (the test posts them).
        ``keys``: name -> `api.auth.create_key` arguments. ``apps``: one API server per item, its
        `create_app` settings.
        """
        from api.auth import create_key

        client = redis.Redis.from_url(self.redis_url)
        client.flushall()
        tmp = self.tmp_path_factory.mktemp(self.name)
        stack = Stack(self.redis_url, client, tmp, [], [], [], {})
        self.made.append(stack)
        for i, args in enumerate(simulations):
            out = tmp / f"sim-{i + 1}.ndjson"
            _ok(run_cli(self.redis_url, "simulate", *args, "--out", str(out)), "callpulse simulate")
            stack.files.append(out)
            stack.lines += [ln for ln in out.read_bytes().splitlines() if ln.strip()]
        for name, events in extra.items():
            path = tmp / name
            path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
            stack.files.append(path)
        stack.events = [orjson.loads(ln) for ln in stack.lines]
        flow_args = [*(["--min-sample", str(min_sample)] if min_sample is not None else []), *flow_args]
        if live:
            stack.flow = start_flow(self.redis_url, *flow_args)
        if ingest:
            for path in stack.files:
                r = run_cli(self.redis_url, "ingest", str(path), "--replay")
                _ok(r, f"callpulse ingest {path.name}")
                stack.ingested.append(orjson.loads(r.stdout))
        if not live:
            _ok(run_cli(self.redis_url, "flow", "--replay", "--no-recovery", "--until-drained", *flow_args),
                "callpulse flow --until-drained")
        stack.keys = {name: create_key(client, **spec)[1] for name, spec in keys.items()}
        for settings in apps:
            stack.serve(**settings)
        return stack

    def stop(self) -> None:
        for stack in self.made:
            stack.stop()


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory, request):
    """The factory above, for this module: ``stack(...)`` -> Stack; all of it stopped after the module."""
    factory = StackFactory(redis_server, tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1])
    try:
        yield factory
    finally:
        factory.stop()
