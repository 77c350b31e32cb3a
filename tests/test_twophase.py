"""Two-phase commit: the seeded bug is found (random and exhaustive), the correct protocol
survives a bounded random budget and the whole exhaustive state space."""

from __future__ import annotations

import treadle
from treadle.runner import replay

BUG = "commit-without-all-prepared"


def test_random_exploration_finds_the_seeded_bug(tmp_path) -> None:
    r = treadle.explore("twophase", bug=BUG, seed=0, time=30, out=str(tmp_path))
    assert r.verdict == "violation"
    assert r.violation is not None and r.violation.property == "Consistency"
    assert "committed while" in r.violation.message
    rep = replay(r.trace)
    assert rep.run.violation is not None and rep.run.violation.property == "Consistency"


def test_correct_protocol_survives_random_runs(tmp_path) -> None:
    r = treadle.explore("twophase", seed=0, runs=150, out=str(tmp_path))
    assert r.ok, r.summary()
    assert r.runs == 150


def test_exhaustive_default_config_is_complete_and_safe() -> None:
    r = treadle.explore("twophase", strategy="bfs", out=None)
    assert r.ok
    assert r.extra["complete"] is True
    assert r.extra["model"] == "asynchronous"
    assert r.extra["symmetry"] == [["rm1", "rm2", "rm3", "rm4", "rm5"]]
    assert r.extra["liveness"] == []  # every quiescent state has every RM decided
    # maximal paths of the state graph = what plain DFS would run: counted, not run
    assert r.extra["paths_counted"] == 46794856920 and r.extra["executions_run"] is None
    assert "46794856920 maximal paths counted on the state graph (not run)" in r.extra["summary"]


def test_exhaustive_finds_the_bug_in_the_default_config(tmp_path) -> None:
    r = treadle.explore("twophase", bug=BUG, strategy="bfs", out=str(tmp_path))
    assert r.verdict == "violation" and r.violation.property == "Consistency"
    assert r.extra["counterexample_steps"] == 5
