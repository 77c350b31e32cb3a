"""Schedules per second of the guided strategy beside random (and mixed), per system, and runs
to find a bug behind a sequence of rare states (the test system ``tests/lock_system.py``).

Guided pays for its coverage: after every step it reads the new protocol events, the new
sometimes-hits and the system's abstraction (``System.coverage``); the figure is the price of
that per schedule. Medians of ``--repeat`` explorations of ``--runs`` runs each, one process.

    nice -n 10 flock /work/team/bench.lock python bench/guided_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ("raft", "pbft", "kv", "eventstore", "mesh", "twophase")


def rate(system: str, strategy: str, runs: int, repeat: int) -> dict[str, float]:
    from treadle.runner import explore

    per_s, steps_s = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = explore(
            system, strategy=strategy, runs=runs, seed=0, out=None, shrink_time=0, workers=1
        )
        dt = time.perf_counter() - t0
        per_s.append(r.runs / dt)
        steps_s.append(r.steps / dt)
    return {"runs_per_s": statistics.median(per_s), "steps_per_s": statistics.median(steps_s)}


def lock(seeds: int, budget: int) -> dict[str, list[int | None]]:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import lock_system

    from treadle.runner import explore
    from treadle.system import register

    register(lock_system.system)
    out: dict[str, list[int | None]] = {}
    for strategy in ("random", "guided", "mixed"):
        found = []
        for seed in range(seeds):
            r = explore(
                "lock",
                strategy=strategy,
                runs=budget,
                seed=seed * 100_000,
                out=None,
                shrink_time=0,
            )
            found.append(r.runs if r.verdict == "violation" else None)
        out[strategy] = found
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--lock-seeds", type=int, default=5)
    p.add_argument("--lock-budget", type=int, default=5000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    report: dict = {"systems": {}}
    for system in a.systems.split(","):
        row = {s: rate(system, s, a.runs, a.repeat) for s in ("random", "guided", "mixed")}
        ratio = row["guided"]["runs_per_s"] / row["random"]["runs_per_s"]
        report["systems"][system] = {**row, "guided_over_random": round(ratio, 3)}
        print(
            f"{system:10s} runs/s random {row['random']['runs_per_s']:7.1f}  guided "
            f"{row['guided']['runs_per_s']:7.1f}  mixed {row['mixed']['runs_per_s']:7.1f}  "
            f"guided/random {ratio:.2f}",
            flush=True,
        )
    report["lock"] = lock(a.lock_seeds, a.lock_budget)
    for s, v in report["lock"].items():
        print(f"lock (8 right draws in a row), runs to open it, {s}: {v}")
    if a.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
