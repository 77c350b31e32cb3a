"""CheckQuorum (Ongaro's thesis, 6.2): a leader cut off from a majority steps down within a
bound. Handmade histories with known verdicts, the bound, and the binding end to end (the clean
implementation, and one whose CheckQuorum timer does nothing)."""

from __future__ import annotations

import pytest
from treadle.checkers.raft.quorum import CHECK_QUORUM, check_quorum
from treadle.impl.raft import system as raft_system
from treadle.impl.raft.node import RaftServer

from treadle.runner import run_once
from treadle.strategies import Recorder, make_strategy
from treadle.system import get_system

SERVERS = ("n1", "n2", "n3")
BOUND = 50


def history(*rows):
    """(time, node, type, fields) rows as a treadle history."""
    return [
        {"index": i, "time": t, "node": node, "type": kind, **fields}
        for i, (t, node, kind, fields) in enumerate(rows)
    ]


LEAD = (10, "n1", "became-leader", {"term": 2})
ISOLATE = (20, "world", "partition", {"sides": [["n1"], ["n2", "n3"]]})


def test_a_leader_isolated_past_the_bound_without_stepping_down_is_a_violation():
    h = history(LEAD, ISOLATE, (80, "n2", "became-leader", {"term": 3}))
    r = check_quorum(h, SERVERS, BOUND, end=90)
    assert r.violated and r.property == CHECK_QUORUM
    assert r.details["node"] == "n1" and r.details["cut_since"] == 20 and r.details["term"] == 2
    assert "n1 up on its side" in r.message
    # the end of the run counts as a time it was still leading
    r = check_quorum(history(LEAD, ISOLATE), SERVERS, BOUND, end=71)
    assert r.violated and r.details["time"] == 71


def test_stepping_down_healing_or_crashing_within_the_bound_passes():
    for ending in (
        (60, "n1", "stepped-down", {"term": 2}),
        (60, "world", "heal", {}),
        (60, "n1", "crash", {}),
        (70, "n1", "stepped-down", {"term": 3}),  # exactly the bound: not past it
    ):
        r = check_quorum(history(LEAD, ISOLATE, ending), SERVERS, BOUND, end=500)
        assert r.ok, (ending, r.message)
        assert r.details["leaderships"] == 1
    # too short a run to judge: not cut off for longer than the bound yet
    assert check_quorum(history(LEAD, ISOLATE), SERVERS, BOUND, end=70).ok


def test_a_leader_on_the_majority_side_is_not_cut_off():
    h = history(LEAD, (20, "world", "partition", {"sides": [["n1", "n2"], ["n3"]]}))
    assert check_quorum(h, SERVERS, BOUND, end=500).ok
    # ... but the leader of the minority side is, once it leads
    h = history(
        (20, "world", "partition", {"sides": [["n1", "n2"], ["n3"]]}),
        (30, "n3", "became-leader", {"term": 4}),
    )
    r = check_quorum(h, SERVERS, BOUND, end=500)
    assert r.violated and r.details["node"] == "n3" and r.details["cut_since"] == 30


def test_crashed_peers_cut_a_leader_off_until_one_restarts():
    down2 = [(20, "n2", "crash", {}), (25, "n3", "crash", {})]
    r = check_quorum(history(LEAD, *down2), SERVERS, BOUND, end=500)
    assert r.violated and r.details["cut_since"] == 25
    back = (60, "n3", "restart", {})
    assert check_quorum(history(LEAD, *down2, back), SERVERS, BOUND, end=500).ok
    # one peer down of two: a majority (the leader and the other) is still there
    assert check_quorum(history(LEAD, down2[0]), SERVERS, BOUND, end=500).ok
    # five servers: two down leave three, a majority; three down do not
    five = ("n1", "n2", "n3", "n4", "n5")
    crashes = [(20 + i, f"n{i}", "crash", {}) for i in (2, 3, 4)]
    assert check_quorum(history(LEAD, *crashes[:2]), five, BOUND, end=500).ok
    assert check_quorum(history(LEAD, *crashes), five, BOUND, end=500).violated


def test_a_new_leadership_starts_a_new_count():
    # re-elected in a later term while still cut off: the count starts at the election
    h = history(
        LEAD,
        ISOLATE,
        (60, "n1", "stepped-down", {"term": 2}),
        (65, "n1", "became-candidate", {"term": 3}),
        (100, "n1", "became-leader", {"term": 3}),
    )
    assert check_quorum(h, SERVERS, BOUND, end=150).ok
    r = check_quorum(h, SERVERS, BOUND, end=151)
    assert r.violated and r.details["term"] == 3 and r.details["cut_since"] == 100


def test_the_bound_covers_a_check_per_election_timeout_and_the_timers_slack():
    system = get_system("raft")
    cfg = system.resolve_config({})
    # two election timeouts (the round the cut falls in still counted replies from before it),
    # each timer drifting and firing up to a window late, and one reply in flight
    assert raft_system.check_quorum_bound(cfg) == 2 * (20 + 1 + 2) + 3 + 2
    cfg = system.resolve_config({"election_timeout_max": "40", "latency_max": "6"})
    assert raft_system.check_quorum_bound(cfg) == 2 * (40 + 1 + 2) + 6 + 2


def _run(seed, **config):
    system = get_system("raft")
    cfg = system.resolve_config(config)
    strat = make_strategy("random")
    strat.begin_run(seed, cfg, system.steps)
    return run_once(system, cfg, None, Recorder(strat), system.steps)


def test_the_binding_judges_only_runs_with_check_quorum():
    r = _run(0, check_quorum=False)
    assert raft_system.check_quorum_steps_down(r.world) is None
    for seed in range(6):
        r = _run(seed, check_quorum=True)
        assert r.violation is None, r.violation and r.violation.message
        verdict = raft_system.check_quorum_steps_down(r.world)
        assert verdict is not None and verdict.ok and verdict.details["leaderships"] >= 1


def test_a_leader_whose_check_quorum_timer_does_nothing_is_found(monkeypatch):
    """The mutant that survived before the check: the CheckQuorum timer fires and is ignored."""
    original = RaftServer.on_timer

    def ignore_check_quorum(self, ctx, name):
        if name != "check-quorum":
            original(self, ctx, name)

    monkeypatch.setattr(RaftServer, "on_timer", ignore_check_quorum)
    for seed in range(40):
        r = _run(seed, check_quorum=True)
        if r.violation is not None:
            assert r.violation.property == CHECK_QUORUM, r.violation.message
            return
    pytest.fail("no run of 40 found a leader that ignores CheckQuorum")
