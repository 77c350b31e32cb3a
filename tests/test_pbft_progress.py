"""Client progress after faults stop (checkers/pbft/progress.py, the quiet tail of
impl/pbft/system.py): the checker on hand-written histories, and the binding killing a mutant
that PBFT's replica-side liveness check cannot see."""

from __future__ import annotations

import pytest
from treadle.checkers.pbft.progress import CLIENT_PROGRESS, check_client_progress
from treadle.impl.pbft.messages import Request
from treadle.impl.pbft.node import Replica
from treadle.impl.pbft.system import system, tail_bound

from treadle.runner import explore


def _ev(i, type_, process, time, **kw):
    return {"index": i, "type": type_, "process": process, "time": time, "f": "append", **kw}


def _ops(*specs):
    """(process, invoke time, completion type or None, completion time) -> indexed events."""
    evs = []
    for p, t0, kind, t1 in specs:
        evs.append(_ev(len(evs), "invoke", p, t0, value=f"{p}-{t0}"))
        if kind is not None:
            evs.append(_ev(len(evs), kind, p, t1, value=f"{p}-{t0}"))
    evs.sort(key=lambda e: (e["time"], e["index"]))
    return evs


def test_every_tail_operation_ok_within_the_bound_passes():
    evs = _ops(("c1", 5, "info", 90), ("c1", 101, "ok", 130), ("c2", 40, "ok", 160))
    r = check_client_progress(evs, 1, ["c1", "c2"], since=100, now=400, bound=100)
    assert r.ok and r.details["operations"] == 2 and r.details["slowest"] == 60


def test_operations_done_before_the_faults_stopped_are_not_judged():
    # c1 gave up during the faults (and exactly as they stopped): nothing promised for those
    evs = _ops(("c1", 5, "info", 90), ("c1", 91, "info", 100), ("c1", 101, "ok", 120))
    assert check_client_progress(evs, 1, ["c1"], since=100, now=400, bound=50).ok


@pytest.mark.parametrize(
    "spec, word",
    [
        (("c1", 101, "info", 150), "ended info"),  # given up on in the tail
        (("c1", 90, None, None), "still open"),  # open beyond the bound
        (("c1", 101, "ok", 300), "completed only at time 300"),  # late
    ],
)
def test_a_tail_operation_not_ok_within_the_bound_is_a_violation(spec, word):
    r = check_client_progress(_ops(spec), 1, ["c1"], since=100, now=400, bound=100)
    assert r.violated and r.property == CLIENT_PROGRESS and word in r.message


def test_an_open_operation_is_not_judged_before_its_bound():
    evs = _ops(("c1", 101, "ok", 120), ("c1", 350, None, None))
    assert check_client_progress(evs, 1, ["c1"], since=100, now=400, bound=100).ok


def test_a_client_with_no_tail_operation_is_a_violation():
    evs = _ops(("c1", 101, "ok", 120), ("c2", 10, "ok", 20))
    r = check_client_progress(evs, 1, ["c1", "c2"], since=100, now=400, bound=100)
    assert r.violated and "c2" in r.details["idle"]
    # unless the tail was shorter than the bound
    assert check_client_progress(evs, 1, ["c1", "c2"], since=100, now=150, bound=100).ok


def test_more_than_f_faulty_replicas_promise_nothing():
    byz = [{"index": 0, "type": "byzantine", "node": n, "time": 0} for n in ("n1", "n2")]
    evs = byz + _ops(("c1", 101, "info", 150))
    assert check_client_progress(evs, 1, ["c1"], since=100, now=400, bound=100) is None
    assert check_client_progress(evs, 2, ["c1"], since=100, now=400, bound=100).violated


def test_the_bound_grows_with_the_timeouts_reached():
    cfg = system.resolve_config({})
    assert tail_bound(cfg, 0) == tail_bound(cfg, cfg["view_change_timeout"])
    assert tail_bound(cfg, 320) > tail_bound(cfg, 20)
    assert tail_bound(system.resolve_config({"client_timeout": 0}), 20) is None


def test_a_replica_that_drops_client_requests_is_caught(monkeypatch):
    # the mutant that survived mutation testing: Replica.handle never calls on_request, so no
    # request is recorded and the replica-side Liveness check has nothing to judge
    handle = Replica.handle

    def dropping(self, ctx, src, msg):
        if type(msg) is not Request:
            handle(self, ctx, src, msg)

    monkeypatch.setattr(Replica, "handle", dropping)
    res = explore(system, runs=20, seed=0, out=None, shrink_time=0)
    assert res.verdict == "violation"
    assert res.violation.property == CLIENT_PROGRESS
    # without the client tail (what saved traces replay with) the mutant goes unseen
    res = explore(system, runs=20, seed=0, config={"client_tail": "off"}, out=None, shrink_time=0)
    assert res.verdict == "ok", res.summary()
