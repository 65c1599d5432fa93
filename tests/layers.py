"""The two test layers, declared, checked at collection and kept honest while the tests run.

Every test is `unit` or `e2e`, declared by its module (``pytestmark = pytest.mark.unit``) or by the test itself:

- `unit`: no process, no server, no network: the engine, the reference model, validators, pure functions.
  `pytest -m unit` (or `bash scripts/test.sh -m unit`) is the fast lane.
- `e2e`: the real stack: redis-server, the flow and the CLI as subprocesses, uvicorn, Chromium.

The layer used to be guessed from a module's source text (a fixture name or ``subprocess`` anywhere in it);
now it is written down, so that a test cannot change lanes by a comment or an import. tests/conftest.py
imports these hooks.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

LAYERS = ("unit", "e2e")
# what a unit test must not ask for: each of them starts a server (tests/conftest.py, tests/stack.py)
SERVER_FIXTURES = frozenset({"redis_server", "redis_url", "redis_client", "redis_cluster", "cluster_url", "stack"})
_PROBLEM = pytest.StashKey[str]()


def layer_problem(item: pytest.Item) -> str | None:
    """Why ``item``'s layer is wrong, or None."""
    layers = sorted({m.name for m in item.iter_markers() if m.name in LAYERS})
    if not layers:
        return (f"{item.nodeid}: no test layer: declare `pytestmark = pytest.mark.unit` (no process, no server) "
                "or `pytest.mark.e2e` (the real stack) in its module, or mark the test (tests/layers.py)")
    if len(layers) > 1:
        return f"{item.nodeid}: marked both unit and e2e: a test is in one layer"
    servers = sorted(SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))
    if layers == ["unit"] and servers:
        return f"{item.nodeid}: a unit test asks for {', '.join(servers)}, which start a server: mark it e2e"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs before `-m` deselects (tryfirst). A test with a wrong layer is put in both lanes and fails in
    each (pytest_runtest_setup), so that neither `-m unit` nor `-m e2e` can skip it silently."""
    for item in items:
        problem = layer_problem(item)
        if problem is not None:
            item.stash[_PROBLEM] = problem
            for layer in LAYERS:
                item.add_marker(layer)


class UnitTestStartedSomething(AssertionError):
    """A unit test started a process or opened a network connection: it belongs to the e2e layer."""


# The layers of the tests running now, innermost last: a test may run a small suite inside itself
# (tests/test_layers.py, pytester), whose e2e tests the outer unit test's guard must let through.
_running: list[str] = []


def _in_unit_test() -> bool:
    return bool(_running) and _running[-1] == "unit"


def _refuse_in_unit_tests(start_child):
    def guarded(*args, **kwargs):
        if _in_unit_test():
            raise UnitTestStartedSomething("a unit test may not start a process: mark it e2e (tests/layers.py)")
        return start_child(*args, **kwargs)
    return guarded


def _tcp_refused_in_unit_tests(connect):
    """socket.connect as usual but for TCP in a unit test (asyncio's own pipes are AF_UNIX socketpairs)."""
    def guarded(sock, address, *args):
        if _in_unit_test() and sock.family in (socket.AF_INET, socket.AF_INET6):
            raise UnitTestStartedSomething(f"a unit test may not connect to {address!r}: mark it e2e "
                                           "(tests/layers.py)")
        return connect(sock, address, *args)
    return guarded


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    problem = item.stash.get(_PROBLEM, None)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    with _layer_guard(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _layer_guard(item):
        return (yield)


class _layer_guard:
    """While a unit test (or its fixtures) runs: no subprocess, no TCP connection. The patches are in place
    during unit tests only; what they refuse depends on the innermost test running (``_running``)."""

    def __init__(self, item: pytest.Item):
        self.layer = "unit" if item.get_closest_marker("e2e") is None else "e2e"
        self.patch = pytest.MonkeyPatch()

    def __enter__(self):
        _running.append(self.layer)
        if self.layer == "unit":
            self.patch.setattr(subprocess.Popen, "_execute_child", _refuse_in_unit_tests(subprocess.Popen._execute_child))
            self.patch.setattr(socket.socket, "connect", _tcp_refused_in_unit_tests(socket.socket.connect))
            self.patch.setattr(socket.socket, "connect_ex", _tcp_refused_in_unit_tests(socket.socket.connect_ex))
        return self

    def __exit__(self, *exc):
        self.patch.undo()
        _running.pop()
        return False
