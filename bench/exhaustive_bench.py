"""Exhaustive exploration benchmark: state counts, distinct states/s, DPOR reduction.

Anchor (Stateright's published counts): two-phase commit with 5 resource managers has 8,832
unique states, 665 with symmetry reduction. Those are the states of Lamport's TLA+ TwoPhase
spec; treadle's ``twophase`` system runs the same protocol as message-passing nodes (messages
are consumed, timers stand for spontaneous actions), so its concrete states are more; the
abstraction map below projects each of its states onto the TLA+ state and counts the image.

    python bench/exhaustive_bench.py [--rms 5] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from typing import Any

from treadle.impl.twophase.spec import abstraction, tla_twophase

from treadle.exhaustive import count_traces, dpor, make_explorer, search
from treadle.system import get_system
from treadle.world import World

STATERIGHT = {"states": 8832, "symmetric": 665}


def twophase_counts(rms: int) -> dict[str, Any]:
    system = get_system("twophase")
    images: dict[bool, set[Any]] = {False: set(), True: set()}

    def collect(world: World) -> None:
        images[False].add(abstraction(world, False))
        images[True].add(abstraction(world, True))

    probe = dataclasses.replace(system, invariants=[*system.invariants, collect])
    probe.checks_read_history = False  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for sym in (False, True):
        ex = make_explorer(probe, config={"rms": rms}, symmetry=sym)
        for w, _, _ in ex.roots():
            collect(w)
        t0 = time.perf_counter()
        search(ex, "bfs")
        dt = time.perf_counter() - t0
        key = "symmetric" if sym else "states"
        out[key] = ex.stats.states
        out[key + "_per_s"] = ex.stats.states / dt
        out[key + "_s"] = dt
        out["paths"] = ex.stats.paths
    out["abstract"] = len(images[False])
    out["abstract_symmetric"] = len(images[True])
    return out


def dpor_counts(system_name: str, config: dict[str, Any], traces: bool) -> dict[str, Any]:
    system = get_system(system_name)
    ex = make_explorer(system, config=config, symmetry=False)
    t0 = time.perf_counter()
    dpor(ex)
    dt = time.perf_counter() - t0
    ex2 = make_explorer(system, config=config, symmetry=False)
    search(ex2, "dfs")
    row = {
        "dpor_executions": ex.stats.executions,
        "sleep_blocked": ex.stats.blocked,
        "dpor_s": dt,
        "dfs_executions": ex2.stats.paths,
        "complete": ex.stats.complete and ex2.stats.complete,
    }
    if traces:
        ex3 = make_explorer(system, config=config, symmetry=False)
        row["tree_executions"], row["mazurkiewicz_traces"] = count_traces(ex3)
    return row


def copy_costs(rms: int, n: int = 2000) -> dict[str, float]:
    """Microseconds per copy of a twophase world a few steps in: copy.deepcopy, the full
    specialised copy, and the copy-on-write copy (only the stepped node)."""
    import copy

    from treadle.exhaustive import clone_world
    from treadle.strategies import Replay

    ex = make_explorer(get_system("twophase"), config={"rms": rms}, symmetry=False)
    w, _, _ = next(ex.roots())
    w.chooser = Replay([1, 0, 2, 0])
    for _ in range(4):
        w.step()
    out = {}
    memo_keep = {id(w.config): w.config, id(w.factories): w.factories}
    for label, fn in (
        ("deepcopy", lambda: copy.deepcopy(w, dict(memo_keep))),
        ("full", lambda: clone_world(w)),
        ("copy-on-write", lambda: clone_world(w, "rm1")),
    ):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out[label] = (time.perf_counter() - t0) / n * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rms", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="rms=3, one repeat")
    args = ap.parse_args()
    if args.quick:
        args.rms, args.repeat = 3, 1
    n = args.rms
    print(f"two-phase commit, {n} resource managers")
    ref, ref_sym = tla_twophase(n), tla_twophase(n, symmetric=True)
    ref_sort = tla_twophase(n, symmetric="sort-by-rm-state")
    print(
        f"  TLA+ TwoPhase spec (independent BFS here): {ref} states, {ref_sym} orbits under "
        f"RM permutations (exact), {ref_sort} with Stateright's sort-by-RM-state representative"
    )
    if n == 5:
        print(
            f"  Stateright (anchor):                       {STATERIGHT['states']} states, "
            f"{STATERIGHT['symmetric']} with symmetry"
        )
    runs = [twophase_counts(n) for _ in range(args.repeat)]
    r = runs[0]
    med = {k: statistics.median(x[k] for x in runs) for k in ("states_per_s", "symmetric_per_s")}
    print(
        f"  treadle twophase, abstracted to TLA+ states: {r['abstract']} states, "
        f"{r['abstract_symmetric']} with symmetry"
    )
    print(
        f"  treadle twophase, concrete (messages consumed, timers): {r['states']} states "
        f"({med['states_per_s']:.0f} states/s), {r['symmetric']} with symmetry "
        f"({med['symmetric_per_s']:.0f} states/s); median of {args.repeat}"
    )
    print(f"  plain DFS executions (maximal paths of the state graph): {r['paths']}")
    costs = copy_costs(n)
    print("  world copy per transition: " + ", ".join(f"{k} {v:.0f} us" for k, v in costs.items()))
    print()
    print("DPOR (source sets + sleep sets) against plain DFS, same config")
    print(f"  {'config':28} {'dfs executions':>16} {'dpor':>8} {'traces':>8} {'reduction':>10}")
    rows = []
    for k in range(1, n + 1):
        rows.append((f"twophase rms={k}", "twophase", {"rms": k}, k <= 3))
    for label, name, cfg, traces in rows:
        d = dpor_counts(name, cfg, traces)
        tr = d.get("mazurkiewicz_traces", "-")
        red = d["dfs_executions"] / d["dpor_executions"] if d["dfs_executions"] else float("nan")
        print(
            f"  {label:28} {d['dfs_executions']:>16} {d['dpor_executions']:>8} {tr!s:>8} "
            f"{red:>10.1f}  ({d['dpor_s']:.2f} s, {d['sleep_blocked']} sleep-blocked)"
        )


if __name__ == "__main__":
    main()
