"""Benchmarks of the kv store (issue 6).

* ring lookup time per key at 1,000 nodes x 256 virtual nodes (owner and a 3-node preference
  list), median of several passes;
* schedules (runs) per second exploring a 5-node cluster, strict mode, no bug;
* time to find each seeded bug from a clean start (default strategy, seed 0, no shrinking).

Usage: python bench/kv_bench.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

from treadle.impl.kv.ring import Ring
from treadle.impl.kv.system import system

from treadle.runner import explore


def ring_lookup(passes: int, nkeys: int) -> None:
    t0 = time.perf_counter()
    ring = Ring([f"node-{i}" for i in range(1000)], 256)
    build = time.perf_counter() - t0
    keys = [f"user:{i}" for i in range(nkeys)]
    owner, pref = [], []
    for _ in range(passes):
        t = time.perf_counter()
        for k in keys:
            ring.owner(k)
        owner.append((time.perf_counter() - t) / nkeys)
        t = time.perf_counter()
        for k in keys:
            ring.preference_list(k, 3)
        pref.append((time.perf_counter() - t) / nkeys)
    print(f"ring: 1,000 nodes x 256 vnodes = {len(ring._points):,} tokens, built in {build:.2f} s")
    print(
        f"  owner(key):              {statistics.median(owner) * 1e6:6.2f} us/key (median of {passes})"
    )
    print(
        f"  preference_list(key, 3): {statistics.median(pref) * 1e6:6.2f} us/key (median of {passes})"
    )
    print("  anchor: the issue asks for the figure; binary search is O(log 256,000) = 18 probes")


def schedules_per_second(repeats: int, runs: int) -> None:
    rates = []
    for i in range(repeats):
        r = explore(system, seed=100 * i, runs=runs, config={"mode": "strict"}, out=None)
        assert r.verdict == "ok", r.summary()
        rates.append(r.runs / r.elapsed_s)
        steps = r.steps / r.runs
    print(
        f"exploration, 5 servers + 3 clients + admin, strict mode: {statistics.median(rates):.1f} "
        f"schedules/s (median of {repeats} x {runs} runs, ~{steps:.0f} steps each + settle + "
        f"audit + linearizability check)"
    )


def time_to_find(bugs: list[str]) -> None:
    print("time to find each seeded bug (mixed strategy, seed 0, no shrinking):")
    for bug in bugs:
        r = explore(system, bug=bug, seed=0, time=120, out=None, shrink_time=0)
        prop = r.violation.property if r.violation else "-"
        print(f"  {bug:28s} {r.verdict:9s} after {r.runs:4d} runs, {r.elapsed_s:6.2f} s ({prop})")


def main() -> None:
    quick = "--quick" in sys.argv
    ring_lookup(passes=3 if quick else 5, nkeys=20_000 if quick else 100_000)
    schedules_per_second(repeats=3, runs=20 if quick else 60)
    time_to_find(sorted(system.bugs))


if __name__ == "__main__":
    main()
