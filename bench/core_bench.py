"""Simulation-core throughput: events/s, schedules/s and harness overhead.

Overhead = time per step / time spent inside node handlers (goal <= 2x). The anchor: Coyote
explores 10,000 Raft schedules in 105 s (about 95 schedules/s).

    python bench/core_bench.py [system ...]     # default: example (and raft if installed)
"""

from __future__ import annotations

import statistics
import sys
import time

from treadle.node import Node
from treadle.runner import run_once
from treadle.strategies import Mixed, Recorder
from treadle.system import get_system

REPEATS = 5


def measure(name: str, runs: int, level: int) -> dict[str, float]:
    """level 0: the engine alone; 1: + per-step invariants; 2: + end-of-run checks."""
    system = get_system(name)
    cfg = system.resolve_config()
    saved = system.final_checks
    saved_inv = system.invariants
    if level < 2:
        system.final_checks = []
    if level < 1:
        system.invariants = []
    try:
        strat = Mixed()
        t0 = time.perf_counter()
        events = steps = 0
        for seed in range(runs):
            strat.begin_run(seed, cfg, system.steps)
            r = run_once(system, cfg, None, Recorder(strat), system.steps)
            events += len(r.history)
            steps += r.steps
        elapsed = time.perf_counter() - t0
    finally:
        system.final_checks = saved
        system.invariants = saved_inv
    return {
        "schedules_s": runs / elapsed,
        "steps_s": steps / elapsed,
        "events_s": events / elapsed,
        "steps": steps,
        "elapsed": elapsed,
    }


def handler_share(name: str, runs: int) -> float:
    """Fraction of step time spent inside node handlers (wraps every handler with a timer)."""
    system = get_system(name)
    cfg = system.resolve_config()
    inside = 0.0
    originals = {}
    for meth in ("on_message", "on_timer", "on_start", "on_restart"):
        originals[meth] = getattr(Node, meth)

    def wrap(f):
        def timed(self, *a):
            nonlocal inside
            t = time.perf_counter()
            try:
                return f(self, *a)
            finally:
                inside += time.perf_counter() - t

        return timed

    build = system.build
    saved_inv = system.invariants
    system.invariants = []

    def wrapped_build(config, bug):
        cluster = build(config, bug)

        def wrap_factory(fac):
            def make():
                node = fac()
                for meth in ("on_message", "on_timer"):
                    setattr(node, meth, wrap(getattr(type(node), meth)).__get__(node))
                return node

            return make

        cluster.servers = {k: wrap_factory(v) for k, v in cluster.servers.items()}
        cluster.clients = {k: wrap_factory(v) for k, v in cluster.clients.items()}
        return cluster

    system.build = wrapped_build
    saved = system.final_checks
    system.final_checks = []
    try:
        strat = Mixed()
        t0 = time.perf_counter()
        for seed in range(runs):
            strat.begin_run(seed, cfg, system.steps)
            run_once(system, cfg, None, Recorder(strat), system.steps)
        total = time.perf_counter() - t0
    finally:
        system.build = build
        system.final_checks = saved
        system.invariants = saved_inv
    return total / inside if inside else float("inf")


def main() -> None:
    names = sys.argv[1:] or ["example"]
    if len(sys.argv) == 1:
        try:
            get_system("raft")
            names.append("raft")
        except Exception:
            pass
    print("anchor: Coyote explores 10,000 Raft schedules in 105 s = 95 schedules/s")
    for name in names:
        runs = 200 if name == "example" else 30
        for level in (0, 1, 2):
            rows = [measure(name, runs, level) for _ in range(REPEATS)]
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            label = ("engine alone     ", "+ step invariants", "+ end-of-run checks")[level]
            print(
                f"{name:10s} {label}: {med['schedules_s']:8.1f} schedules/s  {med['steps_s']:9.0f} steps/s  "
                f"{med['events_s']:9.0f} history events/s  (median of {REPEATS} x {runs} runs;"
                f" {med['schedules_s'] / 95:.1f}x Coyote's schedule rate)"
            )
        ratios = [handler_share(name, runs) for _ in range(3)]
        print(
            f"{name:10s} harness overhead (no checks): time per step / time in handlers = {statistics.median(ratios):.2f}x (goal <= 2x)"
        )


if __name__ == "__main__":
    main()
