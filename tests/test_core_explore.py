"""Exploration never reports a false success: budgets, handler exceptions, where traces go,
interrupts. The user-style systems live in ``abd_register.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import abd_register
import pytest

import treadle
from treadle.cli import main
from treadle.node import Node
from treadle.runner import HANDLER_EXCEPTION, replay
from treadle.system import Cluster, System, register
from treadle.trace import load_trace

register(abd_register.system)
register(abd_register.ticker)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------- budgets
@pytest.mark.parametrize(
    "flag, value",
    [
        ("--time", "0"),
        ("--time", "-1"),
        ("--time", "nan"),
        ("--time", "inf"),
        ("--time", "soon"),
        ("--runs", "0"),
        ("--runs", "-1"),
        ("--runs", "1.5"),
        ("--steps", "0"),
        ("--steps", "-3"),
        ("--shrink-time", "-1"),
        ("--shrink-time", "nan"),
    ],
)
def test_empty_budget_is_a_usage_error(capsys, flag, value):
    code, out, err = cli(capsys, "explore", "example", flag, value, "--out", "/nonexistent")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert flag in err and repr(value) in err


@pytest.mark.parametrize(
    "kwargs",
    [
        {"runs": 0},
        {"runs": -1},
        {"runs": 2.5},
        {"runs": True},
        {"runs": "3"},
        {"steps": 0},
        {"time": 0},
        {"time": -1.0},
        {"time": float("nan")},
        {"time": float("inf")},
        {"shrink_time": -1},
    ],
)
def test_empty_budget_is_a_value_error_in_python(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        treadle.explore("example", out=None, **kwargs)


class Idle(Node):
    """Does nothing at all: a run of it takes no step."""


IDLE = System("idle", "a node that does nothing", lambda c, b: Cluster(servers={"n1": Idle}))
register(IDLE)


def test_runs_that_take_no_step_are_not_no_violation(capsys):
    r = treadle.explore(IDLE, runs=5, out=None)
    assert r.verdict == "unknown" and r.runs == 5 and r.steps == 0
    assert "no run took a step" in r.summary()
    with pytest.raises(AssertionError, match="no run took a step"):
        r.assert_ok()
    code, out, _ = cli(capsys, "explore", "idle", "--runs", "5", "--json")
    assert code == 3
    assert json.loads(out)["verdict"] == "unknown"


def test_a_tiny_time_budget_still_completes_a_run():
    r = treadle.explore("example", time=1e-9, out=None)
    assert r.runs >= 1 and r.verdict == "ok"


def test_pytest_treadle_time_rejects_an_empty_budget(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(treadle_explore):\n    pass\n")
    for bad in ("0", "-1", "nan", "abc"):
        p = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--treadle-time", bad],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 4, (bad, p.stdout, p.stderr)  # pytest's usage error
        assert "--treadle-time must be a positive finite number of seconds" in p.stderr


# ---------------------------------------------------------------------------------------- handler exceptions
@pytest.mark.parametrize("shrink_seconds", [0, 5])
@pytest.mark.parametrize("raise_at", [1, 12])
def test_handler_exception_at_a_chosen_step_is_saved_and_replays(
    tmp_path, capsys, shrink_seconds, raise_at
):
    r = treadle.explore(
        "ticker",
        runs=3,
        config={"raise_at": raise_at},
        out=str(tmp_path),
        shrink_time=shrink_seconds,
    )
    assert r.verdict == "violation"
    v = r.violation
    assert v.property == HANDLER_EXCEPTION == "handler exception"
    assert v.details["exception"] == "ZeroDivisionError"
    assert v.details["exception_message"] == f"tick {raise_at} divided by zero"
    assert v.details["step"] == raise_at
    # the node's own frame, not the harness's
    assert v.details["frame"]["function"] == "explode"
    assert v.details["frame"]["file"] == "abd_register.py"
    assert "ZeroDivisionError" in v.message and "explode" in v.message
    trace = load_trace(r.trace)
    assert trace.steps == raise_at  # the step that raised is part of the run
    rep = replay(r.trace)
    assert rep.run.violation is not None
    assert rep.run.violation.details["step"] == raise_at
    assert rep.run.violation.details["exception"] == "ZeroDivisionError"
    assert rep.history_sha256 == r.history_sha256 == trace.history_sha256
    code, out, _ = cli(capsys, "replay", r.trace, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["reproduces_recorded_violation"] and data["steps"] == raise_at


@pytest.mark.parametrize("strategy", ["random", "mixed", "bfs"])
def test_user_system_handler_exception_found_saved_replayed(tmp_path, strategy):
    kwargs = {} if strategy == "bfs" else {"runs": 50, "seed": 0, "shrink_time": 5}
    r = treadle.explore(
        "abd", bug="raise-in-handler", strategy=strategy, out=str(tmp_path), **kwargs
    )
    assert r.verdict == "violation" and r.violation.property == "handler exception"
    assert r.violation.details["exception"] == "RuntimeError"
    assert r.violation.details["frame"]["function"] == "on_message"
    rep = replay(r.trace)
    assert rep.run.violation.property == "handler exception"
    assert rep.run.violation.details == load_trace(r.trace).violation["details"]
    assert rep.history_sha256 == r.history_sha256


@pytest.mark.parametrize("strategy", ["mixed", "bfs"])
def test_user_system_quorum_bug_found_by_the_history_check(tmp_path, strategy):
    kwargs = {} if strategy == "bfs" else {"runs": 300, "seed": 0, "shrink_time": 5}
    r = treadle.explore("abd", bug="one-ack-write", strategy=strategy, out=str(tmp_path), **kwargs)
    assert r.verdict == "violation" and r.violation.property == "linearizability"
    rep = replay(r.trace)
    assert rep.run.violation.property == "linearizability"
    assert rep.history_sha256 == r.history_sha256


@pytest.mark.parametrize("strategy", ["mixed", "bfs"])
def test_user_system_without_bugs_is_ok(strategy):
    kwargs = {} if strategy == "bfs" else {"runs": 100, "seed": 0}
    treadle.explore("abd", strategy=strategy, out=None, **kwargs).assert_ok()


# ---------------------------------------------------------------------------------------- .treadle/
def test_default_output_goes_to_dot_treadle_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = []
    for _ in range(3):
        r = treadle.explore("ticker", runs=1, shrink_time=0)
        paths.append(r.trace)
    assert len(set(paths)) == 3
    for p in paths:
        assert p.startswith(os.path.join(".treadle", "traces", "ticker") + os.sep)
        assert os.path.exists(p)
        assert load_trace(p).violation["property"] == "handler exception"
    assert (tmp_path / ".treadle" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not (tmp_path / "histories").exists()


def test_explore_in_a_git_repository_leaves_git_status_clean(tmp_path, monkeypatch, capsys):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout

    git("init", "-q")
    (tmp_path / "histories").mkdir()
    (tmp_path / "histories" / "keep.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli(capsys, "explore", "ticker", "--runs", "2", "--shrink-time", "1")
    assert code == 1
    code, _, _ = cli(capsys, "explore", "example", "--runs", "2")
    assert code == 0
    assert git("status", "--porcelain", "--untracked-files=all") == ""
    assert (tmp_path / "histories" / "keep.json").read_text() == "{}\n"
    assert list((tmp_path / ".treadle" / "traces" / "ticker").iterdir())


def test_pytest_fixture_saves_failing_traces_under_dot_treadle(tmp_path):
    (tmp_path / "test_user.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "import abd_register\n"
        "def test_ticker(treadle_explore):\n"
        "    treadle_explore(abd_register.ticker, runs=1, shrink_time=0)\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1, p.stdout
    assert "treadle replay .treadle/traces/ticker/" in p.stdout
    assert list((tmp_path / ".treadle" / "traces" / "ticker").glob("*.json"))


# ---------------------------------------------------------------------------------------- interrupts
class _Interrupting:
    """A system whose build raises KeyboardInterrupt on its ``at``-th run (Ctrl-C mid-run)."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0

    def __call__(self, config, bug):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return abd_register.ticker.build({"raise_at": 10_000}, bug)


def test_interrupt_reports_exact_counts_and_exits_130(capsys):
    register(System("intr", "interrupted at its 4th run", _Interrupting(4), steps=5))
    code, out, err = cli(capsys, "explore", "intr", "--runs", "10", "--seed", "7")
    assert code == 130
    assert "interrupted after 3 runs (seeds 7..9)" in out
    register(System("intr", "interrupted at its 4th run", _Interrupting(4), steps=5))
    code, out, _ = cli(capsys, "explore", "intr", "--runs", "10", "--json")
    assert code == 130
    data = json.loads(out)
    assert data["verdict"] == "interrupted" and data["runs"] == 3 and data["seeds"] == [0, 2]


def test_interrupt_before_any_run_completes():
    r = treadle.explore(System("intr1", "", _Interrupting(1), steps=5), runs=10, out=None)
    assert r.verdict == "interrupted" and r.runs == 0 and r.seeds is None
    assert "interrupted after 0 runs (no seeds)" in r.summary()
    with pytest.raises(AssertionError, match="interrupted"):
        r.assert_ok()
