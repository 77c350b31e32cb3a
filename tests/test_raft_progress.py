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
    # nor is anything when the leader was elected too recently
    recent = [ev(0, 180, node="n1", type="became-leader", term=3), events[1]]
    assert check_progress(servers, recent, quiet_since=100, now=200, bounds=B).ok
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
