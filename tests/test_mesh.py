"""The service mesh: seeded bugs are found, the correct mesh survives, saved traces replay, and
each mesh property's checker catches what it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from treadle.checkers import mesh as mc
from treadle.impl.mesh.system import system

from treadle import explore
from treadle.runner import replay, run_once
from treadle.strategies import Recorder, make_strategy

HISTORIES = Path(__file__).resolve().parents[1] / "histories" / "mesh"

EXPECTED = {
    "seed-breaker": "Circuit Breaker Conformance",
    "unlimited-half-open": "Circuit Breaker Conformance",
    "open-forever": "Circuit Breaker Conformance",
    "retry-storm": "Retry Budget",
}


def one_run(seed=0, bug=None, strategy="random", steps=None, **overrides):
    cfg = system.resolve_config(overrides)
    s = make_strategy(strategy)
    steps = steps or system.steps
    s.begin_run(seed, cfg, steps)
    return run_once(system, cfg, bug, Recorder(s), steps)


# ------------------------------------------------------------------ exploration
@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_each_seeded_bug_is_found_and_shrunk(bug, tmp_path):
    r = explore(system, bug=bug, seed=0, runs=10, out=str(tmp_path), shrink_time=2)
    assert r.verdict == "violation", r.summary()
    assert r.violation.property == EXPECTED[bug]
    assert r.trace and Path(r.trace).exists()
    assert r.shrunk["steps"] <= r.shrunk["from_steps"]
    again = replay(r.trace)
    assert again.run.violation.property == EXPECTED[bug]


def test_correct_mesh_survives_a_bounded_exploration():
    r = explore(system, seed=100, runs=40, out=None)
    assert r.verdict == "ok", r.summary()
    assert r.events > 40 * 100


def test_saved_traces_replay_with_their_violation():
    traces = sorted(HISTORIES.glob("*.json"))
    assert {p.name.split("-circuit")[0].split("-retry-budget")[0] for p in traces} == set(EXPECTED)
    for path in traces:
        r = replay(str(path))
        assert r.matches
        assert r.run.violation is not None
        assert r.run.violation.property == EXPECTED[r.trace.bug]


def test_the_workload_exercises_every_path():
    """Across a few runs: successes, retries, breaker rejections, failovers, timeouts."""
    kinds = set()
    for seed in range(6):
        for e in one_run(seed, strategy="mixed").history:
            if e["type"] in ("ok", "fail", "info"):
                err = e.get("error", "")
                kinds.add(e["type"] + (":" + err.split(";")[-1].split(" for ")[0] if err else ""))
            elif e["type"] in ("retry", "instance-down", "breaker-state"):
                kinds.add(e["type"])
    for want in ("ok", "retry", "instance-down", "breaker-state", "fail:circuit breaker"):
        assert any(k.startswith(want) for k in kinds), (want, kinds)


def test_node_states_are_hashable_and_change():
    r = one_run(1)
    states = {nid: node.state() for nid, node in r.world.nodes.items() if node is not None}
    assert len(states) >= 6
    for s in states.values():
        hash(s)
    assert states["p1"] != one_run(2).world.nodes["p1"].state()


# ------------------------------------------------------------------ load balancing
def test_least_requests_picks_a_least_loaded_instance():
    r = one_run(3, lb={"b": "least-requests", "a-v1": "least-requests", "a-v2": "round-robin"})
    view: dict[str, set[str]] = {}
    load: dict[tuple[str, str], int] = {}
    call_instance: dict[tuple[str, str], str] = {}
    checked = 0
    for e in r.history:
        node = e.get("node")
        if e["type"] == "view":
            view[node] = set(e["up"])
        elif e["type"] == "dispatch":
            inst, up = e["instance"], e["upstream"]
            if up in ("b", "a-v1"):
                healthy = [i for i in view[node] if i.rsplit("-", 1)[0] == up]
                assert inst in healthy
                least = min(load.get((node, i), 0) for i in healthy)
                assert load.get((node, inst), 0) == least
                checked += 1
            load[(node, inst)] = load.get((node, inst), 0) + 1
            call_instance[(node, f"{e['request']}.{e['attempt']}")] = inst
        elif e["type"] == "breaker-outcome":
            inst = call_instance.pop((node, e["call"]))
            load[(node, inst)] -= 1
    assert checked > 10


def test_round_robin_alternates_without_faults():
    r = one_run(
        4,
        lb={"b": "round-robin", "a-v1": "round-robin", "a-v2": "round-robin"},
        crash_rate=0.0,
        partition_rate=0.0,
        churn_rate=0.0,
    )
    seq = [e["instance"] for e in r.history if e["type"] == "dispatch" and e["node"] == "p1"]
    b = [i for i in seq if i.startswith("b-")]
    assert len(b) > 6
    assert all(x != y for x, y in zip(b, b[1:]))


def test_weights_are_honoured_over_many_requests():
    r = one_run(
        5,
        steps=20000,
        requests_per_client=400,
        crash_rate=0.0,
        partition_rate=0.0,
        routes={"/a": {"a-v1": 90, "a-v2": 10}},
    )
    routes = [e["upstream"] for e in r.history if e["type"] == "route"]
    assert len(routes) == 800
    share = routes.count("a-v2") / len(routes)
    assert 0.06 < share < 0.14
    assert mc.weighted_routing(r.history).verdict == "ok"


# ------------------------------------------------------------------ the mesh checkers
def route(i, up, weights=None):
    return {"type": "route", "time": i, "node": "p1", "request": f"r{i}", "path": "/a",
            "upstream": up, "weights": weights or {"a-v1": 90, "a-v2": 10}}  # fmt: skip


def test_weighted_routing_flags_a_skewed_router():
    events = [route(i, "a-v2" if i % 2 else "a-v1") for i in range(200)]
    r = mc.weighted_routing(events)
    assert r.violated and "requests on /a went to" in r.message and "binomial" in r.message
    fair = [route(i, "a-v2" if i % 10 == 0 else "a-v1") for i in range(200)]
    assert mc.weighted_routing(fair).verdict == "ok"
    stray = [route(0, "a-v3")]
    assert mc.weighted_routing(stray).violated


def test_routing_to_a_down_instance_is_caught_after_the_interval():
    base = [
        {"type": "registry-config", "time": 0, "health_interval": 10, "health_misses": 2},
        {"type": "instance-down", "time": 40, "instance": "b-2", "reason": "missed 2 checks"},
    ]
    ok = base + [{"type": "dispatch", "time": 50, "node": "p1", "request": "r", "attempt": 1,
                  "instance": "b-2"}]  # fmt: skip
    assert mc.check_history(ok).verdict == "ok"
    late = base + [{"type": "dispatch", "time": 51, "node": "p1", "request": "r", "attempt": 1,
                    "instance": "b-2"}]  # fmt: skip
    r = mc.check_history(late)
    assert r.violated and r.property == mc.DOWN
    assert "marked down at t=40" in r.message and "by t=50" in r.message
    back = base + [
        {"type": "instance-up", "time": 45, "instance": "b-2"},
        {"type": "dispatch", "time": 80, "node": "p1", "request": "r", "attempt": 1,
         "instance": "b-2"},
    ]  # fmt: skip
    assert mc.check_history(back).verdict == "ok"


def proxy_config(**kw):
    return {"type": "proxy-config", "time": 0, "node": "p1", "retry_budget_ratio": 20,
            "retry_budget_min": 1, "retry_budget_window": 100, "timer_slack": 2, **kw}  # fmt: skip


def invoke(t, rid, timeout=30):
    return {"type": "invoke", "time": t, "process": "p1", "f": "request", "value": "/a",
            "request": rid, "timeout": timeout}  # fmt: skip


def test_retry_budget_checker_counts_within_the_window():
    events = [proxy_config()] + [invoke(i, f"r{i}") for i in range(10)]
    events += [{"type": "retry", "time": 10 + i, "node": "p1", "request": f"r{i}", "attempt": 2}
               for i in range(3)]  # 3 <= 20% of 10 + 1  # fmt: skip
    for e in events[1:11]:
        events.append({**e, "type": "ok", "time": 20})
    assert mc.check_history(events).verdict == "ok"
    events.append({"type": "retry", "time": 21, "node": "p1", "request": "r4", "attempt": 2})
    r = mc.check_history(events)
    assert r.violated and r.property == mc.BUDGET and "4th retry" in r.message
    # the same retries spread past the window are fine
    spread = [proxy_config(retry_budget_window=5)] + [invoke(i * 10, f"r{i}") for i in range(4)]
    spread += [{"type": "retry", "time": i * 10 + 1, "node": "p1", "request": f"r{i}",
                "attempt": 2} for i in range(4)]  # fmt: skip
    spread.sort(key=lambda e: e["time"])
    assert mc.MeshMonitor().feed(spread[0]) is None
    mon = mc.MeshMonitor()
    assert all(mon.feed(e) is None for e in spread)


def test_request_timeout_checker():
    ok = [proxy_config(), invoke(0, "r"), {"type": "ok", "time": 30, "process": "p1",
                                           "f": "request", "request": "r"}]  # fmt: skip
    assert mc.check_history(ok).verdict == "ok"
    late_ok = [*ok[:2], {**ok[2], "time": 31}]
    r = mc.check_history(late_ok)
    assert r.violated and r.property == mc.TIMEOUT and "past its deadline t=30" in r.message
    late_dispatch = [*ok[:2], {"type": "dispatch", "time": 31, "node": "p1", "request": "r",
                               "attempt": 2, "instance": "b-1"}]  # fmt: skip
    assert mc.check_history(late_dispatch).property == mc.TIMEOUT
    # still open past deadline + slack, noticed when any later event arrives
    hung = [*ok[:2], {"type": "view", "time": 33, "node": "p1", "seq": 2, "up": []}]
    r = mc.check_history(hung)
    assert r.violated and "still not answered at t=33" in r.message
    in_slack = [*ok[:2], {"type": "info", "time": 32, "process": "p1", "f": "request",
                          "request": "r"}]  # fmt: skip
    assert mc.check_history(in_slack).verdict == "ok"


def test_offline_check_of_a_recorded_mesh_history(tmp_path):
    from treadle.cli import main

    r = one_run(7, strategy="mixed")
    assert r.violation is None
    path = tmp_path / "mesh.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in r.history))
    assert main(["check", "--model", "mesh", str(path)]) == 0
    assert main(["check", "--model", "breaker", str(path)]) == 0
    bad = one_run(0, bug="unlimited-half-open", strategy="mixed")
    for seed in range(1, 30):
        if bad.violation is not None:
            break
        bad = one_run(seed, bug="unlimited-half-open", strategy="mixed")
    assert bad.violation is not None
    path.write_text("".join(json.dumps(e) + "\n" for e in bad.history))
    assert main(["check", "--model", "breaker", str(path)]) == 1


def test_exhaustive_configuration_finds_a_breaker_bug(tmp_path):
    r = explore(system, bug="open-forever", strategy="bfs", time=60, out=str(tmp_path))
    assert r.verdict == "violation", r.summary()
    assert r.violation.property == "Circuit Breaker Conformance"
    assert "stays Open forever" in r.violation.message


def _call(t, rid, attempt, decision="admit"):
    return [
        {"type": "breaker-call", "time": t, "node": "p1", "upstream": "b",
         "call": f"{rid}.{attempt}", "decision": decision, "state": "closed"},
        {"type": "dispatch", "time": t, "node": "p1", "request": rid, "attempt": attempt,
         "instance": "b-1", "upstream": "b"},
    ]  # fmt: skip


def _told(t, rid, attempt, outcome):
    return {"type": "breaker-outcome", "time": t, "node": "p1", "upstream": "b",
            "call": f"{rid}.{attempt}", "outcome": outcome, "state": "closed"}  # fmt: skip


def _end(t, rid, kind, **kw):
    return {"type": kind, "time": t, "process": "p1", "f": "request", "value": "/b",
            "request": rid, **kw}  # fmt: skip


def _retry(t, rid, attempt):
    return {"type": "retry", "time": t, "node": "p1", "request": rid, "attempt": attempt}


def test_the_breaker_must_hear_what_each_attempt_experienced():
    def prop(events):
        r = mc.check_history(events)
        return r.property if r.violated else None

    start = [proxy_config(), invoke(0, "r")]
    # a timeout reported as a failure, a retry, then a success that answers the request
    good = [*start, *_call(1, "r", 1), _told(11, "r", 1, "failure"), _retry(11, "r", 2),
            *_call(14, "r", 2), _told(16, "r", 2, "success"), _end(16, "r", "ok", attempts=2)]  # fmt: skip
    assert prop(good) is None
    # the timed-out attempt never reported (a mesh node.py mutant): the retry shows it
    untold = [e for e in good if e.get("type") != "breaker-outcome" or e["call"] != "r.1"]
    assert prop(untold) == mc.ATTEMPTS
    # reported as a success although the request retried after it
    wrong = [dict(e, outcome="success") if e.get("call") == "r.1" and "outcome" in e else e
             for e in good]  # fmt: skip
    assert prop(wrong) == mc.ATTEMPTS
    # the answering call reported as a failure
    answered = [dict(e, outcome="failure") if e.get("call") == "r.2" and "outcome" in e else e
                for e in good]  # fmt: skip
    assert prop(answered) == mc.ATTEMPTS
    # a request that ends while its call was never reported
    hung = [*start, *_call(1, "r", 1), _end(30, "r", "info", error="request timeout")]
    assert prop(hung) == mc.ATTEMPTS
    # a success told before the deadline, then the request gives up at its deadline
    early = [*start, *_call(1, "r", 1), _told(30, "r", 1, "success"),
             _end(30, "r", "info", error="request timeout")]  # fmt: skip
    assert prop(early) == mc.ATTEMPTS
    # ... but a reply after the deadline is a success and the request still expires
    late = [*start, *_call(1, "r", 1), _told(31, "r", 1, "success"),
            _end(31, "r", "info", error="request timeout")]  # fmt: skip
    assert prop(late) is None
    # a rejected call is never dispatched and owes no outcome
    rejected = [*start, _call(1, "r", 1, decision="reject")[0],
                _end(1, "r", "fail", error="circuit breaker for b is open")]  # fmt: skip
    mon = mc.MeshMonitor()  # (a closed breaker that rejects breaks conformance, not this)
    assert all(mon.feed(e) is None for e in rejected)


@pytest.mark.parametrize("dup", [0.02, 0.05])
def test_the_mesh_tolerates_duplicated_messages(dup):
    r = explore(system, seed=3, runs=40, config={"duplicate_rate": dup}, out=None)
    assert r.verdict == "ok", r.summary()


def test_attempt_limit_checker():
    """No request is tried more than max_attempts times: no retry names a later attempt, no
    request is dispatched more often (counted, whatever attempt numbers the events claim)."""

    def dispatch(t, attempt):
        return {"type": "dispatch", "time": t, "node": "p1", "request": "r", "attempt": attempt,
                "instance": "b-1"}  # fmt: skip

    def retry(t, attempt):
        return {"type": "retry", "time": t, "node": "p1", "request": "r", "attempt": attempt}

    within = [proxy_config(max_attempts=2), invoke(0, "r"), dispatch(1, 1), retry(3, 2),
              dispatch(5, 2)]  # fmt: skip
    assert mc.check_history(within).verdict == "ok"
    r = mc.check_history([*within, retry(7, 3)])
    assert r.violated and r.property == mc.LIMIT and "attempt 3" in r.message
    r = mc.check_history([*within, dispatch(7, 2)])  # a third dispatch, numbered 2
    assert r.violated and r.property == mc.LIMIT
    # without max_attempts in its proxy's config there is nothing to judge
    unbounded = [proxy_config(), invoke(0, "r"), dispatch(1, 1), retry(3, 5), dispatch(5, 5)]
    assert mc.check_history(unbounded).verdict == "ok"


def test_a_proxy_trying_once_too_often_is_found(monkeypatch, tmp_path):
    """A proxy whose attempt count is off by one (it retries max_attempts + 1 times): only the
    Attempt Limit sees it (the retry budget still holds)."""
    from treadle.impl.mesh.node import Proxy

    retry = Proxy.maybe_retry

    def once_more(self, ctx, req, why):
        limit = ctx.config["max_attempts"]
        ctx.config["max_attempts"] = limit + 1  # for this decision only
        try:
            retry(self, ctx, req, why)
        finally:
            ctx.config["max_attempts"] = limit

    monkeypatch.setattr(Proxy, "maybe_retry", once_more)
    r = explore(system, strategy="random", seed=0, runs=100, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == mc.LIMIT, r.summary()


def test_registry_events_must_agree_with_its_table():
    up = {"type": "instance-up", "time": 1, "instance": "b-1", "upstream": "b"}
    down = {"type": "instance-down", "time": 5, "instance": "b-1", "upstream": "b"}
    assert mc.registry_agrees([up], {"b-1": "up"}) is None
    assert mc.registry_agrees([up, down], {"b-1": "left"}) is None
    assert mc.registry_agrees([up, down], {"b-1": "down"}) is None
    assert mc.registry_agrees([], {}) is None
    r = mc.registry_agrees([], {"b-1": "up"})  # marked up, never said
    assert r is not None and r.property == mc.REGISTRY_EVENTS and "never said" in r.message
    r = mc.registry_agrees([up, down], {"b-1": "up"})
    assert r is not None and "last said instance-down" in r.message
    r = mc.registry_agrees([up], {"b-1": "down"})
    assert r is not None and "last said instance-up" in r.message


def test_a_registry_that_changes_health_silently_is_found(monkeypatch, tmp_path):
    """A registry that records no event when it marks a new instance up: the proxies route to
    it, no routing check can tell when it was up or down; the table and the events disagree."""
    from treadle.impl.mesh.node import Registry

    mark = Registry.mark

    def silent(self, ctx, inst, cluster, status, reason):
        if inst not in self.members:
            self.members[inst] = (cluster, status)
            ctx.storage.put("members", tuple(sorted(self.members.items())))
            self.push(ctx)
            return
        mark(self, ctx, inst, cluster, status, reason)

    monkeypatch.setattr(Registry, "mark", silent)
    r = explore(system, strategy="random", seed=0, runs=10, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation" and r.violation.property == mc.REGISTRY_EVENTS, r.summary()


def test_a_proxy_that_does_not_record_a_trial_transition_is_found(monkeypatch, tmp_path):
    """The Open -> HalfOpen transition an admitted trial causes, not recorded (the study page
    and a reader of the history would never see the breaker half-open): conformance now checks
    the recorded transitions too."""
    from treadle.impl.mesh.node import Proxy

    attempt = Proxy.attempt

    class NoTransitions:
        def __init__(self, ctx):
            self._ctx = ctx

        def __getattr__(self, name):
            return getattr(self._ctx, name)

        def record(self, kind, **fields):
            if kind != "breaker-state":
                self._ctx.record(kind, **fields)

    monkeypatch.setattr(
        Proxy, "attempt", lambda self, ctx, req: attempt(self, NoTransitions(ctx), req)
    )
    r = explore(system, strategy="random", seed=0, runs=200, out=str(tmp_path), shrink_runs=0)
    assert r.verdict == "violation", r.summary()
    assert r.violation.property == "Circuit Breaker Conformance"
    assert "it recorded was none" in r.violation.message
