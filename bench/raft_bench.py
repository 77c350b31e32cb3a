"""Raft benchmark: exploration throughput, and how fast each seeded bug is found and shrunk.

    python bench/raft_bench.py            # full: throughput (median of 3), every bug on 3 seeds
    python bench/raft_bench.py --quick    # smaller budgets

Anchor: Coyote explores 10,000 Raft schedules in 105 s (about 95 schedules/s). One treadle
schedule is one run of the default step budget (600 steps) with the default fault mix (crashes,
partitions, drops, duplicates, reordering) and every step checked against the five properties.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from treadle.runner import explore
from treadle.system import get_system

ANCHOR_SCHEDULES_PER_S = 10_000 / 105


def throughput(nodes: int, runs: int, repeats: int) -> dict[str, float]:
    system = get_system("raft")
    rates, ev_rates, step_rates = [], [], []
    for rep in range(repeats):
        t = time.perf_counter()
        r = explore(system, runs=runs, seed=rep * 100_000, config={"nodes": nodes}, out=None)
        dt = time.perf_counter() - t
        if r.verdict != "ok":
            print(f"  unexpected {r.verdict}: {r.summary()}", file=sys.stderr)
        rates.append(r.runs / dt)
        ev_rates.append(r.events / dt)
        step_rates.append(r.steps / dt)
    return {
        "schedules_per_s": statistics.median(rates),
        "events_per_s": statistics.median(ev_rates),
        "steps_per_s": statistics.median(step_rates),
    }


def bug_figures(bug: str, seeds: list[int], limit: float, shrink_s: float) -> dict[str, object]:
    system = get_system("raft")
    times, runs = [], []
    for seed in seeds:
        t = time.perf_counter()
        r = explore(system, bug=bug, seed=seed, time=limit, out=None, shrink_time=0)
        dt = time.perf_counter() - t
        if r.verdict == "violation":
            times.append(dt)
            runs.append(r.runs)
    with tempfile.TemporaryDirectory() as d:
        r = explore(system, bug=bug, seed=seeds[0], time=limit, out=d, shrink_time=shrink_s)
    return {
        "found": f"{len(times)}/{len(seeds)}",
        "median_s": statistics.median(times) if times else None,
        "median_runs": statistics.median(runs) if runs else None,
        "property": r.violation.property if r.violation else None,
        "shrunk": r.shrunk,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    runs, repeats = (100, 3) if not args.quick else (40, 1)
    seeds = [0, 1000, 2000] if not args.quick else [0]
    shrink_s = 30.0 if not args.quick else 5.0

    print(
        f"anchor: Coyote, 10,000 Raft schedules in 105 s = {ANCHOR_SCHEDULES_PER_S:.0f} schedules/s"
    )
    for nodes in (3, 5):
        f = throughput(nodes, runs, repeats)
        print(
            f"raft {nodes} nodes: {f['schedules_per_s']:7.1f} schedules/s "
            f"({f['schedules_per_s'] / ANCHOR_SCHEDULES_PER_S:.2f}x anchor), "
            f"{f['events_per_s']:9.0f} history events/s, {f['steps_per_s']:9.0f} steps/s "
            f"(median of {repeats} x {runs} runs)",
            flush=True,
        )
    print("seeded bugs (default config and strategy; time to first counterexample, median):")
    for bug in sorted(get_system("raft").bugs):
        b = bug_figures(bug, seeds, limit=60.0, shrink_s=shrink_s)
        med = (
            f"{b['median_s']:6.2f} s ({b['median_runs']} runs)"
            if b["median_s"] is not None
            else "not found"
        )
        sh = b["shrunk"] or {}
        print(
            f"  {bug:18} found {b['found']} seeds, {med}; {b['property']}; shrunk to "
            f"{sh.get('choices')} choices / {sh.get('steps')} steps "
            f"(from {sh.get('from_choices')} / {sh.get('from_steps')})",
            flush=True,
        )


if __name__ == "__main__":
    main()
