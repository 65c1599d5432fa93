"""Issue 25 (item 1): the compiled engine, and the pure-Python engine it is compiled from, compute the same.

`scripts/build_compiled.py` (run by scripts/setup.sh) compiles the engine's modules with Cython;
engine/compiled.py picks the build a process imports. The pure-Python modules stay the reference: the test
command also runs the unit tests (the reference model and the property tests among them) with
``CALLPULSE_PURE_PYTHON=1`` (scripts/test.sh), and here the whole step's output on the simulator's logs
must be the same bytes in both builds.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine.compiled
import engine.state.campaign
import engine.validation.validate

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("callpulse"))
PROBE = ("import engine.compiled as k, engine.state.gate as g; "
         "print(k.MODE, k.REASON or '-', g.__file__.rsplit('/', 1)[1])")


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != engine.compiled.PURE_ENV}
    env.update(extra)
    return env


@pytest.mark.unit
def test_this_process_runs_the_build_it_was_asked_for():
    """The test command compiles the engine (scripts/setup.sh), so the suite runs the compiled build, except
    in its pure-Python lane, where every engine module comes from its source."""
    if os.environ.get(engine.compiled.PURE_ENV) == "1":
        assert (engine.compiled.MODE, engine.compiled.REASON) == ("pure", "asked")
        assert engine.state.campaign.__file__.endswith("campaign.py")
    else:
        assert engine.compiled.MODE == "compiled", engine.compiled.fallback_warning()
        for module in (engine.state.campaign, engine.validation.validate):
            assert module.__file__.endswith(".so"), module.__file__
    assert engine.compiled.__file__.endswith("compiled.py")  # never compiled: it chooses


@pytest.mark.e2e
def test_a_stale_or_missing_build_falls_back_to_the_source_with_one_warning_line(tmp_path):
    if engine.compiled.MODE != "compiled":
        pytest.skip("needs the compiled build")
    copy = tmp_path / "engine"
    shutil.copytree(ROOT / "engine", copy, ignore=shutil.ignore_patterns("__pycache__"))

    def probe() -> list[str]:
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=_env(PYTHONPATH=str(tmp_path)),
                             capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert probe() == ["compiled", "-", "gate" + importlib.machinery.EXTENSION_SUFFIXES[0]]
    # one module's build deleted: the whole engine runs from source, never half a build
    views_agents = next((copy / "views").glob("agents.*.so"))
    kept = views_agents.read_bytes()
    views_agents.unlink()
    assert probe() == ["pure", "stale", "gate.py"]
    views_agents.write_bytes(kept)
    assert probe() == ["compiled", "-", "gate" + importlib.machinery.EXTENSION_SUFFIXES[0]]
    # an editor's lock file (a dangling link named like a module) is no module: nothing changes
    (copy / "state" / ".#gate.py").symlink_to("user@host.1234:1700000000")
    assert probe() == ["compiled", "-", "gate" + importlib.machinery.EXTENSION_SUFFIXES[0]]
    gate = copy / "state" / "gate.py"
    gate.write_text(gate.read_text() + "\n# a developer's edit\n")
    assert probe() == ["pure", "stale", "gate.py"]  # the edit runs, not the old build
    # a module renamed since the build: its old extension module is never imported beside the sources
    (copy / "views" / "agents.py").rename(copy / "views" / "agent_board.py")
    gone = subprocess.run([sys.executable, "-c", "import engine.views.agents"], cwd=tmp_path,
                          env=_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True)
    assert gone.returncode == 1 and "ModuleNotFoundError: No module named 'engine.views.agents'" in gone.stderr
    (copy / "views" / "agent_board.py").rename(copy / "views" / "agents.py")
    # the CLI says so once (and only once: `simulate` imports the engine in one process)
    cli = [sys.executable, "-c", "import sys; from callpulse.cli import main; sys.exit(main())",
           "simulate", "--contacts", "1", "--out", str(tmp_path / "one.ndjson")]
    run = subprocess.run(cli, cwd=tmp_path, env=_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    warnings = [ln for ln in run.stderr.splitlines() if "warning" in ln]
    assert warnings == [line for line in warnings if "the engine runs as pure Python" in line] and len(warnings) == 1
    assert "do not match its sources" in warnings[0]
    for so in copy.rglob("*.so"):
        so.unlink()
    (copy / "_compiled.json").unlink()
    assert probe() == ["pure", "not", "built", "gate.py"]
    # asked for: no warning
    run = subprocess.run(cli, cwd=tmp_path, env=_env(PYTHONPATH=str(tmp_path), CALLPULSE_PURE_PYTHON="1"),
                         capture_output=True, text=True)
    assert run.returncode == 0 and "warning" not in run.stderr, run.stderr
    # a switch value it does not know: said, and ignored
    run = subprocess.run(cli, cwd=tmp_path, env=_env(PYTHONPATH=str(tmp_path), CALLPULSE_PURE_PYTHON="false"),
                         capture_output=True, text=True)
    assert run.returncode == 0 and "CALLPULSE_PURE_PYTHON must be 0 or 1, got 'false': ignored" in run.stderr


SCENARIOS = {
    "voice and email, messy": ["--campaigns", "3", "--channel", "mixed", "--contacts", "150", "--duplicate-pct", "3",
                               "--jitter-ms", "8000", "--malformed-pct", "1", "--agents", "4"],
    "compliance": ["--campaigns", "2", "--contacts", "150", "--tz-mix", "us", "--off-hours-pct", "5",
                   "--redial-abandoned-pct", "10", "--complaint-pct", "3", "--abandon-ramp", "0.08",
                   "--pause", "--restart", "--jitter-ms", "3000"],
}


@pytest.mark.e2e
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_both_builds_make_the_same_bytes_of_the_simulators_logs(tmp_path, scenario):
    """Frames, detail records, alerts, dead letters and the recovery snapshot of every campaign: equal."""
    if engine.compiled.MODE != "compiled":
        pytest.skip("needs the compiled build")
    log = tmp_path / "events.ndjson"
    subprocess.run([CLI, "simulate", "--seed", "25", *SCENARIOS[scenario], "--out", str(log)], check=True,
                   capture_output=True)
    outputs = {}
    # one hash seed: a snapshot writes sets (the gate's event ids) in their iteration order, which follows it
    for build, env in (("compiled", _env(PYTHONHASHSEED="25")),
                       ("pure", _env(PYTHONHASHSEED="25", CALLPULSE_PURE_PYTHON="1"))):
        out = tmp_path / f"{build}.out"
        subprocess.run([sys.executable, str(ROOT / "tests" / "engine_outputs.py"), str(log), str(out)],
                       env=env, check=True, cwd=ROOT)
        outputs[build] = out.read_bytes()
    lines = outputs["pure"].splitlines()
    assert len(lines) > 100 and any(ln.startswith(b'["Frame"') for ln in lines)
    assert any(ln.startswith(b'["DeadLetter"') for ln in lines) == (scenario == "voice and email, messy")
    assert outputs["compiled"] == outputs["pure"]
