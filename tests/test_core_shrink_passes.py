"""Each structural shrinking pass on a system built for it; determinism; interrupts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from treadle.checkers.result import CheckResult

from treadle import history as hist
from treadle.node import Context, Node
from treadle.runner import explore, load_and_check, replay_trace, run_once
from treadle.shrink import shrink, shrink_report, structural
from treadle.shrink.core import Shrinker, client_ops
from treadle.strategies import RandomWalk, Recorder
from treadle.system import Cluster, System
from treadle.trace import Trace, load_trace
from treadle.world import World

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
ASYNC = {"window": 1_000_000, "latency_min": 1, "latency_max": 1, "timer_drift": 0}


class Pinger(Node):
    """Sends ``count`` numbered pings to ``peer`` (one per timer tick); records what it gets."""

    def __init__(self, peer: str | None, count: int):
        self.peer, self.count, self.sent = peer, count, 0

    def on_start(self, ctx: Context) -> None:
        if self.peer:
            ctx.set_timer("send", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.sent += 1
        assert self.peer is not None
        ctx.send(self.peer, self.sent)
        if self.sent < self.count:
            ctx.set_timer("send", 1)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.record("got", seq=msg, src=src)


def out_of_order_at(node: str):
    def check(world: World) -> CheckResult | None:
        seen = [e["seq"] for e in world.history if e["type"] == "got" and e["node"] == node]
        if any(b < a for a, b in zip(seen, seen[1:])):
            return CheckResult.violation("in-order delivery", f"{node} got {seen}", node=node)
        return None

    return check


def raw_trace(
    sys_: System, seeds: int = 200, config: dict[str, Any] | None = None, skip: int = 0
) -> Trace:
    """The raw trace of the first failing random run (after ``skip`` failing ones)."""
    cfg = sys_.resolve_config(config)
    strat = RandomWalk()
    for seed in range(seeds):
        strat.begin_run(seed, cfg, sys_.steps)
        rec = Recorder(strat)
        res = run_once(sys_, cfg, None, rec, sys_.steps)
        if res.violation:
            if skip:
                skip -= 1
                continue
            return Trace(
                sys_.name,
                sys_.version,
                None,
                cfg,
                seed,
                "random",
                res.steps,
                rec.choices,
                violation=res.violation.to_json(),
                history_sha256=hist.digest(res.history),
            )
    raise AssertionError(f"no failing run in {seeds} seeds")


def started(sys_: System, trace: Trace) -> Shrinker:
    sh = Shrinker(sys_, trace, max_runs=10_000, max_seconds=None)
    assert sh.start()
    return sh


def fault_steps(sh: Shrinker) -> list[tuple[Any, ...]]:
    return [s.key for s in sh.schedule().steps if s.key[0] == "fault"]


# ------------------------------------------------------------------------------ whole faults
def faulty_pair() -> System:
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        return Cluster(servers={"a": lambda: Pinger("b", 8), "b": lambda: Pinger(None, 0)})

    return System(
        "faulty-pair",
        "",
        build,
        steps=200,
        invariants=[out_of_order_at("b")],
        defaults={
            "latency_max": 4,
            "window": 4,
            "crash_rate": 0.3,
            "restart_rate": 0.3,
            "partition_rate": 0.3,
            "heal_rate": 0.3,
            "drop_rate": 0.2,
            "max_down": 1,
        },
    )


def test_whole_faults_removes_crash_restart_partition_heal_and_drops():
    sys_ = faulty_pair()
    raw = next(
        t
        for t in (raw_trace(sys_, 400, {"crash_rate": r}) for r in (0.3, 0.2, 0.4))
        if t is not None
    )
    sh = started(sys_, raw)
    before = fault_steps(sh)
    groups = structural.fault_groups(sh.schedule())
    assert groups, "the raw run has faults (crash, partition or a drop) to remove"
    assert structural.whole_faults(sh)
    after = fault_steps(sh)
    assert len(after) < len(before) or len(structural.fault_groups(sh.schedule())) < len(groups)
    # pings out of order need no fault at all: every one goes, pairs together
    assert structural.fault_groups(sh.schedule()) == []
    again = replay_trace(sys_, Trace(sys_.name, "1", None, sh.cfg, 0, "", sh.steps, sh.choices))
    assert again.violation is not None and again.violation.property == "in-order delivery"


def test_fault_groups_pair_a_crash_with_its_restart():
    from treadle.shrink.schedule import Schedule, Step

    sched = Schedule(
        [],
        [
            Step(("fault", "crash", "a")),
            Step(("timer", "b", "t")),
            Step(("fault", "crash", "b")),
            Step(("fault", "restart", "a")),
            Step(("fault", "partition", None)),
            Step(("deliver", "a", "b", "1"), [1], ["fate"]),
            Step(("fault", "heal", None)),
        ],
    )
    groups = structural.fault_groups(sched)
    assert groups == [({0, 3}, []), ({2}, []), ({4, 6}, []), (set(), [(5, 0)])]


# ------------------------------------------------------------------------------ causal slice
def two_pairs() -> System:
    """a pings b, c pings d: b's out-of-order delivery owes nothing to c and d."""

    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        return Cluster(
            servers={
                "a": lambda: Pinger("b", 3),
                "b": lambda: Pinger(None, 0),
                "c": lambda: Pinger("d", 6),
                "d": lambda: Pinger(None, 0),
            }
        )

    return System(
        "two-pairs", "", build, steps=100, invariants=[out_of_order_at("b")], defaults=ASYNC
    )


def test_causal_slice_drops_the_steps_outside_the_cone():
    sys_ = two_pairs()
    raw = raw_trace(sys_)
    sh = started(sys_, raw)
    nodes = {s.node for s in sh.schedule().steps}
    assert {"c", "d"} & nodes, "the raw run interleaves the unrelated pair"
    assert structural.causal_slice(sh)
    assert not {"c", "d"} & {s.node for s in sh.schedule().steps}
    assert sh.best_run is not None and sh.best_run.violation is not None


def test_the_cone_follows_messages_timers_and_program_order():
    from treadle.shrink import causal

    sys_ = two_pairs()
    sh = started(sys_, raw_trace(sys_))
    sched = sh.schedule()
    last = len(sched.steps) - 1
    cone = causal.cone(sched, [last])
    assert last in cone
    for i in cone:  # everything in the cone is at a, at b: never at c or d
        assert sched.steps[i].node in ("a", "b")
    # and it holds every step at a (a's timer chain sent what b got) up to the last send
    assert any(sched.steps[i].node == "a" for i in cone)


# ------------------------------------------------------------------------------ client ops
class Client(Node):
    """Fires its single operation on a timer: a request to the server, which answers."""

    def __init__(self, value: int):
        self.value = value

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("go", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        ctx.invoke("write", self.value)
        ctx.send("s", ("write", self.value))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.ok("write", self.value)


class Server(Node):
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.record("wrote", value=msg[1])
        ctx.send(src, ("ok",))


def no_poison(world: World) -> CheckResult | None:
    if any(e["type"] == "wrote" and e["value"] == 13 for e in world.history):
        return CheckResult.violation("no poison", "13 was written")
    return None


def clients_system(n: int) -> System:
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        clients = {
            f"c{i}": (lambda i=i: Client(13 if i == config["poison_at"] else i))
            for i in range(1, config["clients"] + 1)
        }
        return Cluster(servers={"s": Server}, clients=clients)

    return System(
        "clients",
        "",
        build,
        steps=100,
        invariants=[no_poison],
        defaults={**ASYNC, "clients": n, "poison_at": n},
        shrink_config={"clients": 1},
    )


def test_whole_client_ops_removes_the_operations_the_violation_does_not_need():
    from treadle.shrink.core import client_ops

    sys_ = clients_system(4)
    # the first failing run where every other client's write went before the poisoned one
    skip = 0
    while True:
        sh = started(sys_, raw_trace(sys_, 200, skip=skip))
        assert sh.best_run is not None
        before = client_ops(sh.best_run.history)
        if before == 4:
            break
        skip += 1
    assert structural.whole_client_ops(sh)
    assert client_ops(sh.best_run.history) == 1


def test_smaller_config_drops_clients_the_violation_does_not_need():
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        clients = {f"c{i}": (lambda: Client(13)) for i in range(1, config["clients"] + 1)}
        return Cluster(servers={"s": Server}, clients=clients)

    sys_ = System(
        "clients13",
        "",
        build,
        steps=100,
        invariants=[no_poison],
        defaults={**ASYNC, "clients": 5},
        shrink_config={"clients": 1},
    )
    sh = started(sys_, raw_trace(sys_, 20))
    assert structural.smaller_config(sh)
    assert sh.cfg["clients"] == 1
    small = shrink(sys_, raw_trace(sys_, 20))
    assert small.config["clients"] == 1
    assert replay_trace(sys_, small).violation is not None


def test_a_config_the_system_refuses_is_not_kept():
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        if config["clients"] < 3:
            raise ValueError("this system needs 3 clients")
        clients = {f"c{i}": (lambda: Client(13)) for i in range(1, config["clients"] + 1)}
        return Cluster(servers={"s": Server}, clients=clients)

    sys_ = System(
        "clients3",
        "",
        build,
        steps=100,
        invariants=[no_poison],
        defaults={**ASYNC, "clients": 5},
        shrink_config={"clients": 1},
    )
    small = shrink(sys_, raw_trace(sys_, 20))
    assert small.config["clients"] == 3


# ------------------------------------------------------------------------------ whole shrink
def test_the_whole_shrinker_reaches_the_shortest_trace_on_two_pairs():
    sys_ = two_pairs()
    small = shrink(sys_, raw_trace(sys_))
    rep = shrink_report(small)
    assert rep["stopped"] == "fixpoint" and rep["minimal"]
    # the shortest: a's timer twice (pings 1, 2 sent), deliver 2, deliver 1
    assert small.steps == 4, small.steps
    assert replay_trace(sys_, small).violation is not None


def test_the_budget_is_counted_in_runs():
    sys_ = faulty_pair()
    raw = raw_trace(sys_, 400)
    small = shrink(sys_, raw, runs=25, time=math.inf)
    rep = shrink_report(small)
    assert rep["runs"] == 25 and rep["stopped"] == "runs" and not rep["minimal"]
    assert "not minimal" in str(rep["message"])
    assert replay_trace(sys_, small).violation is not None


def test_the_time_cap_is_a_safety_bound_and_says_so():
    sys_ = faulty_pair()
    small = shrink(sys_, raw_trace(sys_, 400), time=0.0)
    assert shrink_report(small)["message"] == "shrinking stopped by time: not minimal"
    assert replay_trace(sys_, small).violation is not None


def test_an_interrupted_shrink_returns_the_best_so_far():
    calls = {"n": 0}
    inner = out_of_order_at("b")

    def check(world: World) -> CheckResult | None:
        calls["n"] += 1
        if calls["n"] == 100:
            raise KeyboardInterrupt
        return inner(world)

    base = faulty_pair()
    sys_ = System(base.name, "", base.build, steps=200, invariants=[check], defaults=base.defaults)
    raw = raw_trace(sys_, 400)
    calls["n"] = 0
    small = shrink(sys_, raw)
    assert shrink_report(small)["stopped"] == "interrupted"
    calls["n"] = -(10**9)
    again = replay_trace(sys_, small)
    assert again.violation is not None and hist.digest(again.history) == small.history_sha256
    assert small.steps <= raw.steps


def test_explore_saves_the_best_trace_when_its_shrink_is_interrupted(tmp_path):
    calls = {"n": 0, "armed": False}
    inner = out_of_order_at("b")

    def check(world: World) -> CheckResult | None:
        calls["n"] += 1
        if calls["armed"] and calls["n"] > 100:
            raise KeyboardInterrupt
        return inner(world)

    base = faulty_pair()
    sys_ = System(base.name, "", base.build, steps=200, invariants=[check], defaults=base.defaults)

    def on_message(msg: str) -> None:
        if "shrinking" in msg and not calls["armed"]:
            calls["armed"], calls["n"] = True, 0

    r = explore(sys_, strategy="random", runs=400, out=str(tmp_path), on_message=on_message)
    assert r.verdict == "violation" and r.interrupted
    assert r.shrunk is not None and r.shrunk["stopped"] == "interrupted"
    assert r.trace is not None and os.path.exists(r.trace)


def test_the_same_trace_shrinks_to_the_same_bytes_here_and_in_another_process(tmp_path):
    r = explore("example", bug="stale-read", seed=0, runs=300, out=str(tmp_path), shrink_time=0)
    assert r.trace is not None
    system, raw = load_and_check(r.trace)
    a = shrink(system, raw, runs=600).dumps()
    b = shrink(system, raw, runs=600).dumps()
    assert a == b
    out = tmp_path / "cli.json"
    env = dict(os.environ, PYTHONHASHSEED="4242")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "treadle.cli",
            "shrink",
            r.trace,
            "--out",
            str(out),
            "--runs",
            "600",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert out.read_text() == a


def test_treadle_shrink_saves_and_reports_the_best_trace_when_interrupted(tmp_path, capsys):
    import json

    from treadle.cli import main
    from treadle.system import register

    calls = {"n": 0, "armed": False}
    inner = out_of_order_at("b")

    def check(world: World) -> CheckResult | None:
        calls["n"] += 1
        if calls["armed"] and calls["n"] > 100:
            raise KeyboardInterrupt
        return inner(world)

    base = faulty_pair()
    sys_ = System(
        "faulty-pair-cli", "", base.build, steps=200, invariants=[check], defaults=base.defaults
    )
    register(sys_)
    raw = raw_trace(sys_, 400)
    path = tmp_path / "raw.json"
    raw.save(str(path))
    calls["armed"] = True
    out = tmp_path / "small.json"
    code = main(["shrink", str(path), "--out", str(out), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert code == 130 and res["interrupted"] and res["shrink"]["stopped"] == "interrupted"
    calls["armed"] = False
    system, small = load_and_check(str(out))
    again = replay_trace(system, small)
    assert again.violation is not None and hist.digest(again.history) == small.history_sha256


def test_explore_time_bounds_exploration_not_the_shrink(tmp_path, monkeypatch):
    """--time used to cap shrinking too (min of the two), so the saved trace depended on the
    machine; now the shrink gets its own safety cap whatever --time says."""
    import importlib

    shrink_mod = importlib.import_module("treadle.shrink")  # treadle.shrink is also the function
    caps: list[float | None] = []
    real = shrink_mod.shrink

    def spy(*args: Any, **kwargs: Any) -> Trace:
        caps.append(kwargs.get("time"))
        return real(*args, **kwargs)

    monkeypatch.setattr(shrink_mod, "shrink", spy)
    kw: dict[str, Any] = dict(strategy="random", seed=0, shrink_runs=300)
    by_runs = explore(faulty_pair(), runs=400, out=str(tmp_path / "runs"), **kw)
    # a generous --time (the first failing run comes within a second) and a tiny one that
    # would have cut the shrink short before
    by_time = explore(faulty_pair(), time=60.0, out=str(tmp_path / "t60"), **kw)
    assert caps == [300.0, 300.0]
    assert by_runs.trace and by_time.trace
    assert by_runs.shrunk and by_runs.shrunk["stopped"] in ("fixpoint", "runs")
    with open(by_runs.trace) as a, open(by_time.trace) as b:
        assert a.read() == b.read()


def test_the_shrink_safety_cap_of_explore_is_its_own_and_says_so(tmp_path):
    r = explore(
        faulty_pair(),
        strategy="random",
        seed=0,
        time=60.0,
        out=str(tmp_path),
        shrink_time=1e-9,
    )
    assert r.verdict == "violation" and r.shrunk is not None
    assert r.shrunk["stopped"] == "time" and not r.shrunk["minimal"]
    assert r.shrunk["message"] == "shrinking stopped by time: not minimal"
    assert r.trace is not None
    saved = load_trace(r.trace)
    assert shrink_report(saved)["stopped"] == "time"
    assert replay_trace(faulty_pair(), saved).violation is not None


# ------------------------------------------------------------------------------ search
def out_of_order_writes(world: World) -> CheckResult | None:
    wrote = [e["value"] for e in world.history if e["type"] == "wrote"]
    if any(b < a for a, b in zip(wrote, wrote[1:])):
        return CheckResult.violation("writes in client order", f"the server wrote {wrote}")
    return None


def crowd() -> System:
    """Six clients write their number; the server must see them in order (it rarely does)."""

    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        clients = {f"c{i}": (lambda i=i: Client(i)) for i in range(1, config["clients"] + 1)}
        return Cluster(servers={"s": Server}, clients=clients)

    return System(
        "crowd",
        "",
        build,
        steps=100,
        invariants=[out_of_order_writes],
        defaults={**ASYNC, "clients": 6},
        shrink_config={"clients": 1},
    )


def test_search_finds_a_failing_run_in_a_smaller_configuration():
    from treadle.shrink import search

    sys_ = crowd()
    raw = raw_trace(sys_)
    sh = started(sys_, raw)
    before = sh.best_key
    assert search.search_configs(sh) == [sys_.resolve_config({"clients": 3})]  # halfway
    assert search.search_smaller_config(sh)
    assert sh.cfg["clients"] < 6 and sh.best_key < before
    assert sh.best_run is not None and sh.best_run.violation is not None
    assert sh.best_run.violation.property == "writes in client order"
    assert 0 < sh.runs <= sh.max_runs
    first = (dict(sh.cfg), list(sh.choices), sh.runs)
    # it searches again only from the smaller configuration it found, until it finds none
    while search.search_smaller_config(sh):
        pass
    runs = sh.runs
    assert not search.search_smaller_config(sh) and sh.runs == runs
    # deterministic: the same trace, the same search, the same result
    again = started(sys_, raw)
    assert search.search_smaller_config(again)
    assert (again.cfg, again.choices, again.runs) == first
    small = shrink(sys_, raw)
    assert small.config["clients"] == 2 and small.steps <= 6
    assert replay_trace(sys_, small).violation is not None


def test_search_leaves_a_system_without_shrinkable_config_alone():
    from treadle.shrink import search

    sys_ = faulty_pair()
    sh = started(sys_, raw_trace(sys_, 400))
    runs = sh.runs
    assert not search.search_smaller_config(sh) and sh.runs == runs


@pytest.mark.slow
def test_a_kv_default_counterexample_shrinks_through_a_smaller_configuration():
    """kv's default runs end at their step bound (periodic anti-entropy), judged at the end, in
    a timed world: deleting a step only postpones it, and the best run's schedule does not
    carry over to fewer clients or keys. The search pass finds the bug there; before it, this
    trace stayed at 218 steps and 12 operations."""
    path = HISTORIES / "kv/lose-on-remove-linearizability-seed42.json"
    system, saved = load_and_check(str(path))
    small = shrink(system, saved)
    r = replay_trace(system, small)
    assert r.violation is not None and r.violation.property == "linearizability"
    assert small.steps <= 60 and client_ops(r.history) <= 4


def test_a_smaller_config_keeps_the_systems_rules_across_keys():
    """A configuration the system's rules refuse (kv: replicas <= members) is never kept: the
    saved trace must load again. This crowd needs at least ``quorum`` clients."""
    from treadle.config import at_most, integer

    base = crowd()
    sys_ = System(
        "ruled-crowd",
        "",
        base.build,
        steps=100,
        invariants=base.invariants,
        config_keys=[integer("clients", 6, "clients"), integer("quorum", 3, "clients needed")],
        config_rules=[at_most("quorum", "clients")],
        defaults=dict(ASYNC),
        shrink_config={"clients": 1},
    )
    small = shrink(sys_, raw_trace(sys_))
    assert small.config["clients"] == 3  # not 2, which fails too but breaks the rule
    assert sys_.resolve_config(small.config) == small.config
