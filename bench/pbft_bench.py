"""PBFT benchmark: schedules/s for n=4, f=1 with one Byzantine replica; time to find each seeded
bug from a clean start (default strategy, seed 0); shrunk trace lengths.

    python bench/pbft_bench.py [--repeat 3] [--runs 200]

The issue gives no external anchor figure for PBFT; the figures are printed beside the issue's
targets (each bug found within `--time 60`, "aim for a few seconds").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from treadle.impl.pbft.system import system

from treadle.runner import explore


def schedules_per_second(runs: int, repeat: int) -> tuple[float, float, float]:
    rates, steps, events = [], [], []
    for i in range(repeat):
        t = time.perf_counter()
        res = explore(system, runs=runs, seed=1000 * i, out=None, shrink_time=0)
        dt = time.perf_counter() - t
        assert res.verdict == "ok", res.summary()
        rates.append(res.runs / dt)
        steps.append(res.steps / dt)
        events.append(res.events / dt)
    return statistics.median(rates), statistics.median(steps), statistics.median(events)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--runs", type=int, default=200)
    args = p.parse_args()
    rate, steps, events = schedules_per_second(args.runs, args.repeat)
    print(
        f"schedules/s (n=4, f=1, 1 Byzantine, mode mix, {system.steps} steps + settle): "
        f"{rate:.1f}  [steps/s {steps:.0f}, history events/s {events:.0f}]  "
        f"(median of {args.repeat} x {args.runs} runs; anchor: none given)"
    )
    print(
        f"{'bug':28} {'runs':>5} {'find s':>8} {'property':>10} {'shrunk choices':>15} {'steps':>6}"
    )
    for bug in sorted(system.bugs):
        times = []
        res = None
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = explore(system, bug=bug, seed=0, time=60, out=None, shrink_time=0)
            times.append(time.perf_counter() - t)
        assert res is not None and res.violation is not None, bug
        with tempfile.TemporaryDirectory() as d:
            shrunk = explore(system, bug=bug, seed=0, time=60, out=d, shrink_time=30)
        s = shrunk.shrunk or {}
        print(
            f"{bug:28} {res.runs:>5} {statistics.median(times):>8.2f} "
            f"{res.violation.property:>10} {s.get('choices', '?'):>8} of {s.get('from_choices', '?'):<5}"
            f"{s.get('steps', '?'):>6}   (target: found within 60 s)"
        )


if __name__ == "__main__":
    main()
