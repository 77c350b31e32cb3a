"""Exhaustive exploration: BFS/DFS completeness and counts, symmetry, DPOR optimality, liveness,
bounds, counterexamples that replay as normal traces."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
from treadle.checkers.result import CheckResult
from treadle.impl.twophase.spec import abstraction, tla_twophase

import treadle
from treadle.exhaustive import (
    _rename,
    clone_world,
    count_traces,
    dpor,
    make_explorer,
    search,
)
from treadle.node import Context, Node
from treadle.runner import replay
from treadle.strategies import Replay
from treadle.system import Cluster, System, get_system
from treadle.world import World

TWOPHASE = get_system("twophase")
BUG = "commit-without-all-prepared"


def test_bfs_and_dfs_agree_and_complete() -> None:
    counts = {}
    for strategy in ("bfs", "dfs"):
        for sym in (False, True):
            ex = make_explorer(TWOPHASE, config={"rms": 3}, symmetry=sym)
            assert search(ex, strategy) is None
            assert ex.stats.complete and not ex.stats.bounds_hit
            counts[strategy, sym] = (ex.stats.states, ex.stats.paths)
    assert counts["bfs", False] == counts["dfs", False]
    assert counts["bfs", True] == counts["dfs", True]
    # symmetry merges states but keeps every path: the path count is the same
    assert counts["bfs", True][0] < counts["bfs", False][0]
    assert counts["bfs", True][1] == counts["bfs", False][1]


def test_same_protocol_as_the_tla_spec() -> None:
    """The image of treadle's reachable states under the abstraction map is exactly the set of
    states of Lamport's TwoPhase spec (288 for 3 RMs, 80 up to symmetry)."""
    images: dict[bool, set[Any]] = {False: set(), True: set()}

    def collect(world: World) -> None:
        for sym in (False, True):
            images[sym].add(abstraction(world, sym))

    probe = dataclasses.replace(TWOPHASE, invariants=[*TWOPHASE.invariants, collect])
    probe.checks_read_history = False  # type: ignore[attr-defined]
    ex = make_explorer(probe, config={"rms": 3}, symmetry=False)
    for w, _, _ in ex.roots():
        collect(w)
    search(ex, "bfs")
    assert len(images[False]) == tla_twophase(3) == 288
    assert len(images[True]) == tla_twophase(3, symmetric=True) == 80


def test_symmetry_canonical_form_matches_brute_force() -> None:
    """Our representative equals the one found by trying every permutation of the group."""
    ex = make_explorer(TWOPHASE, config={"rms": 3})
    fast = ex._symmetric_fp
    seen: list[tuple[Any, Any]] = []

    def both(nodes, pend, link_due, part, budget, live, histfp):  # type: ignore[no-untyped-def]
        got = fast(nodes, pend, link_due, part, budget, live, histfp)
        g = ex.groups[0]
        per_id = {
            nid: (nodes[i], budget[0][i] if budget[0] is not None else None)
            for i, nid in enumerate(ex.ids)
        }
        rest = (pend, link_due, part, budget[1:], live)
        best = None
        for perm in itertools.permutations(g):
            m = dict(zip(perm, g))
            inv = {v: k for k, v in m.items()}
            fp = (
                tuple(_rename(per_id[inv.get(n, n)], m) for n in ex.ids),
                _rename(rest, m),
                None,
            )
            if best is None or hash(fp) < hash(best):
                best = fp
        seen.append((got, best))
        return got

    ex._symmetric_fp = both  # type: ignore[method-assign]
    search(ex, "bfs")
    assert len({a for a, _ in seen}) == len({b for _, b in seen}) == ex.stats.states


@pytest.mark.parametrize("rms,traces", [(1, 5), (2, 20)])
def test_dpor_explores_one_execution_per_mazurkiewicz_trace(rms: int, traces: int) -> None:
    ex = make_explorer(TWOPHASE, config={"rms": rms}, symmetry=False)
    tree, n_traces = count_traces(ex)
    assert n_traces == traces
    ex = make_explorer(TWOPHASE, config={"rms": rms}, symmetry=False)
    assert dpor(ex) is None
    assert ex.stats.complete
    assert ex.stats.executions == n_traces
    # the full tree is what plain DFS executes: the maximal paths of the state graph
    ex2 = make_explorer(TWOPHASE, config={"rms": rms}, symmetry=False)
    search(ex2, "dfs")
    assert ex2.stats.paths == tree


def test_dpor_reports_reduction_against_dfs() -> None:
    r = treadle.explore("twophase", strategy="dpor", config={"rms": 3}, out=None)
    assert r.ok and r.extra["complete"]
    assert r.extra["executions_run"] == 98 and r.extra["paths_counted"] is None
    assert r.extra["dfs_paths_counted"] == 92802
    assert r.extra["reduction"] == pytest.approx(92802 / 98, rel=1e-2)
    assert "ran all 98 executions" in r.extra["summary"]


@pytest.mark.parametrize("strategy", ["bfs", "dfs", "dpor"])
def test_bug_found_with_shortest_counterexample_that_replays(strategy: str, tmp_path) -> None:
    cfg = {"rms": 3} if strategy != "bfs" else None  # bfs: the default 5 RMs
    r = treadle.explore("twophase", bug=BUG, strategy=strategy, config=cfg, out=str(tmp_path))
    assert r.verdict == "violation"
    assert r.violation is not None and r.violation.property == "Consistency"
    # rm prepares, another rm aborts, Prepared delivered, commit timer, Commit delivered
    assert r.extra["counterexample_steps"] == 5
    assert r.trace is not None
    rep = replay(r.trace)
    assert rep.matches
    assert rep.run.violation is not None and rep.run.violation.property == "Consistency"


def test_depth_bound_is_reported_as_incomplete() -> None:
    r = treadle.explore("twophase", strategy="bfs", steps=4, out=None)
    assert r.verdict == "unknown"  # nothing is proved about the unexplored part
    assert r.extra["complete"] is False
    assert r.extra["bounds_hit"] == ["depth"]
    assert r.extra["summary"].startswith(
        "bound hit (depth 4), no violation found in the explored part"
    )
    assert r.note == "bound hit (depth 4), no violation found in the explored part"
    r.assert_ok(allow_incomplete=True)


def test_cli_bound_hit_is_unknown_exit_3(capsys) -> None:
    from treadle.cli import main

    code = main(["explore", "twophase", "--strategy", "bfs", "--steps", "4", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 3
    assert "unknown: bound hit (depth 4), no violation found in the explored part" in out
    code = main(["explore", "twophase", "--strategy", "dfs", "--steps", "4", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["verdict"] == "unknown" and data["complete"] is False
    assert data["bounds_hit"] == ["depth"]
    # complete: exit 0
    code = main(["explore", "twophase", "--strategy", "bfs", "--config", "rms=2", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["verdict"] == "ok" and data["complete"] is True


def test_explorer_bounds_from_config() -> None:
    r = treadle.explore("twophase", strategy="dfs", config={"rms": 2, "max_states": 10}, out=None)
    assert r.extra["complete"] is False and "states" in r.extra["bounds_hit"]


def test_liveness_reported_apart_from_safety() -> None:
    sys_ = dataclasses.replace(TWOPHASE)
    sys_.checks_read_history = False  # type: ignore[attr-defined]

    def all_committed(world: World) -> bool:
        return all(
            n.phase == "committed"  # type: ignore[union-attr]
            for nid, n in world.nodes.items()
            if nid != "tm"
        )

    sys_.liveness = [  # type: ignore[attr-defined]
        ("Eventually Decided", TWOPHASE.liveness[0][1]),  # type: ignore[attr-defined]
        ("Eventually Committed", all_committed),
    ]
    r = treadle.explore(sys_, strategy="bfs", config={"rms": 2}, out=None)
    assert r.ok  # liveness findings are not safety violations
    found = {f["property"]: f for f in r.extra["liveness"]}
    assert set(found) == {"Eventually Committed"}  # every terminal state has decided
    f = found["Eventually Committed"]
    assert f["kind"] == "terminal"
    # the path really ends quiescent with a non-committed RM
    from treadle.runner import run_once

    run = run_once(sys_, make_explorer(sys_, config={"rms": 2}).cfg, None, Replay(f["choices"]), 99)
    assert run.world.enabled() == []
    assert not all_committed(run.world)


def test_clone_is_independent_and_equivalent() -> None:
    ex = make_explorer(TWOPHASE, config={"rms": 3}, symmetry=False)
    w, _, _ = next(ex.roots())
    c = clone_world(w)
    for _ in range(4):
        c.chooser, w.chooser = Replay([1, 0, 0]), Replay([1, 0, 0])
        assert w.step() and c.step()
    assert [e["type"] for e in w.history] == [e["type"] for e in c.history]
    assert ex.fingerprint(w, ex.root_meta()) == ex.fingerprint(c, ex.root_meta())
    d = clone_world(c)
    d.chooser = Replay([0])
    d.step()
    assert ex.fingerprint(d, ex.root_meta()) != ex.fingerprint(c, ex.root_meta())


# ---------------------------------------------------------------- a tiny system of our own
@dataclass(frozen=True)
class Ping:
    n: int


class Pinger(Node):
    def __init__(self) -> None:
        self.got: list[int] = []

    def state(self) -> Any:
        return tuple(self.got)

    def on_start(self, ctx: Context) -> None:
        if ctx.id == "a":
            ctx.send("b", Ping(ctx.random.randint(0, 2)))
            ctx.send("b", Ping(7))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.got.append(msg.n)
        ctx.record("got", n=msg.n)
        if ctx.bug == "crash-on-two" and msg.n == 2:
            raise RuntimeError("two is not allowed")


def _tiny(window: int) -> System:
    def no_seven_first(world: World) -> CheckResult | None:
        b = world.nodes["b"]
        if b is not None and b.got[:1] == [7] and len(b.got) == 2:  # type: ignore[attr-defined]
            return CheckResult.violation("Order", "b got 7 first")
        return None

    return System(
        name="tiny",
        description="two pings",
        build=lambda cfg, bug: Cluster(servers={"a": Pinger, "b": Pinger}),
        bugs={"crash-on-two": "b raises on 2"},
        invariants=[no_seven_first],
        exhaustive={"window": window, "latency_max": 1, "timer_drift": 0},
    )


@pytest.mark.parametrize("window", [2, 1_000_000_000])
def test_random_draws_and_orders_are_all_explored(window: int) -> None:
    r = treadle.explore(_tiny(window), strategy="bfs", out=None)
    assert r.verdict == "violation" and r.violation.property == "Order"
    assert r.extra["counterexample_steps"] == 2


def test_handler_exception_found_exhaustively() -> None:
    sys_ = _tiny(1_000_000_000)
    sys_.invariants = []
    r = treadle.explore(sys_, bug="crash-on-two", strategy="dfs", out=None)
    assert r.verdict == "violation"
    assert r.violation.property == "handler exception"
    assert r.extra["counterexample_steps"] == 1


def test_example_small_config_completes() -> None:
    # the example's exhaustive config is asynchronous; a window of 2 makes it a timed world
    r = treadle.explore("example", strategy="bfs", config={"clients": 1, "window": 2}, out=None)
    assert r.ok and r.extra["complete"]
    assert r.extra["model"].startswith("timed")
    assert r.extra["states"] > 20  # scripted write,read by one client


def test_clone_copies_extra_world_attributes() -> None:
    ex = make_explorer(TWOPHASE, config={"rms": 2}, symmetry=False)
    w, _, _ = next(ex.roots())
    w.watch = {"seen": [w.nodes["rm1"]], "world": w}  # type: ignore[attr-defined]
    c = clone_world(w, "rm1")
    assert c.watch is not w.watch  # type: ignore[attr-defined]
    assert c.watch["world"] is c  # type: ignore[attr-defined]
    assert c.watch["seen"][0] is c.nodes["rm1"]  # type: ignore[attr-defined]
    assert c.nodes["rm1"] is not w.nodes["rm1"] and c.nodes["rm2"] is w.nodes["rm2"]


def test_dpor_optimal_on_example_with_history_and_random_draws() -> None:
    """Another system: client random draws at start (several initial states), history-based
    checks (history appends are dependencies), timers with a budget."""
    example = get_system("example")
    cfg = {
        "clients": 1,
        "servers": 2,
        "window": 1_000_000_000,
        "max_timer_fires": 1,
        # the random workload (the exhaustive config scripts one)
        "script": "",
        "think": True,
        "value_range": 4,
        "ops_per_client": 1,
    }
    tree, traces = count_traces(make_explorer(example, config=cfg, symmetry=False))
    ex = make_explorer(example, config=cfg, symmetry=False)
    assert dpor(ex) is None and ex.stats.complete
    assert ex.stats.executions == traces == 144
    ex2 = make_explorer(example, config=cfg, symmetry=False)
    assert search(ex2, "dfs") is None
    assert ex2.stats.paths == tree == 324
