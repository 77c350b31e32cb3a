"""Event-store benchmark: appends/s through the simulated service, and the checker's time on a
100,000-event history.

    python bench/eventstore_bench.py [--repeat 5] [--events 100000]

1. Appends/s: a fault-free run of the eventstore system (store + projector + command clients,
   group commit, subscriptions), random-walk schedule, counting acknowledged appends per second
   of wall time: with the per-step invariant monitor on (as explored) and off (the service
   alone).
2. Checker: a long simulated run recorded into a history of ``--events`` events, then
   ``checkers.eventstore.check_history`` on it (single linear pass), and the shared
   linearizability checker with the ``stream`` model on the same history.

The issue names no anchor figure for either; each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from treadle.checkers.eventstore import check_history
from treadle.impl.eventstore.system import system

from treadle.runner import run_once
from treadle.strategies import Recorder, make_strategy

FAULT_FREE = {
    "crash_rate": 0.0,
    "drop_rate": 0.0,
    "duplicate_rate": 0.0,
    "partition_rate": 0.0,
}


def simulate(config: dict, steps: int, checks: bool, seed: int = 0):
    sys_ = system if checks else dataclasses.replace(system, invariants=[], final_checks=[])
    cfg = system.resolve_config(config)
    strat = make_strategy("random")
    strat.begin_run(seed, cfg, steps)
    t = time.perf_counter()
    r = run_once(sys_, cfg, None, Recorder(strat), steps)
    elapsed = time.perf_counter() - t
    assert r.violation is None, r.violation
    acked = sum(1 for e in r.history if e["type"] == "ok" and e.get("f") == "append")
    return acked, elapsed, r


def appends_per_second(repeat: int) -> None:
    # poll_limit: without faults the store's pushes keep the projection current, so the
    # projector may stop polling and the run ends when the workload does (quiescence)
    config = {
        **FAULT_FREE,
        "clients": 8,
        "ops_per_client": 150,
        "accounts": 4,
        "users": 4,
        "poll_limit": 2,
    }
    for checks in (False, True):
        rates, acked = [], 0
        for i in range(repeat):
            acked, elapsed, _ = simulate(config, 200_000, checks, seed=i)
            rates.append(acked / elapsed)
        label = "with per-step checks" if checks else "service only"
        print(
            f"appends/s through the simulated service ({label}): "
            f"{statistics.median(rates):,.0f}  (median of {repeat}; {acked} acknowledged appends "
            "per run, 8 clients, group commit)"
        )


def checker_time(repeat: int, n_events: int) -> None:
    config = {
        "clients": 8,
        "ops_per_client": n_events // 40,
        "accounts": 6,
        "users": 6,
        "crash_rate": 0.002,
        "drop_rate": 0.01,
        "duplicate_rate": 0.01,
        "poll_interval": 5,
    }
    _, _, r = simulate(config, 4 * n_events, checks=False, seed=1)
    history = r.history[:n_events]
    kinds = sum(1 for e in history if e["type"] == "appended")
    print(f"history: {len(history):,} events ({kinds:,} appended, {r.world.crashes} crashes)")
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = check_history(history)
        times.append(time.perf_counter() - t)
    print(
        f"treadle.checkers.eventstore.check_history on {len(history):,} events: "
        f"{statistics.median(times) * 1000:,.0f} ms (median of {repeat}), verdict {result.verdict}"
    )
    try:
        from treadle.checkers.linearizability import check_history as linearizable
    except ImportError:
        return
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        lin = linearizable(history, "stream", timeout=60)
        times.append(time.perf_counter() - t)
    print(
        f"linearizability (stream model) on the same history: "
        f"{statistics.median(times) * 1000:,.0f} ms (median of {repeat}), verdict {lin.verdict}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    appends_per_second(args.repeat)
    checker_time(args.repeat, args.events)


if __name__ == "__main__":
    main()
