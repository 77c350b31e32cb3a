"""Schedules per second of the guided strategy beside random (and mixed), per system, and runs
to find a bug behind a sequence of rare states (the test system ``tests/lock_system.py``).

Guided pays for its coverage: after every step it reads the new protocol events, the new
sometimes-hits and the system's abstraction (``System.coverage``); the figure is the price of
that per schedule. Medians of ``--repeat`` explorations of ``--runs`` runs each, one process.

    nice -n 10 flock /work/team/bench.lock python bench/guided_bench.py

Also guided without condition coverage (its price), and runs to leave the maze
(``tests/maze_system.py``: only the node code's conditions can guide there).
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


def rate(
    system: str, strategy: str, runs: int, repeat: int, conditions: bool = True
) -> dict[str, float]:
    """Runs and steps per second of wall time, and per second of this process's CPU time: on a
    shared machine the wall figure moves with the others' load, the CPU figure much less.
    ``conditions=False``: guided without condition coverage (treadle.condcov), its price."""
    from treadle.runner import explore
    from treadle.strategies import Guided

    Guided.CONDITIONS = conditions

    per_s, steps_s, per_cpu_s, steps_cpu_s = [], [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = explore(
            system, strategy=strategy, runs=runs, seed=0, out=None, shrink_time=0, workers=1
        )
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        per_s.append(r.runs / dt)
        steps_s.append(r.steps / dt)
        per_cpu_s.append(r.runs / dc)
        steps_cpu_s.append(r.steps / dc)
    return {
        "runs_per_s": statistics.median(per_s),
        "steps_per_s": statistics.median(steps_s),
        "runs_per_cpu_s": statistics.median(per_cpu_s),
        "steps_per_cpu_s": statistics.median(steps_cpu_s),
    }
    Guided.CONDITIONS = True


def lock(seeds: int, budget: int, name: str = "lock") -> dict[str, list[int | None]]:
    """Runs to open the lock (``tests/lock_system.py``: sometimes-assertions guide) or to leave
    the maze (``tests/maze_system.py``: nothing but the node code's conditions guide), per
    strategy and seed; None: not within the budget."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import lock_system
    import maze_system

    from treadle.runner import explore
    from treadle.strategies import Guided
    from treadle.system import register

    register(lock_system.system)
    register(maze_system.system)
    out: dict[str, list[int | None]] = {}
    for strategy in ("random", "guided", "guided-without-conditions", "mixed"):
        Guided.CONDITIONS = strategy != "guided-without-conditions"
        found = []
        for seed in range(seeds):
            r = explore(
                name,
                strategy=strategy.split("-")[0],
                runs=budget,
                seed=seed * 100_000,
                out=None,
                shrink_time=0,
            )
            found.append(r.runs if r.verdict == "violation" else None)
        out[strategy] = found
    Guided.CONDITIONS = True
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
        row["guided-without-conditions"] = rate(system, "guided", a.runs, a.repeat, False)
        # steps per CPU second: runs of guided (swarm mixes, crashes) differ in length
        key = "steps_per_cpu_s"
        ratio = row["guided"][key] / row["random"][key]
        mixed = row["mixed"][key] / row["random"][key]
        bare = row["guided-without-conditions"][key] / row["random"][key]
        report["systems"][system] = {
            **row,
            "guided_over_random": round(ratio, 3),
            "guided_without_conditions_over_random": round(bare, 3),
            "mixed_over_random": round(mixed, 3),
        }
        print(
            f"{system:10s} runs/s random {row['random']['runs_per_s']:7.1f}  guided "
            f"{row['guided']['runs_per_s']:7.1f}  mixed {row['mixed']['runs_per_s']:7.1f} | "
            f"steps per CPU s random {row['random'][key]:8.0f}  guided {row['guided'][key]:8.0f}"
            f"  mixed {row['mixed'][key]:8.0f}  guided/random {ratio:.2f} (without conditions "
            f"{bare:.2f})  mixed/random {mixed:.2f}",
            flush=True,
        )
    report["lock"] = lock(a.lock_seeds, a.lock_budget)
    for s, v in report["lock"].items():
        print(f"lock (8 right draws in a row), runs to open it, {s}: {v}")
    report["maze"] = lock(a.lock_seeds, a.lock_budget, "maze")
    for s, v in report["maze"].items():
        print(f"maze (9 right turns in a row, no other feedback), runs to leave it, {s}: {v}")
    if a.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
