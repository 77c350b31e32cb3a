"""Did the search reach the survivors? For every surviving mutant of a ``bench/mutation.py``
result, the number of runs of the UNMUTATED system (seed 0, per strategy) in which the mutated
line executes. A survivor whose line runs in most runs was not missed for want of search: no
check saw the damage (or it is equivalent); one whose line never runs needs a state, an option or
a fault the exploration does not produce.

    nice -n 10 python bench/mutation_reach.py .treadle/mutation/RESULT.json --runs 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reach(system: str, strategy: str, runs: int, targets: set[str]) -> dict[tuple[str, int], int]:
    """(real path, line) -> runs that executed it, for lines of the files in ``targets``."""
    import treadle.parallel as parallel
    from treadle.runner import explore

    hits: dict[tuple[str, int], int] = {}
    current: set[tuple[str, int]] = set()
    real: dict[str, str] = {}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            current.add((real[frame.f_code.co_filename], frame.f_lineno))
        return local

    def calls(frame: Any, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        path = real.get(name)
        if path is None:
            path = real[name] = os.path.realpath(name)
        return local if path in targets else None

    original = parallel.run_seed

    def run_seed(*a: Any, **k: Any) -> Any:  # one run: trace it, count its lines once
        current.clear()
        sys.settrace(calls)
        try:
            return original(*a, **k)
        finally:
            sys.settrace(None)
            for key in current:
                hits[key] = hits.get(key, 0) + 1

    parallel.run_seed = run_seed  # type: ignore[assignment]
    try:
        explore(system, strategy=strategy, runs=runs, seed=0, out=None, shrink_time=0, workers=1)
    finally:
        parallel.run_seed = original  # type: ignore[assignment]
    return hits


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("result", help="a bench/mutation.py result (JSON)")
    p.add_argument("--runs", type=int, default=60)
    p.add_argument("--strategies", default="random,guided")
    a = p.parse_args()
    with open(a.result) as f:
        report = json.load(f)
    strategies = a.strategies.split(",")
    for system, entry in report["systems"].items():
        survivors = [
            r["mutant"]
            for r in entry.get("mutants", [])
            if any(v["outcome"] == "survived" for v in r["results"].values())
        ]
        if not survivors:
            continue
        paths = {m["file"]: os.path.realpath(os.path.join(REPO, m["file"])) for m in survivors}
        counts = {s: reach(system, s, a.runs, set(paths.values())) for s in strategies}
        for m in survivors:
            key = (paths[m["file"]], m["line"])
            marks = "  ".join(f"{s} {counts[s].get(key, 0):4d}" for s in strategies)
            print(f"{m['file']}:{m['line']} [{m['op']}]".ljust(48) + f"{marks}  of {a.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
