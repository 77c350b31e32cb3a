"""Mutation score of the reference implementations: how many generated one-line bugs does an
exploration with a fixed budget find?

For every system, every *mutation site* of ``impl/<system>/`` (the node code: not the binding in
``system.py``, not ``state()``/``describe()``, not the seeded-bug branches, not sometimes-
assertions) is listed with a stdlib-``ast`` mutator:

* ``boundary``   ``<`` <-> ``<=``, ``>`` <-> ``>=``
* ``negate-cmp`` ``==`` <-> ``!=``, ``<`` <-> ``>=``, ``>`` <-> ``<=``, ``in`` <-> ``not in``,
  ``is`` <-> ``is not``
* ``off-by-one`` an integer constant ``n`` -> ``n + 1`` / ``n - 1``
* ``arith``      ``+`` <-> ``-``
* ``constant``   ``True`` <-> ``False``
* ``bool-op``    ``and`` <-> ``or``
* ``negate``     an ``if``/``while``/conditional-expression test ``t`` -> ``not (t)``
* ``drop``       a one-line statement (a call, an attribute or item assignment, an augmented
  assignment, a return; not an assignment to a local name) -> ``pass``
* ``swap-args``  the first two positional arguments of a call swapped

A seeded sample (``--mutants`` per system, ``--seed``) of the sites that still compile is taken
in a deterministic order, so two invocations on the same source use the SAME mutants. Each mutant
is written into a scratch copy of ``impl/`` (under a temporary directory) and explored in a
subprocess that binds ``treadle.impl`` to the scratch copy before anything imports it, with every
strategy of ``--strategies`` in turn, a budget counted in runs (``--runs``, seed 0: the same runs
every time), no shrinking, and a wall-time safety cap per mutant (``--timeout``).

Outcomes per (mutant, strategy): ``killed`` (a violation: a property broke or node code raised),
``survived`` (no violation within the budget), ``timeout`` (the cap was hit: typically a mutant
that loops forever), ``unknown`` (a check could not decide), ``error`` (the harness itself failed,
e.g. a checker raised on the mutant's state). The unmutated system is explored first with the
same budget: it must be clean (a violation there is a false alarm and the system is skipped).

Usage (CPU is shared: run it niced and under the bench lock)::

    nice -n 10 flock /work/team/bench.lock python bench/mutation.py --mutants 20 --runs 60

Results go to ``.treadle/mutation/<systems>-<seed>.json`` (``--out``) and a table on stdout.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ("raft", "pbft", "kv", "eventstore", "mesh", "twophase")
#: the distance between the exploration seeds of --explore-seeds
SEED_STRIDE = 1_000_003
#: not node code: the binding, config keys, the TLA+ spec, the study page's describe() helpers
SKIP_FILES = {"system.py", "__init__.py", "config_keys.py", "spec.py", "describe.py"}
#: the faulty replica's code (PBFT's ByzantineReplica and its forgeries): a Byzantine replica may
#: do anything, so a mutant there is equivalent by definition (or "killed" only by raising)
SKIP_BYZANTINE = {"byzantine.py", "forgery.py"}
SKIP_FUNCTIONS = {"state", "describe", "__repr__", "__str__", "snapshot_view"}

BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
NEGATE = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True)
class Mutant:
    system: str
    file: str  # relative to the repository
    line: int
    col: int
    end_col: int
    op: str
    original: str  # the source segment
    replacement: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.op}:{self.replacement}"

    def describe(self) -> str:
        return f"{self.file}:{self.line} [{self.op}] {self.original}  ->  {self.replacement}"


# ---------------------------------------------------------------------------------------- sites
def _mentions_bug(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Attribute) and n.attr == "bug")
        or (isinstance(n, ast.Name) and n.id == "bug")
        for n in ast.walk(node)
    )


def _is_sometimes(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "sometimes"
    )


class _Sites(ast.NodeVisitor):
    """Every (node, operator, replacement node) of one module's function bodies."""

    def __init__(self) -> None:
        self.out: list[tuple[ast.AST, str, ast.AST]] = []
        self.depth = 0  # inside a function body

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in SKIP_FUNCTIONS:
            return
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        if _mentions_bug(node.test):
            # a seeded bug's branch: off in every run the benchmark makes; mutate only the else
            for stmt in node.orelse:
                self.visit(stmt)
            return
        if self.depth:
            self._add(node.test, "negate", ast.UnaryOp(ast.Not(), node.test))
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        if self.depth:
            self._add(node.test, "negate", ast.UnaryOp(ast.Not(), node.test))
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        if _mentions_bug(node.test):
            self.visit(node.orelse)
            return
        if self.depth:
            self._add(node.test, "negate", ast.UnaryOp(ast.Not(), node.test))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if _mentions_bug(node):
            return
        if self.depth:
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._add(node, "bool-op", ast.BoolOp(other, node.values))
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if self.depth and len(node.ops) == 1 and not _mentions_bug(node):
            op = type(node.ops[0])
            if op in BOUNDARY:
                self._add(
                    node, "boundary", ast.Compare(node.left, [BOUNDARY[op]()], node.comparators)
                )
            if op in NEGATE:
                self._add(
                    node, "negate-cmp", ast.Compare(node.left, [NEGATE[op]()], node.comparators)
                )
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if self.depth and isinstance(node.op, (ast.Add, ast.Sub)):
            other = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            self._add(node, "arith", ast.BinOp(node.left, other, node.right))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not self.depth:
            return
        v = node.value
        if isinstance(v, bool):
            self._add(node, "constant", ast.Constant(not v))
        elif isinstance(v, int):
            self._add(node, "off-by-one", ast.Constant(v + 1))
            if v > 0:
                self._add(node, "off-by-one", ast.Constant(v - 1))

    def visit_Call(self, node: ast.Call) -> None:
        if _is_sometimes(node):
            return
        if (
            self.depth
            and len(node.args) >= 2
            and not any(isinstance(a, ast.Starred) for a in node.args[:2])
        ):
            args = [node.args[1], node.args[0], *node.args[2:]]
            self._add(node, "swap-args", ast.Call(node.func, args, node.keywords))
        self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> None:
        if self.depth and isinstance(node, ast.stmt) and not isinstance(node, ast.Pass):
            simple = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Delete)
            # not an assignment to a plain local name (that only raises NameError further on)
            local = isinstance(node, (ast.Assign, ast.AnnAssign)) and all(
                isinstance(t, ast.Name)
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            if (
                isinstance(node, simple)
                and not local
                and not (
                    isinstance(node, ast.Expr)
                    and (isinstance(node.value, ast.Constant) or _is_sometimes(node.value))
                )
            ):
                self._add(node, "drop", ast.Pass())
        super().generic_visit(node)

    def _add(self, node: ast.AST, op: str, new: ast.AST) -> None:
        if getattr(node, "lineno", None) == getattr(node, "end_lineno", -1):
            self.out.append((node, op, new))


def mutation_sites(system: str) -> list[Mutant]:
    """Every one-line mutant of ``impl/<system>/`` that compiles, in a fixed order."""
    folder = os.path.join(REPO, "impl", system)
    out: list[Mutant] = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py") or name in SKIP_FILES or name in SKIP_BYZANTINE:
            continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        lines = source.splitlines(keepends=True)
        tree = ast.parse(source)
        visitor = _Sites()
        visitor.visit(tree)
        rel = os.path.relpath(path, REPO)
        seen: set[tuple[int, int, str]] = set()
        for node, op, new in visitor.out:
            line = lines[node.lineno - 1]  # type: ignore[attr-defined]
            # ast columns are UTF-8 byte offsets
            raw = line.encode()
            seg = raw[node.col_offset : node.end_col_offset].decode()  # type: ignore[attr-defined]
            text = ast.unparse(new)
            if op == "negate":
                text = f"not ({seg})"
            if text == seg or (node.lineno, node.col_offset, text) in seen:  # type: ignore[attr-defined]
                continue
            seen.add((node.lineno, node.col_offset, text))  # type: ignore[attr-defined]
            mutated = (
                raw[: node.col_offset].decode() + text + raw[node.end_col_offset :].decode()  # type: ignore[attr-defined]
            )
            candidate = "".join(lines[: node.lineno - 1]) + mutated + "".join(lines[node.lineno :])  # type: ignore[attr-defined]
            try:
                compile(candidate, path, "exec")
            except SyntaxError:
                continue
            out.append(
                Mutant(
                    system,
                    rel,
                    node.lineno,  # type: ignore[attr-defined]
                    node.col_offset,  # type: ignore[attr-defined]
                    node.end_col_offset,  # type: ignore[attr-defined]
                    op,
                    seg,
                    text,
                )
            )
    return out


def sample(system: str, k: int, seed: int) -> list[Mutant]:
    sites = mutation_sites(system)
    rng = random.Random(f"{seed}:{system}")
    picked = rng.sample(sites, min(k, len(sites)))
    return sorted(picked, key=lambda m: (m.file, m.line, m.col, m.op, m.replacement))


def apply(mutant: Mutant, scratch: str) -> None:
    """Write ``impl/`` into ``scratch`` with the one mutated line."""
    dst = os.path.join(scratch, "impl")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(os.path.join(REPO, "impl"), dst, ignore=shutil.ignore_patterns("__pycache__"))
    path = os.path.join(scratch, mutant.file)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    raw = lines[mutant.line - 1].encode()
    lines[mutant.line - 1] = (
        raw[: mutant.col].decode() + mutant.replacement + raw[mutant.end_col :].decode()
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))


# ---------------------------------------------------------------------------------------- running
def _bind_impl(folder: str) -> None:
    """Make ``treadle.impl`` the package in ``folder`` (the mutated copy): an installed treadle maps
    the repository's ``impl/`` there, so a path entry alone could not shadow it."""
    import importlib.util

    import treadle

    spec = importlib.util.spec_from_file_location(
        "treadle.impl", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["treadle.impl"] = module
    spec.loader.exec_module(module)
    treadle.impl = module  # type: ignore[attr-defined]


def _worker(system: str, strategies: list[str], runs: int, seed: int) -> None:
    """In the subprocess: explore with each strategy, one JSON line each, as soon as known."""
    impl = os.environ.get("TREADLE_MUTANT_IMPL")
    if impl:
        _bind_impl(impl)
    from treadle.runner import explore

    for strategy in strategies:
        t0 = time.monotonic()
        try:
            r = explore(
                system,
                strategy=strategy,
                runs=runs,
                seed=seed,
                out=None,
                shrink_time=0,
                workers=1,
            )
            row = {
                "strategy": strategy,
                "outcome": {"violation": "killed", "ok": "survived"}.get(r.verdict, r.verdict),
                "runs": r.runs,
                "property": r.violation.property if r.violation else None,
                "seconds": round(time.monotonic() - t0, 3),
                "never_reached": r.to_json()["sometimes"]["never_reached"],
            }
        except Exception as e:  # the harness failed on this mutant (a checker raised, ...)
            row = {
                "strategy": strategy,
                "outcome": "error",
                "runs": None,
                "property": f"{type(e).__name__}: {str(e)[:200]}",
                "seconds": round(time.monotonic() - t0, 3),
            }
        print(json.dumps(row), flush=True)


def run_mutant(
    mutant: Mutant | None, system: str, strategies: list[str], runs: int, seed: int, timeout: float
) -> dict[str, dict[str, Any]]:
    """Explore one mutant (None: the unmutated system) in a subprocess."""
    scratch = tempfile.mkdtemp(prefix="treadle-mutant-")
    try:
        env = dict(os.environ)
        if mutant is not None:
            apply(mutant, scratch)
            env["TREADLE_MUTANT_IMPL"] = os.path.join(scratch, "impl")
        else:
            env.pop("TREADLE_MUTANT_IMPL", None)
        env["PYTHONPATH"] = REPO
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            json.dumps({"system": system, "strategies": strategies, "runs": runs, "seed": seed}),
        ]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=scratch
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        rows = {}
        for line in out.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            rows[row["strategy"]] = row
        for s in strategies:
            if s not in rows:
                timed_out = proc.returncode is not None and proc.returncode < 0
                rows[s] = {
                    "strategy": s,
                    "outcome": "timeout" if timed_out else "error",
                    "runs": None,
                    "property": None
                    if timed_out
                    else (err.strip().splitlines() or ["?"])[-1][:200],
                    "seconds": None,
                }
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def flagged(result: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The sometimes-assertions the unmutated system reached and the mutant never did: a
    survivor whose checks went vacuous (Antithesis counts a sometimes never hit as a failure)."""
    if result["outcome"] != "survived":
        return []
    before = set(baseline.get("never_reached") or [])
    return sorted(set(result.get("never_reached") or []) - before)


def score(
    rows: list[dict[str, Any]], strategy: str, baseline: dict[str, Any] | None = None
) -> dict[str, Any]:
    outs = [r["results"][strategy] for r in rows]
    counts = {
        k: sum(1 for o in outs if o["outcome"] == k)
        for k in ("killed", "survived", "timeout", "unknown", "error")
    }
    kill_runs = [o["runs"] for o in outs if o["outcome"] == "killed"]
    kill_secs = [o["seconds"] for o in outs if o["outcome"] == "killed"]
    n = len(outs)
    vacuous = sum(1 for o in outs if baseline is not None and flagged(o, baseline))
    return {
        **counts,
        # survivors that left a sometimes-assertion unreached (counted among survived)
        "survived_flagged_by_sometimes": vacuous,
        "mutants": n,
        "score": round(counts["killed"] / n, 3) if n else None,
        "median_runs_to_kill": statistics.median(kill_runs) if kill_runs else None,
        "median_seconds_to_kill": round(statistics.median(kill_secs), 3) if kill_secs else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--mutants", type=int, default=20, help="mutants per system (seeded sample)")
    p.add_argument("--runs", type=int, default=60, help="exploration budget per mutant, in runs")
    p.add_argument("--strategies", default="random,guided")
    p.add_argument("--seed", type=int, default=0, help="which mutants (the sample's seed)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-time cap per mutant, s")
    p.add_argument("--list", action="store_true", help="list the sampled mutants and stop")
    p.add_argument("--out", help="JSON results (default .treadle/mutation/...)")
    p.add_argument("--rescore", metavar="JSON", help="print the scores of a saved result file")
    p.add_argument(
        "--explore-seeds",
        type=int,
        default=1,
        help="explore every mutant with K exploration seeds (0, SEED_STRIDE, ...): a mutant's kill "
        "rate per strategy is the share of seeds that killed it",
    )
    p.add_argument(
        "--select",
        metavar="JSON",
        help="re-run only the mutants of a saved result that some strategy did not kill within "
        "--screen runs (the hard ones: where the strategies can differ)",
    )
    p.add_argument("--screen", type=int, default=16, help="with --select: runs that count as easy")
    p.add_argument(
        "--killable",
        action="store_true",
        help="with --select: only the hard mutants that some strategy killed",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rescore:
        return rescore(args.rescore)
    if args.worker:
        w = json.loads(args.worker)
        _worker(w["system"], w["strategies"], w["runs"], w["seed"])
        return 0
    systems = [s for s in args.systems.split(",") if s]
    strategies = [s for s in args.strategies.split(",") if s]
    report: dict[str, Any] = {
        "mutants_per_system": args.mutants,
        "runs": args.runs,
        "strategies": strategies,
        "seed": args.seed,
        "systems": {},
    }
    out = args.out or os.path.join(
        REPO, ".treadle", "mutation", f"{'-'.join(systems)}-seed{args.seed}-runs{args.runs}.json"
    )
    selected = _hard_mutants(args.select, args.screen, args.killable) if args.select else None
    # exploration seeds far apart: explore(seed=k) runs seeds k, k+1, ..., so neighbours overlap
    seeds = [k * SEED_STRIDE for k in range(max(1, args.explore_seeds))]
    report["explore_seeds"] = len(seeds)
    for system in systems:
        mutants = sample(system, args.mutants, args.seed)
        if selected is not None:
            mutants = [m for m in mutants if m.id in selected]
        n_sites = len(mutation_sites(system))
        if args.list:
            print(f"{system}: {len(mutants)} of {n_sites} sites")
            for m in mutants:
                print("  " + m.describe())
            continue
        base = run_mutant(None, system, strategies, args.runs, 0, args.timeout)
        entry: dict[str, Any] = {"sites": n_sites, "baseline": base, "mutants": []}
        report["systems"][system] = entry
        if any(b["outcome"] != "survived" for b in base.values()):
            print(f"{system}: the UNMUTATED system is not clean: {base} (skipped)", flush=True)
            continue
        for m in mutants:
            per_seed = [
                run_mutant(m, system, strategies, args.runs, k, args.timeout) for k in seeds
            ]
            res = per_seed[0]
            row: dict[str, Any] = {"mutant": asdict(m), "id": m.id, "results": res}
            if len(seeds) > 1:
                row["by_seed"] = per_seed
                row["kill_rate"] = {
                    s: sum(r[s]["outcome"] == "killed" for r in per_seed) / len(seeds)
                    for s in strategies
                }
            entry["mutants"].append(row)
            marks = " ".join(
                f"{s}=" + ",".join(f"{r[s]['outcome'][0]}{r[s]['runs']}" for r in per_seed)
                for s in strategies
            )
            print(f"  {m.describe()}   {marks}", flush=True)
        entry["score"] = {s: score(entry["mutants"], s, base[s]) for s in strategies}
        if len(seeds) > 1:
            for s in strategies:
                entry["score"][s]["kills_over_seeds"] = sum(
                    r["kill_rate"][s] for r in entry["mutants"]
                ) * len(seeds)
        entry["survivors"] = {
            s: [r["mutant"] for r in entry["mutants"] if r["results"][s]["outcome"] == "survived"]
            for s in strategies
        }
        line = "; ".join(
            f"{s}: {v['killed']}/{v['mutants']} killed, {v['survived']} survived, "
            f"{v['timeout']} timeout, {v['error']} error, median runs to kill "
            f"{v['median_runs_to_kill']}"
            for s, v in entry["score"].items()
        )
        print(
            f"{system} ({n_sites} sites, {len(mutants)} sampled, {args.runs} runs): {line}",
            flush=True,
        )
        _save(report, out)  # after every system: a long run stopped half-way keeps its results
    if not args.list:
        print(f"results: {out}")
    return 0


def _hard_mutants(path: str, screen: int, killable: bool = False) -> set[str]:
    """The ids of a saved result's mutants that some strategy did not kill within ``screen``
    runs (of exploration seed 0); ``killable``: of those, the ones some strategy killed."""
    with open(path) as f:
        report = json.load(f)
    out = set()
    for entry in report["systems"].values():
        for r in entry.get("mutants", []):
            if any(
                v["outcome"] != "killed" or (v["runs"] or 0) > screen for v in r["results"].values()
            ) and (not killable or any(v["outcome"] == "killed" for v in r["results"].values())):
                out.add(r["id"])
    return out


def rescore(path: str) -> int:
    with open(path) as f:
        report = json.load(f)
    for system, entry in report["systems"].items():
        if not entry.get("mutants"):
            continue
        for s in report["strategies"]:
            v = score(entry["mutants"], s, entry["baseline"][s])
            print(
                f"{system:10s} {s:7s} killed {v['killed']:2d}/{v['mutants']}  survived "
                f"{v['survived']:2d} (of which sometimes-flagged {v['survived_flagged_by_sometimes']})"
                f"  timeout {v['timeout']}  error {v['error']}  median runs to kill "
                f"{v['median_runs_to_kill']}  median s to kill {v['median_seconds_to_kill']}"
            )
        for r in entry["mutants"]:
            res = r["results"]
            marks = " ".join(f"{s}={res[s]['outcome']}" for s in report["strategies"])
            flags = flagged(
                res[report["strategies"][0]], entry["baseline"][report["strategies"][0]]
            )
            m = r["mutant"]
            print(
                f"    {m['file']}:{m['line']} [{m['op']}] {m['original']} -> {m['replacement']}"
                f"  {marks}" + (f"  never reached: {flags}" if flags else "")
            )
    return 0


def _save(report: dict[str, Any], out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
