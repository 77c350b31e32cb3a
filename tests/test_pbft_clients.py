"""PBFT: crash-recovery keeps the request queue (issue 19), and the client-side check (Result
Validity, linearizability of what clients accepted against the numbered-log service)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random

import pytest
from treadle.checkers.pbft import check_history
from treadle.checkers.pbft.clients import (
    REPLY_CERTIFICATE,
    RESULT_VALIDITY,
    check_clients,
    client_check,
)
from treadle.impl.pbft.messages import Request, request_digest
from treadle.impl.pbft.system import system
from treadle.models.numbered_log import MODEL as NUMBERED_LOG

from treadle import cli
from treadle.runner import explore, load_and_check, replay, replay_trace
from treadle.strategies import Replay
from treadle.world import World

HERE = os.path.dirname(os.path.abspath(__file__))
PBFT_TRACES = os.path.join(HERE, "..", "histories", "pbft")
REGRESSION = os.path.join(PBFT_TRACES, "regression-crash-forgets-requests-seed255.json")
LAST_REQUEST = os.path.join(PBFT_TRACES, "regression-crash-forgets-last-request-seed3.json")
SUPERSEDED = os.path.join(PBFT_TRACES, "regression-superseded-request-stuck-seed1655.json")


# ------------------------------------------------------------------ crash-recovery (issue 19)
def _world():
    cfg = system.resolve_config({"crash_rate": 0.0})
    cluster = system.build(cfg, None)
    world = World(cfg, None, cluster.servers, cluster.clients, Replay([]))
    world.start()
    return world


def test_a_restarted_replica_still_waits_for_the_requests_it_accepted():
    world = _world()
    req = Request("c1", 1, "c1-1")
    world._current = "n2"
    world.nodes["n2"].on_message(world.contexts["n2"], "c1", req)
    world._current = None
    assert request_digest(req) in world.nodes["n2"].pending
    world.crash("n2")
    world.restart("n2")
    node = world.nodes["n2"]
    # the request still waits: its view-change timer runs and a view change will relay it
    assert node.pending == {request_digest(req): req}
    assert world.timer_pending("n2", "view-change")
    assert world.timer_pending("n2", "status")


def test_executing_a_request_removes_it_from_the_durable_queue():
    world = _world()
    req = Request("c1", 1, "c1-1")
    node, ctx = world.nodes["n2"], world.contexts["n2"]
    world._current = "n2"
    node.note_request(ctx, req)
    node.execute_entry(ctx, 1, request_digest(req), req, replay=False)
    world._current = None
    assert not node.pending
    world.crash("n2")
    world.restart("n2")
    assert not world.nodes["n2"].pending and world.nodes["n2"].last_exec == 1


def test_issue_19_run_replays_to_no_violation():
    """The run of issue 19 (seed 255, swarm, silent primary, heavy loss and crashes): every
    correct replica crashed after receiving c1-1 and forgot it; now it is executed."""
    r = replay(REGRESSION)
    assert r.matches and r.run.violation is None
    h = r.run.history
    correct = {"n2", "n3", "n4"}
    executed = {
        e["node"] for e in h if e["type"] == "execute" and e.get("request") == ["c1", 1, "c1-1"]
    }
    assert executed == correct
    first_exec = min(
        e["index"] for e in h if e["type"] == "execute" and e.get("request") == ["c1", 1, "c1-1"]
    )
    received = {
        e["node"]
        for e in h
        if e["type"] == "request" and e["op"] == "c1-1" and e["index"] < first_exec
    }
    restarted = {e["node"] for e in h if e["type"] == "restart" and e["index"] < first_exec}
    # the situation of the alarm: the replicas that had c1-1 restarted before it was ordered
    assert received == correct and {"n2", "n3"} <= restarted
    # and the client had given up on it (only the replicas' queue could still bring it in)
    assert any(e["type"] == "info" and e["value"] == "c1-1" for e in h[:first_exec])


def _executed_by(history, request):
    return {e["node"] for e in history if e["type"] == "execute" and e.get("request") == request}


def test_a_request_nothing_supersedes_survives_the_crashes_of_its_replicas():
    r = replay(LAST_REQUEST)
    assert r.matches and r.run.violation is None
    assert _executed_by(r.run.history, ["c1", 1, "c1-1"]) == {"n2", "n3", "n4"}


def test_the_last_request_run_fails_again_when_the_request_queue_is_volatile(monkeypatch):
    """The regression discriminates: the same choices with the queue not kept across a crash
    (what the implementation did before) give the Liveness violation again."""
    from treadle.node import Storage

    put = Storage.put

    def forgetful_put(self, key, value):
        if not (isinstance(key, tuple) and key[0] == "wait"):
            put(self, key, value)

    monkeypatch.setattr(Storage, "put", forgetful_put)
    system_, trace = load_and_check(LAST_REQUEST)
    r = replay_trace(system_, trace)
    assert r.violation is not None and r.violation.property == "Liveness"
    assert "'c1-1'" in r.violation.message and "no correct replica" in r.violation.message


def test_a_superseded_request_leaves_the_queue():
    world = _world()
    node, ctx = world.nodes["n3"], world.contexts["n3"]
    old, new = Request("c2", 2, "c2-2"), Request("c2", 3, "c2-3")
    other = Request("c1", 1, "c1-1")
    world._current = "n3"
    for req in (old, new, other):
        node.note_request(ctx, req)
    node.execute_entry(ctx, 1, request_digest(new), new, replay=False)
    world._current = None
    # c2-2 can never take effect after c2-3 (timestamps): waiting for it would only start view
    # change after view change; c1's request still waits
    assert node.pending == {request_digest(other): other}
    world.crash("n3")
    world.restart("n3")
    assert world.nodes["n3"].pending == {request_digest(other): other}


def test_superseded_request_run_replays_to_no_violation():
    r = replay(SUPERSEDED)
    assert r.matches and r.run.violation is None
    h = r.run.history
    assert any(e["type"] == "request" and e["op"] == "c2-2" for e in h)
    assert not _executed_by(h, ["c2", 2, "c2-2"])
    assert len(_executed_by(h, ["c2", 3, "c2-3"])) >= 2
    # no replica waits for c2-2 any more, so none keeps moving to further views alone
    views = [e["view"] for e in h if e["type"] == "view-change"]
    assert max(views, default=0) < 20


# ------------------------------------------------------------------ client-side check
def _ev(events):
    return [dict(e, index=i, time=i) for i, e in enumerate(events)]


def _inv(c, ts):
    return {"type": "invoke", "process": c, "f": "append", "value": f"{c}-{ts}", "timestamp": ts}


def _ok(c, ts, result, replies=None):
    e = {"type": "ok", "process": c, "f": "append", "value": f"{c}-{ts}", "timestamp": ts}
    e["result"] = result
    if replies is not None:
        e["replies"] = replies
    return e


def _info(c, ts):
    return {"type": "info", "process": c, "f": "append", "value": f"{c}-{ts}", "timestamp": ts}


def _exe(node, seq, c, ts, result):
    return {
        "type": "execute",
        "node": node,
        "view": 0,
        "seq": seq,
        "digest": "d",
        "request": [c, ts, f"{c}-{ts}"],
        "result": result,
    }


REPLICAS = [{"type": "replica", "node": f"n{i}", "f": 1} for i in range(1, 5)] + [
    {"type": "byzantine", "node": "n1", "mode": "wrong-result"}
]


def test_clients_history_that_the_service_explains_passes():
    h = _ev(
        REPLICAS
        + [_inv("c1", 1), _inv("c2", 1)]
        + [_exe(n, 1, "c2", 1, 1) for n in ("n2", "n3", "n4")]
        + [_ok("c2", 1, 1, [["n2", 0, 1], ["n3", 0, 1]])]
        + [_exe(n, 2, "c1", 1, 2) for n in ("n2", "n3")]
        + [_ok("c1", 1, 2, [["n1", 0, 2], ["n2", 0, 2]])]
    )
    assert check_clients(h).ok
    assert check_history(h).ok  # `treadle check --model pbft` runs both


def test_client_accepting_one_faulty_reply_is_caught_and_the_replies_named():
    h = _ev(
        REPLICAS
        + [_inv("c1", 1)]
        + [_exe(n, 1, "c1", 1, 1) for n in ("n2", "n3", "n4")]
        + [_ok("c1", 1, 7, [["n1", 0, 7]])]
    )
    r = check_clients(h)
    assert r.violated and r.property == RESULT_VALIDITY
    assert "n1 (view 0, result 7)" in r.message
    assert "n2 produced 1, n3 produced 1, n4 produced 1" in r.message
    assert r.details["replies"] == [["n1", 0, 7]]


def test_client_accepting_on_fewer_than_f_plus_one_replies_is_caught_even_if_right():
    h = _ev(
        REPLICAS
        + [_inv("c1", 1)]
        + [_exe(n, 1, "c1", 1, 1) for n in ("n2", "n3", "n4")]
        + [_ok("c1", 1, 1, [["n2", 0, 1]])]
    )
    r = check_clients(h)
    assert r.violated and r.property == REPLY_CERTIFICATE
    assert "n2 (view 0, result 1)" in r.message and "f+1=2" in r.message


def test_a_reply_set_counting_one_replica_twice_is_insufficient():
    h = _ev(REPLICAS + [_inv("c1", 1), _ok("c1", 1, 1, [["n1", 0, 1], ["n1", 1, 1]])])
    r = check_clients(h)
    assert r.violated and r.property == REPLY_CERTIFICATE
    assert "only 1 distinct" in r.message


def test_forged_reply_set_naming_a_correct_replica_is_caught():
    # the client claims n1 and n2 both answered 7; correct n2 executed it with result 3
    h = _ev(
        REPLICAS
        + [_inv("c1", 1)]
        + [_exe(n, 1, "c1", 1, 3) for n in ("n2", "n3")]
        + [_ok("c1", 1, 7, [["n1", 0, 7], ["n2", 0, 7]])]
    )
    r = check_clients(h)
    assert r.violated and r.property == RESULT_VALIDITY
    assert "n1 (view 0, result 7), n2 (view 0, result 7)" in r.message
    assert "n2 produced 3" in r.message and "n3 produced 3" in r.message
    # and a result for a request no correct replica executed at all
    h2 = _ev(REPLICAS + [_exe("n2", 1, "c2", 1, 1), _inv("c1", 1), _ok("c1", 1, 1)])
    r2 = check_clients(h2)
    assert r2.violated and "no correct replica executed that request" in r2.message


def test_accepted_results_one_log_cannot_explain_are_not_linearizable():
    # no replica events (a client-only history): only linearizability judges
    both_first = _ev([_inv("c1", 1), _inv("c2", 1), _ok("c1", 1, 1), _ok("c2", 1, 1)])
    r = check_clients(both_first)
    assert r.violated and r.property == "linearizability"
    assert "numbered log" in r.message
    # real-time order: c2 starts after c1 returned 2, so c2 cannot get 1
    stale = _ev([_inv("c1", 1), _ok("c1", 1, 2), _inv("c2", 1), _ok("c2", 1, 1)])
    assert check_clients(stale).violated
    # a gave-up (info) operation may take a position, or not
    info = _ev([_inv("c1", 1), _info("c1", 1), _inv("c2", 1), _ok("c2", 1, 2)])
    assert check_clients(info).ok
    info_none = dict(info[3], result=1)
    assert check_clients(info[:3] + [info_none]).ok
    too_far = dict(info[3], result=3)
    assert check_clients(info[:3] + [too_far]).violated


def _brute_force(ops):
    """Independent oracle: try every subset of unknown-outcome operations and every order
    consistent with real time; ok results must be the positions."""
    done = [o for o in ops if o["ret"] is not None]
    maybe = [o for o in ops if o["ret"] is None]
    for k in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, k):
            chosen = done + list(extra)
            for order in itertools.permutations(chosen):
                pos = {id(o): i for i, o in enumerate(order)}
                if any(
                    a["ret"] is not None and a["ret"] < b["call"] and pos[id(a)] > pos[id(b)]
                    for a in chosen
                    for b in chosen
                ):
                    continue
                if all(o["result"] == pos[id(o)] + 1 for o in order if o["ret"] is not None):
                    return True
    return False


def _random_history(rng):
    events, ops, open_ = [], [], {}
    clients = ["c1", "c2", "c3"][: rng.randint(1, 3)]
    ts = dict.fromkeys(clients, 0)
    for _ in range(rng.randint(2, 9)):
        c = rng.choice(clients)
        if c in open_:
            op = open_.pop(c)
            if rng.random() < 0.25:
                events.append(_info(c, op["ts"]))
            else:
                op["result"] = rng.randint(1, 5)
                events.append(_ok(c, op["ts"], op["result"]))
                op["ret"] = len(events) - 1
        else:
            ts[c] += 1
            events.append(_inv(c, ts[c]))
            op = {"ts": ts[c], "call": len(events) - 1, "ret": None, "result": None}
            open_[c] = op
            ops.append(op)
    return _ev(events), ops


def test_client_linearizability_agrees_with_brute_force_oracle():
    rng = random.Random(19)
    seen = {True: 0, False: 0}
    for _ in range(400):
        events, ops = _random_history(rng)
        expected = _brute_force(ops)
        seen[expected] += 1
        assert check_clients(events).ok == expected, json.dumps(events)
    assert seen[True] > 20 and seen[False] > 20  # both verdicts exercised


def test_numbered_log_model_pruning_hint_is_sound():
    from treadle.models.model import UNKNOWN, Call

    call = Call("append", "x")
    for state in range(6):
        for out in [UNKNOWN, *range(8)]:
            later_legal = any(NUMBERED_LOG.step(s, call, out)[0] for s in range(state, 10))
            assert NUMBERED_LOG.reachable(state, call, out) == later_legal


def test_check_command_with_model_pbft_runs_the_client_check(tmp_path, capsys):
    h = _ev(REPLICAS + [_inv("c1", 1)] + [_exe(n, 1, "c1", 1, 1) for n in ("n2", "n3")])
    h.append(dict(_ok("c1", 1, 5, [["n1", 0, 5]]), index=len(h), time=len(h)))
    path = tmp_path / "forged.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in h))
    code = cli.main(["check", str(path), "--model", "pbft"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Result Validity" in out and "n1 (view 0, result 5)" in out


# ------------------------------------------------------------------ the client check in runs
def test_default_runs_end_with_the_client_check():
    assert client_check in system.final_checks


def _clients_only():
    return dataclasses.replace(system, invariants=[], final_checks=[client_check])


@pytest.mark.parametrize(
    "bug,mode,seed,prop",
    [
        ("no-digest-check", "mix", 17, "linearizability"),
        ("client-accepts-f-replies", "wrong-result", 0, RESULT_VALIDITY),
    ],
)
def test_client_check_alone_catches_bugs_that_break_what_clients_see(bug, mode, seed, prop):
    cfg = {"byzantine_mode": mode}
    res = explore(_clients_only(), bug=bug, seed=seed, runs=1, config=cfg, out=None, shrink_time=0)
    assert res.verdict == "violation", res.summary()
    assert res.violation.property == prop
    # the replicas' checks do not see the client's bug at all
    if bug == "client-accepts-f-replies":
        replica_checks = [c for c in system.final_checks if c is not client_check]
        res = explore(
            dataclasses.replace(system, final_checks=replica_checks),
            bug=bug,
            seed=seed,
            runs=1,
            config=cfg,
            out=None,
            shrink_time=0,
        )
        assert res.verdict == "ok", res.summary()


def test_check_command_refuses_a_client_ok_without_its_result(tmp_path, capsys):
    ok = {"type": "ok", "process": "c1", "f": "append", "value": "c1-1"}
    h = _ev([_inv("c1", 1), _exe("n2", 1, "c1", 1, 1), ok])
    path = tmp_path / "no-result.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in h))
    code = cli.main(["check", str(path), "--model", "pbft"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and '"result"' in err and "event 2" in err
