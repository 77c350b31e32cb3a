"""Exhaustive search runs the prefix-closed history checks (linearizability) at every state whose
history gained a completed operation: a violation is found at its shallowest depth, within a
state bound that never reaches the end of a run; incomplete searches do not pass assert_ok."""

from __future__ import annotations

import abd_register
import pytest
from treadle.checkers.result import CheckResult

import treadle
from treadle.cli import main
from treadle.system import System, register

register(abd_register.system)


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_quorum_bug_is_found_at_its_shallowest_depth(strategy):
    r = treadle.explore("abd", bug="one-ack-write", strategy=strategy, out=None)
    assert r.verdict == "violation" and r.violation.property == "linearizability"
    assert r.extra["counterexample_steps"] == 14  # BFS re-search: the shallowest
    assert r.extra["history_checks"] > 0
    # one step less and there is none to find: 14 is the shallowest depth
    shallower = treadle.explore(
        "abd", bug="one-ack-write", strategy="bfs", config={"max_depth": 13}, out=None
    )
    assert shallower.verdict == "unknown" and not shallower.extra["complete"]
    assert shallower.extra["bounds_hit"] == ["depth"]


def test_found_within_a_state_bound_that_never_reaches_the_end_of_a_run():
    # the complete search needs depth 24 to end a run; 3,000 states of BFS reach depth ~15 only
    r = treadle.explore(
        "abd", bug="one-ack-write", strategy="bfs", config={"max_states": 3000}, out=None
    )
    assert r.verdict == "violation", r.extra["summary"]
    full = treadle.explore("abd", strategy="bfs", out=None)
    assert full.extra["depth"] == 24 and full.extra["complete"]


def test_incomplete_search_fails_assert_ok_unless_allowed():
    r = treadle.explore("twophase", strategy="dfs", config={"rms": 2, "max_states": 10}, out=None)
    assert r.verdict == "unknown" and r.extra["complete"] is False
    with pytest.raises(AssertionError, match="incomplete"):
        r.assert_ok()
    r.assert_ok(allow_incomplete=True)
    treadle.explore("twophase", strategy="bfs", config={"rms": 2}, out=None).assert_ok()


def test_bfs_summary_separates_states_explored_from_paths_counted():
    r = treadle.explore("twophase", strategy="bfs", config={"rms": 2}, out=None)
    s = r.extra["summary"]
    assert s.startswith("explored all ") and "distinct states" in s
    assert "maximal paths counted on the state graph (not run)" in s
    assert r.extra["executions_run"] is None and r.extra["paths_counted"] > r.extra["states"]
    d = treadle.explore("twophase", strategy="dpor", config={"rms": 2}, out=None)
    assert d.extra["summary"].startswith("ran all 20 executions")
    assert d.extra["executions_run"] == 20 and d.extra["paths_counted"] is None


def undecided(world) -> CheckResult:
    return CheckResult.unknown("linearizability", "timed out (a stand-in)")


UNDECIDED = System(
    "undecided",
    "a history check that never decides",
    abd_register.system.build,
    config_keys=abd_register.system.config_keys,
    defaults=abd_register.system.defaults,
    history_checks=[undecided],
    exhaustive={**abd_register.system.exhaustive, "ops": 1},
)
register(UNDECIDED)


def test_an_undecided_check_makes_the_search_unknown_not_ok(capsys):
    r = treadle.explore("undecided", strategy="bfs", out=None)
    assert r.verdict == "unknown" and r.extra["unknown_checks"] > 0
    assert "could not decide" in r.extra["summary"]
    with pytest.raises(AssertionError):
        r.assert_ok()
    assert main(["explore", "undecided", "--strategy", "dfs", "--out", "/nonexistent"]) == 3
    capsys.readouterr()
