"""PBFT: checkers, z3 proofs, seeded bugs, Byzantine replicas above f, saved traces."""

from __future__ import annotations

import glob
import os

import pytest
from treadle.checkers.pbft import check_history, check_liveness
from treadle.checkers.pbft.proofs import concrete, run, symbolic
from treadle.impl.pbft.byzantine import BYZANTINE_MODES
from treadle.impl.pbft.system import system

from treadle.runner import explore, replay, run_once
from treadle.strategies import Recorder, make_strategy

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = sorted(glob.glob(os.path.join(HERE, "..", "histories", "pbft", "*.json")))


# ------------------------------------------------------------------ z3
def test_quorum_intersection_proved_for_configured_and_all_f(capsys):
    assert run([]) == 0
    out = capsys.readouterr().out
    assert "proved: n=4, f=1" in out
    assert "for all f >= 1" in out
    assert run(["--f", "3"]) == 0
    assert concrete(2) is None
    assert symbolic("2f+1") is None


def test_wrong_threshold_gives_counterexample(capsys):
    assert run(["--threshold", "2"]) == 1
    assert "COUNTEREXAMPLE" in capsys.readouterr().out
    cex = concrete(1, 2)
    assert cex is not None
    shared = set(cex["quorum1"]) & set(cex["quorum2"])
    assert len(cex["quorum1"]) == len(cex["quorum2"]) == 2
    assert shared <= set(cex["faulty"]) and len(cex["faulty"]) <= 1
    assert symbolic("2f") is not None


# ------------------------------------------------------------------ checkers on handmade histories
def _inv(c, t, op="x"):
    return {"type": "invoke", "process": c, "f": "append", "value": op, "timestamp": t}


def _exe(node, seq, req, view=0, digest="d"):
    return {
        "type": "execute",
        "node": node,
        "view": view,
        "seq": seq,
        "digest": digest,
        "request": req,
    }


def _index(events):
    return [dict(e, index=i, time=i) for i, e in enumerate(events)]


def test_checker_agreement_validity_order():
    ok = _index([_inv("c1", 1), _exe("n2", 1, ["c1", 1, "x"]), _exe("n3", 1, ["c1", 1, "x"])])
    assert check_history(ok).ok
    bad = _index(
        [
            _inv("c1", 1),
            _inv("c2", 1),
            _exe("n2", 1, ["c1", 1, "x"]),
            _exe("n3", 1, ["c2", 1, "x"], view=1),
        ]
    )
    r = check_history(bad)
    assert r.violated and r.property == "Agreement"
    assert "n2" in r.message and "n3" in r.message and "sequence number 1" in r.message
    # a faulty replica's executions are not judged
    byz = _index([{"type": "byzantine", "node": "n3", "mode": "equivocate"}] + bad)
    assert check_history(byz).ok
    forged = _index([_exe("n2", 1, ["n1", 1, "forged"])])
    assert check_history(forged).property == "Validity"
    gap = _index([_inv("c1", 1), _exe("n2", 2, ["c1", 1, "x"])])
    assert check_history(gap).property == "Execution Order"
    null_then_dup = _index([_exe("n2", 1, None), _exe("n2", 1, None)])
    assert check_history(null_then_dup).property == "Execution Order"


def test_liveness_checker():
    req = {"type": "request", "node": "n2", "client": "c1", "timestamp": 1, "op": "x"}
    evs = _index([_inv("c1", 1), req, _exe("n2", 1, ["c1", 1, "x"])])
    r = check_liveness(evs, 1)
    assert r is not None and r.violated and r.property == "Liveness"
    evs.append(dict(_exe("n3", 1, ["c1", 1, "x"]), index=3))
    assert check_liveness(evs, 1).ok
    two_faulty = [{"type": "byzantine", "node": n} for n in ("n1", "n4")] + evs[:3]
    assert check_liveness(two_faulty, 1) is None  # nothing is promised above f


def test_liveness_checker_superseded_requests():
    """A request whose client's later request f+1 correct replicas executed can never execute
    (timestamps only grow): it is superseded, not lost. Only a later one counts."""
    old = {"type": "request", "node": "n2", "client": "c1", "timestamp": 1, "op": "c1-1"}
    later = [_exe(n, 1, ["c1", 2, "c1-2"]) for n in ("n2", "n3")]
    r = check_liveness(_index([_inv("c1", 1), old, _inv("c1", 2)] + later), 1)
    assert r.ok and r.details["superseded"] == 1
    # executed by one correct replica only: it does not supersede anything
    r = check_liveness(_index([_inv("c1", 1), old, _inv("c1", 2)] + later[:1]), 1)
    assert r.violated and "'c1-1'" in r.message
    # another client's progress does not excuse c1's request
    other = [_exe(n, 1, ["c2", 2, "c2-2"]) for n in ("n2", "n3")]
    assert check_liveness(_index([_inv("c1", 1), old] + other), 1).violated
    # nor does an earlier request of the same client
    earlier = [_exe(n, 1, ["c1", 0, "c1-0"]) for n in ("n2", "n3")]
    assert check_liveness(_index([old] + earlier), 1).violated


# ------------------------------------------------------------------ the implementation
def _run(seed, overrides=None, bug=None):
    cfg = system.resolve_config(overrides)
    strat = make_strategy("mixed")
    strat.begin_run(seed, cfg, system.steps)
    return run_once(system, cfg, bug, Recorder(strat), system.steps)


def test_correct_run_serves_clients_and_is_checked():
    r = _run(2)
    assert r.violation is None
    h = r.history
    assert sum(e["type"] == "ok" for e in h) == sum(e["type"] == "invoke" for e in h) > 0
    assert check_history(h).ok
    # state() is plain hashable data (exhaustive search fingerprints)
    for node in r.world.nodes.values():
        hash(node.state())


@pytest.mark.parametrize("mode", BYZANTINE_MODES)
def test_each_byzantine_mode_is_tolerated_with_f_faulty(mode):
    res = explore(system, runs=6, seed=10, config={"byzantine_mode": mode}, out=None, shrink_time=0)
    assert res.verdict == "ok", res.summary()


def test_correct_system_bounded_exploration_is_clean():
    res = explore(system, runs=40, seed=100, out=None, shrink_time=0)
    assert res.verdict == "ok", res.summary()
    assert res.runs == 40


def test_f_plus_one_byzantine_breaks_agreement(tmp_path):
    res = explore(
        system,
        runs=10,
        seed=0,
        config={"byzantine": 2, "byzantine_mode": "equivocate"},
        out=str(tmp_path),
        shrink_time=0,
    )
    assert res.verdict == "violation"
    assert res.violation.property == "Agreement"


# (seed of the first failing run, property) when `treadle explore pbft --bug X` starts from seed 0
# with the default strategy; view-change-drops-prepared also breaks Agreement, later
BUGS = {
    "weak-quorum": (3, "Agreement"),
    "no-digest-check": (17, "Agreement"),
    "accept-any-view": (3, "Agreement"),
    "view-change-drops-prepared": (0, "Liveness"),
    "client-accepts-f-replies": (0, "Reply Certificate"),
    "accept-pre-prepare-from-backup": (15, "Liveness"),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_is_found(bug, tmp_path):
    seed, prop = BUGS[bug]
    res = explore(system, bug=bug, seed=seed, runs=2, out=str(tmp_path), shrink_time=0)
    assert res.verdict == "violation", bug
    assert res.violation.property == prop
    assert res.trace and os.path.exists(res.trace)


def test_every_bug_has_a_saved_trace_that_replays():
    found = {os.path.basename(p).split("-seed")[0] for p in TRACES}
    for bug in system.bugs:
        assert any(name.startswith(bug + "-") for name in found), f"no trace for {bug}"
    for path in TRACES:
        r = replay(path)
        assert r.matches
        if r.trace.violation is None:  # a regression: the run must stay clean
            assert r.trace.bug is None and r.run.violation is None, path
            continue
        assert r.run.violation is not None
        assert r.run.violation.property == r.trace.violation["property"]


def test_an_unreadable_timestamp_or_sequence_number_is_a_malformed_event_not_a_crash():
    # a replica (or client) that records a client id where a number belongs must be reported as
    # a malformed history (exploration: "well-formed history"; `treadle check`: its line), not
    # raise out of the checker as a harness error
    from treadle.checkers.pbft import SafetyMonitor, safety_invariant

    from treadle.errors import MalformedEvent
    from treadle.run import _run_check

    bad_ts = _index([dict(_inv("c1", 1), timestamp="c2")])
    with pytest.raises(MalformedEvent, match="timestamp 'c2' is not an integer") as e:
        check_history(bad_ts)
    assert e.value.position == 0
    bad_seq = _index([_inv("c1", 1), dict(_exe("n2", 1, ["c1", 1, "x"]), seq="one")])
    with pytest.raises(MalformedEvent, match="seq 'one'"):
        SafetyMonitor().feed(bad_seq)
    bad_req = _index([_inv("c1", 1), _exe("n2", 1, ["c1", "c1", "x"])])
    with pytest.raises(MalformedEvent, match="request timestamp"):
        check_history(bad_req)

    class W:
        history = bad_ts

    r = _run_check(safety_invariant, W())
    assert r is not None and r.verdict == "violation" and "well formed" in r.message
