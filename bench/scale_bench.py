"""Raft schedules/s on 1 and 2 workers (process pool) and on a 2-worker Dask LocalCluster.

Each figure is a whole ``treadle.explore("raft", runs=R)`` (default config and checks, no bug),
pool start included: what a user waits for. The anchor: Coyote explores 10,000 Raft schedules in
105 s (about 95 schedules/s). The goal on this 2-core machine: 2 workers >= 1.7x one.

    flock /work/team/bench.lock python bench/scale_bench.py [--runs R ...] [--repeats N]
        [--strategy mixed random ...] [--no-dask]

``mixed`` (the default strategy) learns from runs, in generations of 16 seeds whose corpus is
fixed (:mod:`treadle.generations`): workers wait for each other at every generation's end;
``random`` has no such barrier.

The machine is shared: the load average is printed beside the figures; a speedup measured while
other processes hold a core is not the speedup of an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import treadle

ANCHOR = 95.0  # Coyote, Raft schedules/s


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(runs: int, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    r = treadle.explore("raft", runs=runs, out=None, **kw)
    return time.perf_counter() - t0, r


def series(label: str, runs: int, repeats: int, **kw) -> float:
    times = []
    ref = None
    for _ in range(repeats):
        t, r = timed(runs, **kw)
        times.append(t)
        key = (r.verdict, r.runs, r.events, r.steps)
        assert ref is None or key == ref, (key, ref)
        ref = key
    med = statistics.median(times)
    rate = runs / med
    print(
        f"{label:<26} {runs:>5} runs  median {med:6.2f} s  {rate:7.1f} schedules/s  "
        f"({rate / ANCHOR:.2f}x Coyote's {ANCHOR:.0f})  runs: "
        + ", ".join(f"{t:.2f}" for t in times)
        + f"  [load {load()}]"
    )
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strategy", nargs="+", default=["mixed", "random"])
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    print(f"anchor: Coyote explores 10,000 Raft schedules in 105 s = {ANCHOR:.0f} schedules/s")
    print(f"cores: {os.cpu_count()}  load average at start: {load()}")
    timed(20, workers=2)  # start the fork server once (a one-time cost per process)
    for strategy in args.strategy:
        for runs in args.runs:
            one = series(f"{strategy}: 1 worker", runs, args.repeats, workers=1, strategy=strategy)
            two = series(f"{strategy}: 2 workers", runs, args.repeats, workers=2, strategy=strategy)
            print(f"  speedup 2 workers / 1: {two / one:.2f}x (goal >= 1.7x)")
    if args.no_dask:
        return
    try:
        import distributed
    except ImportError:
        print("dask: not installed (pip install 'treadle[dask]')")
        return
    t0 = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        print(f"dask LocalCluster (2 worker processes) started in {time.perf_counter() - t0:.1f} s")
        ex = client.get_executor(pure=False)
        timed(20, executor=ex, workers=2)  # workers import treadle and the systems once
        for strategy in args.strategy:
            for runs in args.runs:
                series(
                    f"{strategy}: Dask, 2 workers",
                    runs,
                    args.repeats,
                    executor=ex,
                    workers=2,
                    strategy=strategy,
                )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
