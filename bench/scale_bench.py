"""Raft schedules/s on 1 and 2 workers (process pool) and on a 2-worker Dask LocalCluster, and
exhaustive BFS of Raft's small config, serial against 2 workers.

Each figure is a whole ``treadle.explore(...)`` (default config and checks, no bug), pool start
included: what a user waits for. The anchor: Coyote explores 10,000 Raft schedules in 105 s
(about 95 schedules/s). The goal on this 2-core machine: 2 workers >= 1.7x one.

    flock /work/team/bench.lock python bench/scale_bench.py [--runs R ...] [--repeats N]
        [--strategy mixed random ...] [--no-dask] [--no-exhaustive] [--only-exhaustive]
        [--exhaustive-config KEY=VALUE ...]

``mixed`` (the default strategy) learns from runs, in generations of 16 seeds whose corpus is
fixed (:mod:`treadle.generations`): workers wait for each other at every generation's end;
``random`` has no such barrier. The exhaustive rows run ``strategy="bfs"`` on Raft's
``System.exhaustive`` config (11,450 states) and check that both report the same states,
transitions and depth.

The machine is shared: the load average is printed beside the figures; a speedup measured while
other processes hold a core is not the speedup of an idle machine. So every row also gives CPU
seconds (this process and its reaped workers: the pool's processes; a Dask cluster's workers are
not children, so n/a there) and a *CPU-bound estimate* of the 2-worker speedup:
``cpu(1 worker) / max(cpu(2 workers) / 2, coordinator cpu(2 workers))``, what an idle 2-core
machine would show if the work spread evenly over both cores (the coordinator's own share cannot
spread). The final table prints medians over ``--repeats`` runs and the ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from dataclasses import dataclass

import treadle

ANCHOR = 95.0  # Coyote, Raft schedules/s


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu() -> tuple[float, float]:
    """(this process, its workers) CPU seconds: reaped children, and the fork server's (workers
    started beside other threads are its children, not ours: its reaped children count)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime + forkserver_cpu()


def forkserver_cpu() -> float:
    """CPU seconds of multiprocessing's fork server and its reaped children (0 if none runs)."""
    try:
        from multiprocessing import forkserver

        pid = forkserver._forkserver._forkserver_pid
        if not pid:
            return 0.0
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state (3)
        ticks = sum(int(x) for x in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError, IndexError):
        return 0.0


@dataclass
class Row:
    label: str
    work: str
    wall: float
    cpu: float | None  # all CPU: this process and its workers
    own: float | None  # this process only (the coordinator)
    rate: float | None = None  # schedules/s


ROWS: list[Row] = []


def timed(**kw) -> tuple[float, float, float, object]:
    c0 = cpu()
    t0 = time.perf_counter()
    r = treadle.explore("raft", out=None, **kw)
    wall = time.perf_counter() - t0
    c1 = cpu()
    return wall, (c1[0] - c0[0]) + (c1[1] - c0[1]), c1[0] - c0[0], r


def series(label: str, repeats: int, key, work: str, runs: int | None, cpu_ok: bool, **kw) -> Row:
    walls, cpus, owns = [], [], []
    ref = None
    for _ in range(repeats):
        wall, c, own, r = timed(runs=runs, **kw) if runs else timed(**kw)
        walls.append(wall)
        cpus.append(c)
        owns.append(own)
        k = key(r)
        assert ref is None or k == ref, (k, ref)
        ref = k
    row = Row(
        label,
        work,
        statistics.median(walls),
        statistics.median(cpus) if cpu_ok else None,
        statistics.median(owns) if cpu_ok else None,
    )
    if runs:
        row.rate = runs / row.wall
    print(
        f"{label:<30} {work:>14}  median {row.wall:6.2f} s"
        + (f"  cpu {row.cpu:6.2f} s (here {row.own:5.2f})" if row.cpu is not None else "")
        + (f"  {row.rate:7.1f} schedules/s ({row.rate / ANCHOR:.2f}x Coyote's)" if row.rate else "")
        + "  runs: "
        + ", ".join(f"{t:.2f}" for t in walls)
        + f"  [load {load()}]",
        flush=True,
    )
    ROWS.append(row)
    return row


def runs_key(r) -> tuple:
    return (r.verdict, r.runs, r.events, r.steps)


def states_key(r) -> tuple:
    e = r.extra
    return (r.verdict, e["states"], e["transitions"], e["depth"], e["paths_counted"])


def ratios(one: Row, two: Row) -> str:
    text = f"wall {one.wall / two.wall:.2f}x"
    if one.cpu and two.cpu and two.own is not None:
        estimate = one.cpu / max(two.cpu / 2, two.own)
        text += f", CPU-bound estimate {estimate:.2f}x (cpu 2 workers / 1: {two.cpu / one.cpu:.2f})"
    return text


def table(pairs: list[tuple[Row, Row]]) -> None:
    print()
    print(
        "| series | work | 1 worker: median s (cpu s) | 2 workers: median s (cpu s) | wall ratio "
        "| CPU-bound estimate |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for one, two in pairs:

        def cell(r: Row) -> str:
            return f"{r.wall:.2f} ({r.cpu:.2f})" if r.cpu is not None else f"{r.wall:.2f} (n/a)"

        est = "n/a"
        if one.cpu and two.cpu and two.own is not None:
            est = f"{one.cpu / max(two.cpu / 2, two.own):.2f}x"
        name = two.label.split(":")[0]
        print(
            f"| {name} | {one.work} | {cell(one)} | {cell(two)} | {one.wall / two.wall:.2f}x "
            f"| {est} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--repeats", "--repeat", type=int, default=3)
    ap.add_argument("--strategy", nargs="+", default=["mixed", "random"])
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--no-exhaustive", action="store_true")
    ap.add_argument("--only-exhaustive", action="store_true")
    ap.add_argument("--exhaustive-config", nargs="*", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    print(f"anchor: Coyote explores 10,000 Raft schedules in 105 s = {ANCHOR:.0f} schedules/s")
    print(f"cores: {os.cpu_count()}  load average at start: {load()}")
    pairs: list[tuple[Row, Row]] = []
    if not args.only_exhaustive:
        timed(runs=20, workers=2)  # start the fork server once (a one-time cost per process)
        for strategy in args.strategy:
            for runs in args.runs:
                work = f"{runs} runs"
                one = series(
                    f"{strategy}: 1 worker",
                    args.repeats,
                    runs_key,
                    work,
                    runs,
                    True,
                    workers=1,
                    strategy=strategy,
                )
                two = series(
                    f"{strategy}: 2 workers",
                    args.repeats,
                    runs_key,
                    work,
                    runs,
                    True,
                    workers=2,
                    strategy=strategy,
                )
                print(f"  2 workers / 1: {ratios(one, two)} (goal >= 1.7x)")
                pairs.append((one, two))
    if not args.no_exhaustive:
        config = {}
        for item in args.exhaustive_config:
            k, _, v = item.partition("=")
            config[k] = int(v) if v.lstrip("-").isdigit() else v
        kw = {"strategy": "bfs", "config": config or None}
        r = treadle.explore("raft", out=None, **kw)  # warm up: imports, caches
        work = f"{r.extra['states']} states"
        one = series(
            "exhaustive bfs: 1 worker", args.repeats, states_key, work, None, True, workers=1, **kw
        )
        two = series(
            "exhaustive bfs: 2 workers", args.repeats, states_key, work, None, True, workers=2, **kw
        )
        print(f"  2 workers / 1: {ratios(one, two)}; same states, transitions, depth: yes")
        pairs.append((one, two))
    if not args.no_dask and not args.only_exhaustive:
        dask_rows(args, pairs)
    table(pairs)
    print(f"load average at end: {load()}")


def dask_rows(args, pairs) -> None:
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
        timed(runs=20, executor=ex, workers=2)  # workers import treadle and the systems once
        for strategy in args.strategy:
            for runs in args.runs:
                one = next(
                    o
                    for o, t in pairs
                    if t.label == f"{strategy}: 2 workers" and o.work == f"{runs} runs"
                )
                two = series(
                    f"{strategy} on Dask: 2 workers",
                    args.repeats,
                    runs_key,
                    f"{runs} runs",
                    runs,
                    False,
                    executor=ex,
                    workers=2,
                    strategy=strategy,
                )
                pairs.append((one, two))


if __name__ == "__main__":
    main()
