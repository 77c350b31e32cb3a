"""Service mesh benchmark: simulated requests/s, schedules/s, time to find each seeded bug, and
z3 bounded-model-checking time per k. Each figure is the median of several repetitions.

    python bench/mesh_bench.py [--reps 3] [--kmax 12] [--quick]

The issue gives no anchor figure for the mesh; the anchors printed are the issue's own targets
("each bug found from a clean start within --time 60"; BMC "for all input sequences up to k").
"""

from __future__ import annotations

import argparse
import statistics
import time

from treadle.checkers.breaker import proofs
from treadle.impl.mesh.system import system

from treadle.runner import explore, run_once
from treadle.strategies import Recorder, make_strategy

BUGS = ("seed-breaker", "unlimited-half-open", "open-forever", "retry-storm")


def throughput(runs: int) -> tuple[float, float, float]:
    """(requests/s, steps/s, schedules/s) over ``runs`` runs of the mixed strategy."""
    cfg = system.resolve_config()
    strat = make_strategy("mixed")
    requests = steps = 0
    start = time.perf_counter()
    for seed in range(runs):
        strat.begin_run(seed, cfg, system.steps)
        r = run_once(system, cfg, None, Recorder(strat), system.steps)
        requests += sum(1 for e in r.history if e["type"] == "invoke")
        steps += r.steps
    dt = time.perf_counter() - start
    return requests / dt, steps / dt, runs / dt


def time_to_find(bug: str) -> tuple[float, int, int, int]:
    """(seconds to the first violation, runs, shrunk choices, shrunk steps)."""
    start = time.perf_counter()
    r = explore(system, bug=bug, seed=0, time=60, out=None, shrink_time=0)
    found = time.perf_counter() - start
    assert r.verdict == "violation", (bug, r.summary())
    s = explore(system, bug=bug, seed=0, time=60, out=None, shrink_time=30)
    return found, r.runs, s.shrunk["choices"], s.shrunk["steps"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--kmax", type=int, default=12)
    p.add_argument("--quick", action="store_true", help="fewer runs, k up to 8")
    args = p.parse_args()
    runs = 30 if args.quick else 150
    kmax = min(args.kmax, 8) if args.quick else args.kmax

    figs = [throughput(runs) for _ in range(args.reps)]
    req, steps, sched = (statistics.median(f[i] for f in figs) for i in range(3))
    print(f"simulated mesh ({runs} runs x {args.reps}, mixed strategy, crashes+partitions on)")
    print(f"  requests/s   {req:10.0f}")
    print(f"  steps/s      {steps:10.0f}")
    print(f"  schedules/s  {sched:10.1f}   (runs of {system.steps} steps)")

    print("time to find each seeded bug (treadle explore mesh --bug X, seed 0; anchor: < 60 s)")
    for bug in BUGS:
        rows = [time_to_find(bug) for _ in range(args.reps)]
        found = statistics.median(r[0] for r in rows)
        _, n, choices, st = rows[0]
        print(f"  {bug:20} {found:6.2f} s  ({n} run(s)); shrunk to {choices} choices, {st} steps")

    print(f"z3 bounded model checking of the breaker (k = 1..{kmax}; anchor: all sequences <= k)")
    per_k = [proofs.bmc(proofs.PROOF_CONFIG, None, kmax).seconds_per_k for _ in range(args.reps)]
    total = 0.0
    for k in range(kmax):
        t = statistics.median(run[k] for run in per_k)
        total += t
        print(f"  k={k + 1:2}  step {t:7.3f} s   cumulative {total:7.3f} s")
    for bug in proofs.VARIANTS:
        ts, r = [], None
        for _ in range(args.reps):
            start = time.perf_counter()
            r = proofs.bmc(proofs.PROOF_CONFIG, bug, kmax)
            ts.append(time.perf_counter() - start)
        assert r is not None and r.counterexample is not None
        print(
            f"  {bug:20} refuted at k={r.k} in {statistics.median(ts):.3f} s "
            f"({r.counterexample.property})"
        )


if __name__ == "__main__":
    main()
