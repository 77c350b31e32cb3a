"""Shrinker benchmark: per seeded bug, the shrunk counterexample beside the shortest one known.

    flock /work/team/bench.lock python bench/shrink_bench.py             # every row
    flock /work/team/bench.lock python bench/shrink_bench.py --only raft  # one system
    python bench/shrink_bench.py --markdown                               # the table for docs

Two kinds of rows:

* ``small``: a small configuration (the system's exhaustive one, plus the overrides listed in
  SMALL) where BFS finds the bug. Shortest known = BFS's counterexample (fewest steps). The
  shrinker's input is the first counterexample random exploration (mixed strategy, seeds from
  0) finds in the *same* configuration, so the two are comparable step for step.
* ``default``: every counterexample saved under ``histories/`` (the systems' default
  configurations: timed network, several clients, faults). Its raw run is re-made from the
  saved seed and shrunk with the default budget. Shortest known = the hand-derived scenario of
  HAND_DERIVED where there is one (with the doc that derives it), else none: BFS cannot reach
  these configurations.

Steps are the trace's steps (the run before any settling); "all" adds the fault-free settling
and audit steps a reader also walks through. Client ops count invocations in the history.
Budget: the shrinker's default (candidate runs, not seconds), so every figure but the seconds
is the same on every machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from treadle.exhaustive import explore_exhaustive, split_config
from treadle.runner import load_and_check, replay_trace, run_once
from treadle.shrink import DEFAULT_RUNS, shrink, shrink_report
from treadle.shrink.core import client_ops
from treadle.strategies import Recorder, make_strategy
from treadle.system import System, get_system
from treadle.trace import Trace

ROOT = Path(__file__).resolve().parents[1]

#: (system, bug, overrides of the exhaustive config) where BFS finds the bug
SMALL: list[tuple[str, str, dict[str, Any]]] = [
    ("example", "stale-read", {}),
    ("twophase", "commit-without-all-prepared", {}),
    ("kv", "sloppy-claims-linearizable", {}),
    ("eventstore", "no-fsync", {}),
    ("eventstore", "snapshot-off-by-one", {}),
    ("eventstore", "replay-from-zero", {}),
    ("eventstore", "non-atomic-version-check", {"clients": 2}),
    ("mesh", "seed-breaker", {}),
    ("mesh", "unlimited-half-open", {}),
    ("mesh", "open-forever", {}),
    ("raft", "no-persist-vote", {"max_crashes": 1}),
    ("raft", "stale-ae-truncate", {"ops_per_client": 1}),
]

#: small configurations BFS cannot finish, with a hand-derived shortest scenario instead:
#: (system, bug, overrides, (steps, client ops, where it is derived))
SMALL_HAND: list[tuple[str, str, dict[str, Any], tuple[int, int, str]]] = [
    ("raft", "figure8", {"ops_per_client": 2}, (18, 1, "docs/raft.md, Figure 8 on three servers")),
]

#: (system, bug) -> (steps, client ops, where the scenario is derived), default configurations
HAND_DERIVED: dict[tuple[str, str], tuple[int, int, str]] = {}


def first_random_counterexample(
    system: System, bug: str, cfg: dict[str, Any], max_runs: int = 5000
) -> Trace | None:
    strat = make_strategy("mixed")
    for seed in range(max_runs):
        strat.begin_run(seed, cfg, system.steps)
        rec = Recorder(strat)
        r = run_once(system, cfg, bug, rec, system.steps)
        if r.violation is not None:
            return Trace.of_run(
                system.name,
                system.version,
                bug,
                cfg,
                seed,
                "mixed",
                r,
                rec.choices,
                extra={"strategy_run": strat.describe_run()},
            )
    return None


def raw_of_saved(path: Path) -> tuple[System, Trace]:
    """The unshrunk run a saved trace came from, re-made from its seed and strategy."""
    system, t = load_and_check(str(path))
    if t.strategy in ("dfs", "bfs", "dpor", "") or t.violation is None:
        return system, t
    strat = make_strategy(t.strategy)
    strat.begin_run(t.seed, t.config, system.steps)
    rec = Recorder(strat)
    r = run_once(system, t.config, t.bug, rec, system.steps)
    if r.violation is None or r.violation.property != t.violation["property"]:
        return system, t  # recorded under other flags: shrink the saved trace itself
    return system, Trace.of_run(
        system.name,
        system.version,
        t.bug,
        t.config,
        t.seed,
        t.strategy,
        r,
        rec.choices,
        extra=t.extra,
    )


def measure(system: System, trace: Trace) -> dict[str, Any]:
    """Sizes of a trace: steps, all steps (with settling), choices, client ops."""
    r = replay_trace(system, trace)
    return {
        "steps": trace.steps,
        "all": r.world.step_count,
        "choices": len(trace.choices),
        "ops": client_ops(r.history),
    }


def shrink_row(system: System, raw: Trace, runs: int) -> dict[str, Any]:
    t = time.perf_counter()
    small = shrink(system, raw, runs=runs)
    dt = time.perf_counter() - t
    rep = shrink_report(small)
    return {
        "from": measure(system, raw),
        "to": measure(system, small),
        "runs": rep["runs"],
        "stopped": rep["stopped"],
        "seconds": round(dt, 2),
        "trace": small,
    }


def ratio(a: int, b: int | None) -> float | None:
    if not b:
        return None
    return round(a / b, 2)


def rows_small_hand(only: str | None, runs: int) -> list[dict[str, Any]]:
    out = []
    for name, bug, over, (steps, ops, where) in SMALL_HAND:
        if only and name != only:
            continue
        system = get_system(name)
        cfg, _ = split_config(system, over)
        row: dict[str, Any] = {"system": name, "bug": bug, "config": "small", "over": over}
        row["shortest"] = {"steps": steps, "ops": ops, "by": f"hand-derived ({where})"}
        raw = first_random_counterexample(system, bug, cfg, 20_000)
        if raw is None:
            row["note"] = "random exploration found no counterexample in 20000 runs"
        else:
            row.update(shrink_row(system, raw, runs))
        out.append(row)
        _print(row)
    return out


def rows_small(only: str | None, runs: int) -> list[dict[str, Any]]:
    out = []
    for name, bug, over in SMALL:
        if only and name != only:
            continue
        system = get_system(name)
        t = time.perf_counter()
        r = explore_exhaustive(
            system, bug=bug, strategy="bfs", config=over, time_limit=120, out=None
        )
        bfs_s = time.perf_counter() - t
        cfg, _ = split_config(system, over)
        row: dict[str, Any] = {"system": name, "bug": bug, "config": "small", "over": over}
        if r.verdict != "violation":
            row["note"] = f"BFS: {r.extra.get('summary')}"
            out.append(row)
            continue
        with tempfile.TemporaryDirectory() as d:
            r = explore_exhaustive(
                system, bug=bug, strategy="bfs", config=over, time_limit=120, out=d
            )
            assert r.trace is not None
            shortest = load_and_check(r.trace)[1]
        row["shortest"] = {**measure(system, shortest), "by": f"BFS ({bfs_s:.1f} s)"}
        raw = first_random_counterexample(system, bug, cfg)
        if raw is None:
            row["note"] = "random exploration found no counterexample in 5000 runs"
            out.append(row)
            continue
        row.update(shrink_row(system, raw, runs))
        out.append(row)
        _print(row)
    return out


def rows_default(
    only: str | None, runs: int, save: bool, skip: tuple[str, ...]
) -> list[dict[str, Any]]:
    out = []
    for path in sorted((ROOT / "histories").rglob("*.json")):
        name = path.parent.name
        if (only and name != only) or name in skip:
            continue
        system, raw = raw_of_saved(path)
        if raw.strategy in ("dfs", "bfs", "dpor"):
            continue  # an exhaustive counterexample: shortest already
        row: dict[str, Any] = {
            "system": name,
            "bug": raw.bug,
            "config": "default",
            "file": path.name,
        }
        known = HAND_DERIVED.get((name, str(raw.bug)))
        if known:
            row["shortest"] = {"steps": known[0], "ops": known[1], "by": known[2]}
        row.update(shrink_row(system, raw, runs))
        if save:  # regenerate the committed counterexample with this shrinker
            # the smaller of the raw run's shrink and the saved trace's, shrunk again
            saved = load_and_check(str(path))[1]
            again = shrink_row(system, saved, runs)
            if _size(again["to"]) < _size(row["to"]):
                row["saved_from"] = "the saved trace, shrunk again"
                row["saved"] = {k: again[k] for k in ("to", "runs", "stopped", "seconds")}
                again["trace"].save(str(path))
            else:
                row["trace"].save(str(path))
        out.append(row)
        _print(row)
    return out


def _size(m: dict[str, Any]) -> tuple[int, int, int, int]:
    """The shrinker's order: all steps, client operations, steps, choices."""
    return (m["all"], m["ops"], m["steps"], m["choices"])


def _print(row: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in row.items() if k != "trace"}), flush=True)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| system | bug | config | original steps / choices / ops | shrunk steps (all) / "
        "choices / ops | shortest known steps / ops | ratio steps / ops | candidate runs | s |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for r in rows:
        if "to" not in r:
            lines.append(
                f"| {r['system']} | {r['bug']} | {r['config']} | {r.get('note', '')} |||||"
            )
            continue
        f, t, s = r["from"], r["to"], r.get("shortest")
        known = f"{s['steps']} / {s['ops']}" if s else "none known"
        rs = f"{ratio(t['steps'], s['steps'])} / {ratio(t['ops'], s['ops']) or '-'}" if s else "-"
        stop = "" if r["stopped"] == "fixpoint" else f" ({r['stopped']})"
        lines.append(
            f"| {r['system']} | {r['bug']} | {r['config']} | {f['steps']} / {f['choices']} / "
            f"{f['ops']} | {t['steps']} ({t['all']}) / {t['choices']} / {t['ops']} | {known} | "
            f"{rs} | {r['runs']}{stop} | {r['seconds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="one system")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="shrink budget per trace")
    ap.add_argument("--part", choices=["small", "default", "both"], default="both")
    ap.add_argument("--json", metavar="OUT", help="also write every row as JSON")
    ap.add_argument(
        "--save", action="store_true", help="overwrite histories/ with the shrunk default rows"
    )
    ap.add_argument("--skip", action="append", default=[], help="leave out a system")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    if args.part in ("small", "both"):
        rows += rows_small(args.only, args.runs)
        rows += rows_small_hand(args.only, args.runs)
    if args.part in ("default", "both"):
        rows += rows_default(args.only, args.runs, args.save, tuple(args.skip))
    print()
    print(markdown(rows))
    within = [r for r in rows if r.get("shortest") and "to" in r]
    over = [
        r
        for r in within
        if r["to"]["steps"] > 2 * r["shortest"]["steps"]
        or r["to"]["ops"] > 2 * r["shortest"]["ops"]
    ]
    if within:
        med = statistics.median(r["to"]["steps"] / r["shortest"]["steps"] for r in within)
        print(
            f"\n{len(within) - len(over)}/{len(within)} rows with a shortest known are within 2x "
            f"(median step ratio {med:.2f}); over 2x: "
            + (", ".join(f"{r['system']}/{r['bug']}" for r in over) or "none")
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps([{k: v for k, v in r.items() if k != "trace"} for r in rows], indent=1)
        )


if __name__ == "__main__":
    sys.exit(main())
