"""Raft's progress check on the quiet tail: handmade histories with known verdicts, the clean
implementation, and saved traces from before the tail existed."""

from __future__ import annotations

import json

from treadle.checkers.raft import ServerView
from treadle.checkers.raft.progress import PROGRESS, Bounds, check_progress

from treadle.runner import load_and_check, run_once
from treadle.strategies import Recorder, make_strategy
from treadle.system import get_system

B = Bounds(elect_within=50, catch_up=40, op_bound=100)


def sv(node, role="follower", term=3, commit=0):
    return ServerView(node=node, term=term, role=role, log=(), commit_index=commit)


def ev(i, t, **kw):
    return {"index": i, "time": t, **kw}


def test_no_leader_after_the_faults_stopped_is_a_violation():
    servers = [sv("n1", "candidate", 5), sv("n2", term=4), sv("n3", term=4)]
    r = check_progress(servers, [], quiet_since=100, now=200, bounds=B)
    assert r.violated and r.property == PROGRESS and "no leader" in r.message
    # a tail shorter than the election bound is not judged
    assert check_progress(servers, [], quiet_since=100, now=140, bounds=B).ok
    # a leader of an older term than the newest does not count
    servers[0] = sv("n1", "leader", 3)
    servers[1] = sv("n2", "follower", 4)
    assert check_progress(servers, [], quiet_since=100, now=200, bounds=B).violated


def test_a_follower_that_never_catches_up_is_a_violation():
    events = [
        ev(0, 110, node="n1", type="became-leader", term=3),
        ev(1, 120, node="n1", type="commit", term=3, log_index=4),
    ]
    servers = [sv("n1", "leader", commit=4), sv("n2", commit=4), sv("n3", commit=2)]
    r = check_progress(servers, events, quiet_since=100, now=200, bounds=B)
    assert r.violated and r.details["node"] == "n3" and r.details["leader_commit"] == 4
    # the leader's commit of the last catch_up ticks is not yet owed to anyone
    late = [events[0], ev(1, 170, node="n1", type="commit", term=3, log_index=4)]
    assert check_progress(servers, late, quiet_since=100, now=200, bounds=B).ok
    # nor is anything when the leader was elected too recently (but within elect_within)
    recent = [ev(0, 145, node="n1", type="became-leader", term=3), events[1]]
    assert check_progress(servers, recent, quiet_since=100, now=180, bounds=B).ok
    servers[2] = sv("n3", commit=4)
    r = check_progress(servers, events, quiet_since=100, now=200, bounds=B)
    assert r.ok and r.details["followers"] == 2


def test_an_operation_given_up_under_a_stable_leader_is_a_violation():
    lead = ev(0, 110, node="n1", type="became-leader", term=3)
    servers = [sv("n1", "leader"), sv("n2"), sv("n3")]

    def op(t_inv, kind, t_done):
        return [
            ev(1, t_inv, process="c1", type="invoke", f="put", value="a", key="x"),
            ev(2, t_done, process="c1", type=kind, f="put", value="a", key="x"),
        ]

    r = check_progress(servers, [lead, *op(120, "info", 125)], 100, 300, B)
    assert r.violated and r.details["process"] == "c1" and "given up" in r.message
    assert check_progress(servers, [lead, *op(120, "ok", 125)], 100, 300, B).ok
    assert check_progress(servers, [lead, *op(120, "fail", 125)], 100, 300, B).ok
    # invoked before the leader was elected (or before the faults stopped): not owed
    assert check_progress(servers, [lead, *op(105, "info", 125)], 100, 300, B).ok
    early = ev(0, 50, node="n1", type="became-leader", term=3)
    assert check_progress(servers, [early, *op(90, "info", 125)], 100, 300, B).ok
    # still open: a violation only once op_bound ticks have passed
    open_op = [lead, op(120, "ok", 0)[0]]
    assert check_progress(servers, open_op, 100, 300, B).violated
    assert check_progress(servers, open_op, 100, 210, B).ok


def _run(seed, **config):
    system = get_system("raft")
    cfg = system.resolve_config(config)
    strat = make_strategy("random")
    strat.begin_run(seed, cfg, system.steps)
    return run_once(system, cfg, None, Recorder(strat), system.steps)


def test_the_clean_implementation_makes_progress_in_its_quiet_tail():
    for seed in range(12):
        r = _run(seed, prevote=seed % 2 == 0, check_quorum=seed % 3 == 0)
        assert r.violation is None, r.violation and r.violation.message
        w = r.world
        assert w.settled_at is not None and w.now - w.settled_at >= 299
        # every client got its extra operation in the tail, and it was answered
        tail = [e for e in w.history if e["type"] == "invoke" and e["time"] >= w.settled_at]
        assert {e["process"] for e in tail} == set(w.client_ids)


def test_quiet_tail_zero_means_no_tail_and_no_progress_judgement():
    r = _run(3, quiet_tail=0)
    assert r.world.settled_at is None and r.violation is None


def test_a_trace_saved_before_the_tail_existed_replays_without_one(tmp_path):
    system = get_system("raft")
    cfg = system.resolve_config({})
    del cfg["quiet_tail"]  # what a trace recorded before the key existed holds
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "format": "treadle-trace/1",
                "system": "raft",
                "system_version": system.version,
                "bug": None,
                "config": cfg,
                "seed": 0,
                "strategy": "random",
                "steps": 10,
                "choices": [],
            }
        )
    )
    _, trace = load_and_check(str(path))
    assert trace.config["quiet_tail"] == 0
    assert system.resolve_config({})["quiet_tail"] == 300  # new runs get the tail


def test_no_progress_is_judged_where_raft_promises_none():
    from treadle.impl.raft.system import progress_bounds

    system = get_system("raft")
    assert progress_bounds(system.resolve_config({})) is not None
    # fixed election timeouts: split votes may repeat forever
    assert progress_bounds(system.resolve_config({"election_jitter": "false"})) is None
    assert (
        progress_bounds(
            system.resolve_config({"election_timeout_min": "20", "election_timeout_max": "20"})
        )
        is None
    )
    # heartbeats not well inside the election timeout: followers keep starting elections
    assert progress_bounds(system.resolve_config({"heartbeat_interval": "9"})) is None
    # too few tries to reach the leader through followers that do not know it yet
    b = progress_bounds(system.resolve_config({"client_tries": "2"}))
    assert b is not None and b.op_bound is None
    for seed in range(4):
        r = _run(seed, client_tries=1)
        assert r.violation is None, r.violation and r.violation.message


def test_a_leader_elected_late_in_the_tail_is_not_a_steady_leader():
    servers = [sv("n1", "leader"), sv("n2"), sv("n3")]
    churn = [
        ev(0, 110, node="n2", type="became-leader", term=2),
        ev(1, 140, node="n2", type="stepped-down", term=3),
        ev(2, 170, node="n1", type="became-leader", term=3),
    ]
    r = check_progress(servers, churn, quiet_since=100, now=200, bounds=B)
    assert r.violated and r.details["elected"] == 170 and r.details["elections"] == 2
    assert "steady leader" in r.message
    # elected within elect_within of the faults stopping: steady
    churn[2] = ev(2, 150, node="n1", type="became-leader", term=3)
    assert check_progress(servers, churn, quiet_since=100, now=200, bounds=B).ok


def test_a_leader_that_never_commits_its_own_entries_is_a_violation():
    events = [
        ev(0, 50, node="n1", type="became-leader", term=3),
        ev(1, 120, node="n1", type="append", term=3, log_index=5, command=None),
    ]
    servers = [sv("n1", "leader", commit=4), sv("n2", commit=4), sv("n3", commit=4)]
    r = check_progress(servers, events, quiet_since=100, now=200, bounds=B)
    assert r.violated and r.details["log_index"] == 5 and r.details["commit_index"] == 4
    servers[0] = sv("n1", "leader", commit=5)
    r = check_progress(servers, events, quiet_since=100, now=200, bounds=B)
    assert r.ok and r.details["entries"] == 1
    # appended too recently to be owed, or an entry of an older term (Figure 8: committed only
    # through one of the current term): not judged
    servers[0] = sv("n1", "leader", commit=4)
    recent = [events[0], ev(1, 170, node="n1", type="append", term=3, log_index=5)]
    assert check_progress(servers, recent, quiet_since=100, now=200, bounds=B).ok
    older = [events[0], ev(1, 120, node="n1", type="append", term=2, log_index=5)]
    assert check_progress(servers, older, quiet_since=100, now=200, bounds=B).ok
    # before the faults stopped is owed too, once the tail lasted catch_up
    before = [events[0], ev(1, 60, node="n1", type="append", term=3, log_index=5)]
    assert check_progress(servers, before, quiet_since=100, now=200, bounds=B).violated
    assert check_progress(servers, before, quiet_since=100, now=139, bounds=B).ok


def test_a_tail_with_a_minority_down_judges_the_leader_but_not_the_clients():
    lead = ev(0, 110, node="n1", type="became-leader", term=3)
    given_up = [
        ev(1, 120, process="c1", type="invoke", f="put", value="a", key="x"),
        ev(2, 125, process="c1", type="info", f="put", value="a", key="x"),
    ]
    live = [sv("n1", "leader"), sv("n2")]
    # a client may pick the down server try after try: its operation is not owed
    r = check_progress(live, [lead, *given_up], 100, 300, B, down=["n3"])
    assert r.ok and r.details["operations"] == 0 and "n3 kept down" in r.message
    # everything else is: a leader among the live majority, ...
    r = check_progress([sv("n1", term=4), sv("n2", term=4)], [], 100, 300, B, down=["n3"])
    assert r.violated and "n3 kept down" in r.message and r.details["down"] == ["n3"]
    # ... and its entries committed
    append = ev(3, 130, node="n1", type="append", term=3, log_index=1)
    r = check_progress(live, [lead, append], 100, 300, B, down=["n3"])
    assert r.violated and r.details["log_index"] == 1


def test_a_quiescent_tail_is_judged_as_if_it_lasted_for_ever():
    servers = [sv("n1", term=0), sv("n2", term=0), sv("n3", term=0)]
    # 10 ticks of tail only, but nothing is pending: no leader will ever be elected
    assert check_progress(servers, [], quiet_since=100, now=110, bounds=B).ok
    r = check_progress(servers, [], quiet_since=100, now=110, bounds=B, quiescent=True)
    assert r.violated and "nothing was pending" in r.message
    # an operation left open when everything went quiet will never be answered
    lead = ev(0, 50, node="n1", type="became-leader", term=3)
    open_op = ev(1, 105, process="c1", type="invoke", f="get", value=None, key="x")
    servers = [sv("n1", "leader"), sv("n2"), sv("n3")]
    assert check_progress(servers, [lead, open_op], 100, 110, B).ok
    r = check_progress(servers, [lead, open_op], 100, 110, B, quiescent=True)
    assert r.violated and r.details["process"] == "c1"


def test_tail_down_keeps_the_newest_leader_down_and_a_majority_up():
    import pytest

    from treadle.config import ConfigError

    system = get_system("raft")
    with pytest.raises(ConfigError):
        system.resolve_config({"tail_down": "2"})  # 2 of 3: no majority left
    assert system.resolve_config({"nodes": "5", "tail_down": "2"})["tail_down"] == 2
    assert "tail_down" in system.schema().swarm()
    for seed in range(6):
        r = _run(seed, tail_down=-1, crash_rate=0.0, partition_rate=0.0)
        assert r.violation is None, r.violation and r.violation.message
        w = r.world
        assert len(w.down) == 1
        (down,) = w.down
        # the leader of the run's newest term when the faults stopped was the one kept down
        before = [e for e in w.history if e["time"] <= w.settled_at]
        leaders = [e for e in before if e["type"] == "became-leader"]
        assert leaders and leaders[-1]["node"] == down
        crash = [e for e in w.history if e["type"] == "crash" and e["node"] == down][-1]
        assert crash["time"] == w.settled_at
        verdict = r.world.nodes  # the tail elected another leader among the live two
        assert any(getattr(n, "role", None) == "leader" for n in verdict.values() if n)
    for seed in range(4):
        r = _run(seed, nodes=5, tail_down=-1)
        assert r.violation is None, r.violation and r.violation.message
        assert len(r.world.down) == 2


def _first_violation(runs, **config):
    for seed in range(runs):
        r = _run(seed, **config)
        if r.violation is not None:
            return r.violation
    return None


def test_a_leader_that_does_not_count_itself_is_found_with_a_minority_down(monkeypatch):
    """A survivor before tail_down: with every server up the peers alone are a majority."""
    from treadle.impl.raft.node import RaftServer

    def advance_commit(self, ctx):
        for n in range(self.last_index(), self.commit_index, -1):
            if self.term_at(n) != self.current_term:
                break
            if sum(1 for p in ctx.peers if self.match_index[p] >= n) >= self.majority:
                self.set_commit(ctx, n)
                return

    monkeypatch.setattr(RaftServer, "advance_commit", advance_commit)
    assert _first_violation(6) is None  # every server up in the tail: unseen
    v = _first_violation(6, tail_down=-1)
    assert v is not None and v.property == PROGRESS, v and v.message


def test_a_cluster_where_no_server_may_stand_is_found_quiescent(monkeypatch):
    """A survivor before: no election timer at all, so the tail went quiet at once and was
    judged "too short"."""
    from treadle.impl.raft.node import RaftServer

    monkeypatch.setattr(RaftServer, "reset_election_timer", lambda self, ctx: None)
    v = _first_violation(3)
    assert v is not None and v.property == PROGRESS and "nothing was pending" in v.message
