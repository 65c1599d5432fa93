"""The test layers of tests/layers.py: a test without a layer fails in every lane, and a unit test that asks for
a server, starts a process or opens a TCP connection fails. Run on a small suite written here (pytester, in this
process: nothing is started)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.unit

CONFTEST = """
import pytest
from tests.layers import pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup

@pytest.fixture
def redis_url():
    raise AssertionError("a server was started")
"""

SUITE = """
import socket
import subprocess
import sys

import pytest

def test_without_a_layer():
    pass

@pytest.mark.unit
def test_pure():
    assert sum([1, 2]) == 3

@pytest.mark.e2e
def test_real_stack_may_connect():
    try:  # nothing listens there, most likely: refused, not stopped by the guard
        socket.create_connection(("127.0.0.1", 9), timeout=1).close()
    except OSError:
        pass

@pytest.mark.unit
@pytest.mark.e2e
def test_in_both():
    pass

@pytest.mark.unit
def test_unit_asking_for_redis(redis_url):
    pass

@pytest.mark.unit
def test_unit_starting_a_process():
    subprocess.run([sys.executable, "-c", "pass"])

@pytest.mark.unit
def test_unit_connecting():
    socket.create_connection(("127.0.0.1", 9), timeout=1)

@pytest.mark.unit
def test_unit_local_socketpair_is_fine():
    a, b = socket.socketpair()
    a.close(); b.close()
"""


@pytest.fixture
def suite(pytester):
    pytester.makeini("[pytest]\nmarkers =\n    unit: u\n    e2e: e\naddopts = --strict-markers -p no:cacheprovider\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _outcomes(recorder) -> dict[str, str]:
    """test name -> "failed" if any phase failed, else its call's outcome."""
    out = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.failed or name not in out:
            out[name] = "failed" if report.failed else report.outcome
    return out


def test_every_lane_runs_and_fails_a_test_without_exactly_one_layer(suite):
    everything = _outcomes(suite.inline_run())
    assert everything == {
        "test_without_a_layer": "failed", "test_pure": "passed", "test_real_stack_may_connect": "passed",
        "test_in_both": "failed", "test_unit_asking_for_redis": "failed", "test_unit_starting_a_process": "failed",
        "test_unit_connecting": "failed", "test_unit_local_socketpair_is_fine": "passed"}
    unit = _outcomes(suite.inline_run("-m", "unit"))
    assert "test_real_stack_may_connect" not in unit
    assert unit["test_without_a_layer"] == unit["test_in_both"] == "failed"
    e2e = _outcomes(suite.inline_run("-m", "e2e"))
    # a test whose layer is wrong is in both lanes
    assert set(e2e) == {"test_without_a_layer", "test_real_stack_may_connect", "test_in_both",
                        "test_unit_asking_for_redis"}
    assert e2e["test_without_a_layer"] == "failed" and e2e["test_real_stack_may_connect"] == "passed"


def test_the_failures_say_what_to_do(suite):
    result = suite.runpytest_inprocess("-m", "unit")
    text = result.stdout.str()
    assert "no test layer: declare `pytestmark = pytest.mark.unit`" in text
    assert "marked both unit and e2e" in text
    assert "a unit test asks for redis_url, which start a server: mark it e2e" in text
    assert "a server was started" not in text  # refused before the fixture ran
    assert "a unit test may not start a process" in text
    assert "a unit test may not connect to ('127.0.0.1', 9)" in text


def test_every_module_of_the_suite_declares_its_layer():
    """The layer is written in the module (or on each test), not left to the hook to report test by test."""
    import re
    from pathlib import Path

    missing = [p.name for p in sorted(Path(__file__).parent.glob("test_*.py"))
               if not re.search(r"^pytestmark = pytest\.mark\.(unit|e2e)\b|@pytest\.mark\.(unit|e2e)\b",
                                p.read_text(), re.M)]
    assert missing == []
