"""Sometimes-assertions and the coverage-guided strategy."""

from __future__ import annotations

import lock_system
import pytest

from treadle.coverage import Corpus, RunCoverage, bucket, declared_sometimes
from treadle.run import run_once
from treadle.runner import explore
from treadle.strategies import Guided, Recorder, Replay
from treadle.system import all_systems, get_system, register

register(lock_system.system)


def test_sometimes_reached_and_never_reached_are_reported():
    r = explore("lock", strategy="random", runs=30, seed=0, out=None, config={"stages": 3})
    some = r.to_json()["sometimes"]
    assert r.verdict in ("ok", "violation")
    assert "lock: stage 1" in some["reached"]
    assert some["reached"]["lock: stage 1"]["runs"] >= 1
    # evaluated in every run, never true: reported, not silently dropped
    assert "lock: never" in some["never_reached"]
    # declared but never even evaluated (the lock has 3 stages here): reported too
    assert "lock: stage 9" in some["never_reached"]
    assert "lock: never" in r.sometimes_text() or r.verdict == "violation"


def test_sometimes_hits_stay_out_of_the_history():
    sys_ = get_system("lock")
    cfg = sys_.resolve_config({"stages": 3})
    rec = Recorder(Guided())
    rec.inner.begin_run(5, cfg, sys_.steps)  # type: ignore[attr-defined]
    a = run_once(sys_, cfg, None, rec, sys_.steps)
    assert a.world.sometimes_seen  # something was evaluated
    assert all(ev["type"] != "sometimes" for ev in a.history)
    b = run_once(sys_, cfg, None, Replay(list(rec.choices)), sys_.steps)
    assert a.history == b.history
    assert a.world.sometimes_seen == b.world.sometimes_seen


def _run_list(strategy: str, seed: int, runs: int) -> list[tuple[int, int]]:
    """What the strategy did, run by run: (run count, steps) up to the lock opening."""
    r = explore("lock", strategy=strategy, runs=runs, seed=seed, out=None, shrink_time=0)
    return [(r.runs, r.steps), (r.verdict == "violation", r.history_sha256 or "")]  # type: ignore[list-item]


@pytest.mark.parametrize("strategy", ["guided", "mixed"])
def test_guided_is_deterministic_given_the_seed(strategy):
    assert _run_list(strategy, 3, 120) == _run_list(strategy, 3, 120)


def test_guided_corpus_is_the_same_in_two_explorations():
    def corpus(seed: int) -> list[list[int]]:
        g = Guided()
        sys_ = get_system("lock")
        g.bind_system(sys_)
        cfg = sys_.resolve_config()
        for k in range(40):
            g.begin_run(seed + k, cfg, sys_.steps)
            rec = Recorder(g)
            run_once(sys_, cfg, None, rec, sys_.steps, on_step=g.observer(rec.choices))
            g.learn(rec.choices, g.run_features())
        return [e.choices for e in g.corpus.entries]

    a, b = corpus(11), corpus(11)
    assert a == b and len(a) > 1


def test_guided_gives_the_same_runs_on_two_workers_as_in_one_process():
    # raft: a system workers can import (the lock is registered in-process only)
    kw = dict(strategy="guided", runs=40, seed=5, out=None, shrink_time=0)
    one = explore("raft", bug="figure8", workers=1, **kw)
    two = explore("raft", bug="figure8", workers=2, **kw)
    assert (one.verdict, one.runs, one.steps, one.events, one.history_sha256) == (
        two.verdict,
        two.runs,
        two.steps,
        two.events,
        two.history_sha256,
    )
    assert one.to_json()["sometimes"] == two.to_json()["sometimes"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guided_opens_the_lock_in_fewer_runs_than_random(seed):
    budget = 400
    g = explore("lock", strategy="guided", runs=budget, seed=seed, out=None, shrink_time=0)
    r = explore("lock", strategy="random", runs=budget, seed=seed, out=None, shrink_time=0)
    assert g.verdict == "violation", g.summary()
    assert r.verdict == "ok" or r.runs > g.runs, (g.runs, r.runs)


def test_first_hit_of_a_sometimes_assertion_is_new_coverage():
    class W:  # the parts of a world RunCoverage reads
        history: list = []
        sometimes_order: list = []

    cov = RunCoverage()
    w = W()
    w.sometimes_order = ["x"]
    cov.observe(w, 7)
    corpus = Corpus()
    assert corpus.add_run([1, 2, 3], cov.first)
    assert corpus.entries[0].cuts == [7]
    again = RunCoverage()
    again.observe(w, 2)
    assert not corpus.add_run([4], again.first)  # nothing new the second time
    assert corpus.counts[("sometimes", "x")] == 2


def test_hit_count_buckets():
    assert [bucket(n) for n in (1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 9999)] == [
        1, 2, 3, 4, 4, 8, 8, 16, 16, 32, 32, 128, 128
    ]  # fmt: skip


def test_declared_sometimes_match_the_code_of_every_reference_system():
    modules = {
        "raft": ["treadle.impl.raft.node"],
        "pbft": ["treadle.impl.pbft.node"],
        "kv": ["treadle.impl.kv.node"],
        "eventstore": ["treadle.impl.eventstore.store"],
        "mesh": ["treadle.impl.mesh.node"],
        "twophase": ["treadle.impl.twophase.node"],
    }
    systems = all_systems()
    for name, mods in modules.items():
        names = systems[name].sometimes_names()
        assert names == declared_sometimes(*mods)(), name
        assert names, name


@pytest.mark.parametrize(
    "name,runs",
    [("raft", 60), ("pbft", 60), ("kv", 40), ("eventstore", 120), ("mesh", 40), ("twophase", 1600)],
)
def test_every_sometimes_assertion_of_a_reference_system_is_reached(name, runs):
    r = explore(name, strategy="mixed", runs=runs, seed=0, out=None, workers=1)
    assert r.verdict == "ok", r.summary()
    assert r.to_json()["sometimes"]["never_reached"] == []


def test_a_node_recording_a_malformed_history_is_a_violation_not_a_harness_error(tmp_path):
    # a client that invokes again before its operation completed (found by a mutant of the
    # Raft client that dropped its ctx.fail): the linearizability check refuses the history
    from treadle.node import Context, Node
    from treadle.system import Cluster, System

    class Eager(Node):
        def on_start(self, ctx: Context) -> None:
            ctx.invoke("get", None, key="k")
            ctx.set_timer("again", 1)

        def on_timer(self, ctx: Context, name: str) -> None:
            ctx.invoke("get", None, key="k")

    def lin(world):
        from treadle.checkers.linearizability import check_history

        return check_history(world.history, model="kv")

    sys_ = System(
        name="eager-client",
        description="a client that never completes an operation",
        build=lambda c, b: Cluster(servers={}, clients={"c1": Eager}),
        final_checks=[lin],
        steps=5,
    )
    register(sys_)
    r = explore("eager-client", runs=1, out=str(tmp_path), shrink_time=0)
    assert r.verdict == "violation", r.summary()
    assert r.violation is not None and r.violation.property == "well-formed history"
    assert "invokes again" in r.violation.message


def test_a_coverage_abstraction_that_raises_does_not_change_the_verdict():
    # a mutant deleted a field the system's abstraction reads: the run must still be judged
    def broken(world):
        raise AttributeError("no attribute 'phase'")

    cov = RunCoverage(broken)

    class W:
        history: list = [{"type": "x", "node": "n1"}]
        sometimes_order: list = []

    cov.observe(W(), 3)
    cov.observe(W(), 4)
    assert ("ev", "node", "x") in cov.first and cov.abstraction is None


@pytest.mark.parametrize("name", ["raft", "pbft", "kv", "eventstore", "mesh", "twophase"])
def test_incremental_coverage_equals_a_full_recomputation_at_every_step(name):
    """PerNode looks again only at the node a step acted on; a fresh summary of every node
    must give the same value at every step (faults included), and the abstraction must not
    raise on the unmutated system (a raise silently switches it off)."""
    from treadle.coverage import PerNode
    from treadle.strategies import RandomWalk

    sys_ = get_system(name)
    cov = sys_.coverage
    assert isinstance(cov, PerNode)
    cfg = sys_.resolve_config()
    values: set = set()
    steps = 0

    def check(world):
        nonlocal steps
        got = cov(world)
        full = tuple(
            cov.combine(
                {n: (None if x is None else cov.summary(n, x)) for n, x in world.nodes.items()},
                world,
            )
        )
        assert got == full, (world.step_count, got, full)
        values.update(got)
        steps += 1

    for seed in range(150 if name == "twophase" else 6):  # twophase: runs of ~12 steps
        walk = RandomWalk()
        walk.begin_run(seed, cfg, sys_.steps)
        run_once(sys_, cfg, None, Recorder(walk), sys_.steps, on_step=check)
    # an abstraction of relations: a handful of values, not one per step
    assert 3 <= len(values) < steps / 4, (len(values), steps)


def test_a_child_runs_under_its_parents_fault_mix_and_options_fresh_runs_try_swarm_mixes():
    sys_ = get_system("raft")
    cfg = sys_.resolve_config()
    g = Guided()
    g.bind_system(sys_)
    mix = (
        ("crash", 0.5),
        ("heal", 0.2),
        ("partition", 0.0),
        ("restart", 0.9),
        ("drop", 0.0),
        ("duplicate", 0.25),
    )
    options = (("check_quorum", True), ("prevote", True))
    g.learn([0, 1, 2, 3], {("abs", "x"): 2}, (mix, options))
    swarm = {"check_quorum": (False, True), "prevote": (False, True)}
    kept = fresh_swarm = 0
    for seed in range(200):
        run_cfg = g.run_options(seed, cfg, swarm)
        g.begin_run(seed, run_cfg, sys_.steps)
        if g.how != "fresh":
            kept += g.run_meta() == (mix, options)
            assert run_cfg["prevote"] or g.run_meta()[0] != mix
    assert 0.6 < kept / 180 < 0.95  # KEEP_MIX of the ~90% children
    empty = Guided()
    empty.bind_system(sys_)
    default = _configured_mix(cfg)
    for seed in range(100):
        empty.begin_run(seed, cfg, sys_.steps)
        fresh_swarm += empty.run_meta()[0] != default
    assert 30 < fresh_swarm < 70  # SWARM of the fresh runs draw a mix of their own


def _configured_mix(cfg):
    from treadle.strategies import RandomWalk

    w = RandomWalk()
    w.begin_run(0, cfg, 1)
    return w.mix()


def test_guided_children_under_their_parents_options_replay_in_other_processes():
    """raft draws PreVote, CheckQuorum and the snapshot cadence per run; a guided child runs
    under its parent's instead of its seed's own draw: the determinism check's replays in other
    processes must get the run's actual configuration (else they would diverge)."""
    r = explore("raft", strategy="guided", runs=40, seed=3, out=None, check_determinism=True)
    assert r.verdict == "ok", r.summary()
    det = r.to_json()["determinism"]
    assert det["runs_checked_in_process"] == 40 and det["runs_checked_in_other_processes"] > 0
