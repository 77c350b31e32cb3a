"""The world: each fault type, ordering, timers, storage, determinism."""

from __future__ import annotations

import random as global_random
from dataclasses import dataclass
from typing import Any

import pytest
from treadle.checkers.result import CheckResult

from treadle import history as hist
from treadle.errors import Nondeterminism
from treadle.node import Context, Node
from treadle.runner import _check_determinism, explore, first_divergence, run_once
from treadle.strategies import PCT, Mixed, RandomWalk, Recorder, Replay, Swarm
from treadle.system import Cluster, System
from treadle.world import Fault, World


@dataclass(frozen=True)
class Ping:
    seq: int


class Sender(Node):
    """n1 sends `count` numbered pings to every peer, one per tick."""

    def __init__(self, count: int):
        self.count = count
        self.sent = 0

    def on_start(self, ctx: Context) -> None:
        if ctx.id == "n1":
            ctx.set_timer("send", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.sent += 1
        ctx.broadcast(Ping(self.sent))
        ctx.record("sent", seq=self.sent)
        if self.sent < self.count:
            ctx.set_timer("send", 1)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.record("got", seq=msg.seq, src=src)


def ping_system(**defaults: Any) -> System:
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        return Cluster(
            servers={
                f"n{i}": (lambda: Sender(config["count"])) for i in range(1, config["servers"] + 1)
            }
        )

    base = {"servers": 2, "count": 20, "timer_drift": 0}
    base.update(defaults)
    return System("ping", "pings", build, defaults=base, steps=2000)


def run(system: System, seed: int = 1, strategy: Any = None, **overrides: Any) -> World:
    cfg = system.resolve_config(overrides)
    strat = strategy or RandomWalk()
    strat.begin_run(seed, cfg, system.steps)
    return run_once(system, cfg, None, Recorder(strat), system.steps).world


def got(world: World, node: str = "n2") -> list[int]:
    return [e["seq"] for e in world.history if e["type"] == "got" and e["node"] == node]


def test_reliable_network_delivers_everything_once():
    w = run(ping_system())
    assert sorted(got(w)) == list(range(1, 21))


def test_unordered_links_reorder_fifo_links_do_not():
    sys_ = ping_system(latency_min=1, latency_max=6, window=6)
    reordered = any(got(run(sys_, seed=s)) != sorted(got(run(sys_, seed=s))) for s in range(10))
    assert reordered, "an unordered network with latency jitter should reorder some run"
    for s in range(10):
        w = run(sys_, seed=s, ordering="fifo")
        assert got(w) == list(range(1, 21))


def test_drop_loses_messages():
    w = run(ping_system(drop_rate=0.5))
    assert 0 < len(got(w)) < 20
    assert len(set(got(w))) == len(got(w))


def test_duplicate_delivers_twice():
    w = run(ping_system(duplicate_rate=0.5))
    seqs = got(w)
    assert len(seqs) > 20 and set(seqs) == set(range(1, 21))


class _FateFlipper(RandomWalk):
    """A chooser that asks for every fate there is, as a mutated choice list may."""

    def __init__(self, fate: int):
        super().__init__()
        self.fate = fate

    def choose(self, kind: str, n: int, options: Any = None) -> int:
        return self.fate if kind == "fate" else super().choose(kind, n, options)


def test_a_fate_the_config_does_not_allow_is_a_delivery():
    # found by a guided run of the mesh (drop_rate 0, duplicate_rate 0.01): a flipped fate
    # choice lost a registry push the mesh's routing bound assumes is never lost
    dup_only = ping_system(duplicate_rate=0.01)
    assert sorted(got(run(dup_only, strategy=_FateFlipper(1)))) == list(range(1, 21))
    assert len(got(run(dup_only, strategy=_FateFlipper(2)))) > 20
    drop_only = ping_system(drop_rate=0.01)
    assert sorted(got(run(drop_only, strategy=_FateFlipper(2)))) == list(range(1, 21))
    assert got(run(drop_only, strategy=_FateFlipper(1))) == []


def test_partition_cuts_links_and_heal_restores():
    sys_ = ping_system(count=200, partition_rate=0.05, heal_rate=0.05)
    sys_.steps = 5000
    w = run(sys_, seed=3)
    kinds = [e["type"] for e in w.history]
    assert "partition" in kinds and "heal" in kinds
    assert len(got(w)) < 200  # some pings crossed a partition and were lost
    # nothing is delivered across the cut while it stands
    cut = False
    for e in w.history:
        if e["type"] == "partition":
            cut = True
        elif e["type"] == "heal":
            cut = False
        elif e["type"] == "got":
            assert not cut, (
                f"delivered across a partition: {e}"
            )  # two servers: any cut separates them


class Counter(Node):
    """Counts ticks in memory and persists every second one: a crash loses memory."""

    manual_sync = False

    def __init__(self) -> None:
        self.ticks = 0

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", 1)

    def on_restart(self, ctx: Context) -> None:
        ctx.record("recovered", persisted=ctx.storage.get("ticks", 0), memory=self.ticks)
        self.on_start(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.ticks += 1
        if self.ticks % 2 == 0:
            ctx.storage.put("ticks", self.ticks)
        if self.ticks < 50:
            ctx.set_timer("tick", 1)


def counter_system(manual: bool = False) -> System:
    class Manual(Counter):
        manual_sync = True

    cls = Manual if manual else Counter
    return System(
        "counter",
        "",
        lambda c, b: Cluster(servers={"n1": cls, "n2": cls, "n3": cls}),
        defaults={"crash_rate": 0.05, "restart_rate": 0.2, "timer_drift": 0},
        steps=400,
    )


def test_crash_loses_memory_keeps_storage():
    w = run(counter_system(), seed=2)
    rec = [e for e in w.history if e["type"] == "recovered"]
    assert rec, "expected at least one crash and restart"
    for e in rec:
        assert e["memory"] == 0  # a new instance: memory is gone
    assert any(e["persisted"] > 0 for e in rec)  # storage survived
    assert len(w.down) <= 1  # max_down defaults to a minority of 3


def test_unsynced_writes_are_lost_on_crash():
    w = run(counter_system(manual=True), seed=2)
    rec = [e for e in w.history if e["type"] == "recovered"]
    assert rec and all(e["persisted"] == 0 for e in rec)  # never synced: nothing survived


def test_torn_writes_keep_a_prefix():
    from treadle.node import Storage

    s = Storage()
    s._set_manual(True)
    s.put("a", 1)
    s.sync()
    s.put("b", 2)
    s.put("c", 3)
    s._crash(keep=1)
    assert s.get("a") == 1 and s.get("b") == 2 and s.get("c") is None


class Drifty(Node):
    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("t", 10)
        ctx.record("set", at=ctx.now)

    def on_timer(self, ctx: Context, name: str) -> None:
        ctx.record("fired", at=ctx.now)


def test_timer_drift_is_bounded():
    sys_ = System(
        "drift", "", lambda c, b: Cluster(servers={"n1": Drifty}), defaults={"timer_drift": 2}
    )
    times = set()
    for seed in range(40):
        w = run(sys_, seed=seed)
        fired = [e["at"] for e in w.history if e["type"] == "fired"]
        assert len(fired) == 1
        times.add(fired[0])
    assert times <= set(range(8, 13)) and len(times) > 1


def test_cancelled_timer_never_fires():
    class C(Node):
        def on_start(self, ctx):
            ctx.set_timer("a", 5)
            ctx.set_timer("b", 3)

        def on_timer(self, ctx, name):
            ctx.record("fired", name=name)
            ctx.cancel_timer("a")

    w = run(System("c", "", lambda c, b: Cluster(servers={"n1": C}), defaults={"timer_drift": 0}))
    assert [e["name"] for e in w.history if e["type"] == "fired"] == ["b"]


def test_same_choices_same_history_bytes():
    sys_ = ping_system(latency_max=5, window=4, drop_rate=0.1, duplicate_rate=0.1)
    cfg = sys_.resolve_config()
    strat = RandomWalk()
    strat.begin_run(7, cfg, sys_.steps)
    rec = Recorder(strat)
    a = run_once(sys_, cfg, None, rec, sys_.steps)
    b = run_once(sys_, cfg, None, Replay(list(rec.choices)), sys_.steps)
    assert hist.to_jsonl(a.history) == hist.to_jsonl(b.history)
    assert hist.digest(a.history) == hist.digest(b.history)
    # raises if not (in-process only: this system is built in a function, a subprocess cannot
    # import it)
    _check_determinism(sys_, cfg, None, rec.choices, sys_.steps, cross_process=False)


class Leaky(Node):
    """Breaks the rules: uses the global random module."""

    def on_start(self, ctx):
        ctx.set_timer("t", 1)

    def on_timer(self, ctx, name):
        ctx.record("draw", v=global_random.random())
        ctx.set_timer("t", 1 + (global_random.random() < 0.5))


def test_nondeterministic_node_is_caught():
    sys_ = System("leaky", "", lambda c, b: Cluster(servers={"n1": Leaky}), steps=30)
    cfg = sys_.resolve_config()
    with pytest.raises(Nondeterminism, match="nondeterminism"):
        _check_determinism(sys_, cfg, None, [], 30)


def test_first_divergence_names_the_step():
    sys_ = System(
        "leaky",
        "",
        lambda c, b: Cluster(servers={"n1": Leaky}),
        defaults={"timer_drift": 0},
        steps=30,
    )
    cfg = sys_.resolve_config()
    a = run_once(sys_, cfg, None, Replay([]), 30, log_steps=True)
    b = run_once(sys_, cfg, None, Replay([]), 30, log_steps=True)
    msg = first_divergence(a, b)
    assert msg is not None and "nondeterminism" in msg


def test_handler_exception_is_a_violation():
    class Boom(Node):
        def on_start(self, ctx):
            ctx.set_timer("t", 3)

        def on_timer(self, ctx, name):
            raise KeyError("oops")

    sys_ = System("boom", "", lambda c, b: Cluster(servers={"n1": Boom}))
    r = explore(sys_, runs=1, out=None, shrink_time=0)
    assert r.verdict == "violation"
    assert "KeyError" in r.violation.message and "n1" in r.violation.message


def test_a_draw_from_an_empty_range_is_an_error_like_pythons():
    """randrange(0) raises as random.randrange does (it answered 0, so a node picking from an
    empty list went unnoticed); randrange(1) is 0 without a choice, as before."""

    class Picker(Node):
        def __init__(self, n):
            self.n = n

        def on_start(self, ctx):
            ctx.set_timer("t", 1)

        def on_timer(self, ctx, name):
            ctx.record("drew", value=ctx.random.randrange(self.n))

    for n, ok in ((0, False), (1, True), (3, True)):
        sys_ = System("picker", "", lambda c, b, n=n: Cluster(servers={"n1": lambda: Picker(n)}))
        r = explore(sys_, runs=1, out=None, shrink_time=0)
        assert (r.verdict == "ok") == ok, (n, r.summary())
        if not ok:
            assert "randrange(0): empty range" in r.violation.message
    with pytest.raises(ValueError, match="empty range"):
        global_random.Random(0).randrange(0)  # the behaviour it now matches


def test_quiescent_world_stops_even_with_faults_enabled():
    sys_ = ping_system(count=3, crash_rate=0.5)
    sys_.steps = 10_000
    cfg = sys_.resolve_config()
    strat = RandomWalk()
    strat.begin_run(0, cfg, sys_.steps)
    r = run_once(sys_, cfg, None, Recorder(strat), sys_.steps)
    assert r.steps < 100


# ---------------------------------------------------------------------------------------- strategies
class Opts:
    def __init__(self, node):
        self.node = node
        self.kind = "deliver"


def test_pct_prefers_highest_priority_node_until_change_point():
    s = PCT(depth=1)
    s.begin_run(5, ping_system().resolve_config(), 100)
    options = [Opts("a"), Opts("b"), Opts("c")]
    first = s.choose("event", 3, options)
    assert all(s.choose("event", 3, options) == first for _ in range(20))


def test_random_walk_injects_faults_at_their_rate():
    cfg = ping_system(crash_rate=0.3).resolve_config()
    s = RandomWalk()
    s.begin_run(1, cfg, 100)
    options = [Opts("a"), Opts("b"), Fault("crash", "n1")]
    picks = [s.choose("event", 3, options) for _ in range(2000)]
    share = picks.count(2) / len(picks)
    assert 0.25 < share < 0.35


def test_swarm_runs_draw_different_fault_mixes():
    cfg = ping_system(crash_rate=0.05, partition_rate=0.05, drop_rate=0.1).resolve_config()
    s = Swarm()
    mixes = set()
    for seed in range(20):
        s.begin_run(seed, cfg, 100)
        mixes.add(tuple(sorted(s.describe_run().items())))
    assert len(mixes) > 5


def test_mixed_rotates_members():
    cfg = ping_system().resolve_config()
    s = Mixed()
    names = []
    for seed in range(3):
        s.begin_run(seed, cfg, 100)
        names.append(s.describe_run()["member"])
    assert names == ["random", "pct", "swarm"]


def test_history_event_shape():
    w = run(ping_system(count=2))
    for i, e in enumerate(w.history):
        assert e["index"] == i and isinstance(e["time"], int) and isinstance(e["type"], str)
    assert CheckResult.passed().ok


def test_record_refuses_reserved_field_names():
    class Clash(Node):
        def on_start(self, ctx):
            ctx.set_timer("t", 1)

        def on_timer(self, ctx, name):
            ctx.record("append", index=3)

    r = explore(
        System("clash", "", lambda c, b: Cluster(servers={"n1": Clash})),
        runs=1,
        out=None,
        shrink_time=0,
    )
    assert r.verdict == "violation" and "log_index" in r.violation.message


def test_node_frame_of_an_installed_reference_system_is_its_node_code_not_the_harness():
    # an installed treadle keeps the reference systems in treadle/impl/: their frames are node
    # code (where a person starts reading), the harness's own frames are skipped
    import os

    import treadle.run as run_mod

    node_file = os.path.join(run_mod._HARNESS_DIR, "impl", "somesys", "node.py")
    harness_file = os.path.join(run_mod._HARNESS_DIR, "world.py")
    ns: dict = {}
    exec(compile("def handler():\n    raise ValueError('boom')\n", node_file, "exec"), ns)
    exec(compile("def deliver(h):\n    h()\n", harness_file, "exec"), ns)
    try:
        ns["deliver"](ns["handler"])
    except ValueError as e:
        frame = run_mod.node_frame(e)
    assert frame is not None and frame.filename == node_file and frame.lineno == 2


class _Countdown(Node):
    """Ticks ``n`` times, then nothing is left to happen (``done`` after the last tick unless
    ``stuck``)."""

    def __init__(self, n: int, stuck: bool) -> None:
        self.left, self.stuck, self.done = n, stuck, False

    def state(self) -> Any:
        return (self.left, self.done)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.left -= 1
        if self.left:
            ctx.set_timer("tick", 1)
        elif not self.stuck:
            self.done = True


def _countdown(stuck: bool, n: int = 5) -> System:
    return System(
        f"countdown-{stuck}-{n}",
        "ticks, then decides (or not)",
        lambda config, bug: Cluster(servers={"c": lambda: _Countdown(n, stuck)}),
        defaults={"crash_rate": 0.0, "restart_rate": 0.0, "partition_rate": 0.0},
        liveness=[("Eventually Done", lambda w: bool(w.nodes["c"].done))],  # type: ignore[union-attr]
    )


def test_a_quiescent_run_that_never_reached_a_liveness_goal_violates_it():
    rec = Recorder(RandomWalk())
    sys_ = _countdown(stuck=True)
    r = run_once(sys_, sys_.resolve_config(), None, rec, 100)
    assert r.violation is not None and r.violation.property == "Eventually Done"
    assert "nothing left to happen" in r.violation.message
    ok = _countdown(stuck=False)
    assert run_once(ok, ok.resolve_config(), None, Recorder(RandomWalk()), 100).violation is None


def test_a_run_cut_by_its_step_budget_is_not_judged_for_liveness():
    # not quiescent: the goal may still be reached later, so no verdict on it
    sys_ = _countdown(stuck=True, n=50)
    r = run_once(sys_, sys_.resolve_config(), None, Recorder(RandomWalk()), 10)
    assert r.violation is None
