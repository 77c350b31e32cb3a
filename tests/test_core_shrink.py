"""Shrinking: the choice list gets small, the violation stays the same, replay still matches."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult

from treadle import history as hist
from treadle.node import Context, Node
from treadle.runner import explore, replay_trace, run_once
from treadle.shrink import shrink
from treadle.strategies import Mixed, RandomWalk, Recorder, Strategy
from treadle.system import Cluster, System
from treadle.trace import Trace
from treadle.world import World


class Sender(Node):
    """n1 sends numbered pings to n2, one per tick."""

    def __init__(self, count: int):
        self.count = count
        self.sent = 0

    def on_start(self, ctx: Context) -> None:
        if ctx.id == "n1":
            ctx.set_timer("send", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.sent += 1
        ctx.send("n2", self.sent)
        if self.sent < self.count:
            ctx.set_timer("send", 1)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.record("got", seq=msg, src=src)


def reordered(world: World) -> CheckResult | None:
    seen: list[int] = [e["seq"] for e in world.history if e["type"] == "got" and e["node"] == "n2"]
    if any(b < a for a, b in zip(seen, seen[1:])):
        return CheckResult.violation("in-order delivery", f"n2 got pings in the order {seen}")
    return None


def reorder_system() -> System:
    def build(config: dict[str, Any], bug: str | None) -> Cluster:
        return Cluster(servers={"n1": lambda: Sender(30), "n2": lambda: Sender(30)})

    return System(
        "reorder",
        "",
        build,
        defaults={"latency_max": 5, "window": 4, "drop_rate": 0.1},
        invariants=[reordered],
        steps=500,
    )


def first_failing_trace(sys_: System, strat: Strategy, seeds: int) -> Trace:
    """The raw (unshrunk) trace of the first failing run among ``seeds`` seeds."""
    cfg = sys_.resolve_config()
    for seed in range(seeds):
        strat.begin_run(seed, cfg, sys_.steps)
        rec = Recorder(strat)
        res = run_once(sys_, cfg, None, rec, sys_.steps)
        if res.violation:
            return Trace(
                sys_.name,
                sys_.version,
                None,
                cfg,
                seed,
                strat.name,
                res.steps,
                rec.choices,
                violation=res.violation.to_json(),
                history_sha256=hist.digest(res.history),
            )
    raise AssertionError(f"no failing run in {seeds} seeds")


def test_explore_finds_the_reordering():
    r = explore(reorder_system(), runs=20, out=None, shrink_time=0)
    assert r.verdict == "violation" and r.violation.property == "in-order delivery"


def test_shrinks_to_a_small_trace_with_the_same_property():
    sys_ = reorder_system()
    raw = first_failing_trace(sys_, Mixed(), 20)
    small = shrink(sys_, raw, time=20)
    assert small.violation["property"] == "in-order delivery"
    assert len(small.choices) < len(raw.choices)
    assert small.steps <= raw.steps
    # two pings are enough to be out of order: the shrunk run delivers few messages
    again = replay_trace(sys_, small)
    assert again.violation is not None and again.violation.property == "in-order delivery"
    assert hist.digest(again.history) == small.history_sha256
    assert small.steps <= 6, (small.steps, small.choices)


def test_shrink_is_deterministic():
    sys_ = reorder_system()
    raw = first_failing_trace(sys_, RandomWalk(), 50)
    a = shrink(sys_, raw, time=30, runs=300)
    b = shrink(sys_, raw, time=30, runs=300)
    assert a.choices == b.choices and a.steps == b.steps


def test_a_trace_shrunk_again_says_the_size_of_the_run_it_came_from():
    sys_ = reorder_system()
    raw = first_failing_trace(sys_, RandomWalk(), 50)
    once = shrink(sys_, raw, runs=40)
    assert once.shrunk_from["steps"] == raw.steps
    assert once.shrunk_from["choices"] == len(raw.choices)
    twice = shrink(sys_, once, runs=300)
    assert twice.shrunk_from == once.shrunk_from  # not the size of its input, a shrunk trace
