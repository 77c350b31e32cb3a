"""z3 proofs of PBFT's quorum intersection (Castro & Liskov, OSDI 1999, section 4.5).

With n = 3f+1 replicas and quorums of 2f+1, any two quorums share at least f+1 replicas, so at
least one correct replica when at most f are faulty: that is what makes a prepared (or committed)
certificate visible to every later quorum, in particular to the 2f+1 VIEW-CHANGE messages of a
NEW-VIEW.

Three proofs:

1. concrete: for the configured n and f, two quorums are n boolean membership vectors; z3 searches
   for two quorums of the threshold size whose intersection holds no correct replica (at most f
   faulty); unsat = proved;
2. symbolic, for every f >= 1: integer arithmetic. |Q1 ∩ Q2| >= |Q1| + |Q2| - n; z3 shows
   2(2f+1) - (3f+1) >= f+1 has no counterexample over the integers;
3. a wrong threshold (2f by default): z3 produces two quorums that share only faulty replicas,
   which is printed as the counterexample.

``treadle prove pbft [--f F] [--threshold T]``: exit 0 when everything is proved; 1 with the
counterexample printed when the threshold is wrong.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import z3

from treadle.errors import one_line_parser


def concrete(f: int, threshold: int | None = None) -> dict[str, object] | None:
    """Search two quorums of ``threshold`` (default 2f+1) out of n = 3f+1, and at most f faulty
    replicas, whose intersection contains no correct replica. None = proved (unsat)."""
    n = 3 * f + 1
    q = 2 * f + 1 if threshold is None else threshold
    s = z3.Solver()
    a = [z3.Bool(f"q1_{i}") for i in range(n)]
    b = [z3.Bool(f"q2_{i}") for i in range(n)]
    faulty = [z3.Bool(f"faulty_{i}") for i in range(n)]
    s.add(z3.PbEq([(x, 1) for x in a], q))
    s.add(z3.PbEq([(x, 1) for x in b], q))
    s.add(z3.PbLe([(x, 1) for x in faulty], f))
    # every replica in both quorums is faulty
    for i in range(n):
        s.add(z3.Implies(z3.And(a[i], b[i]), faulty[i]))
    if s.check() != z3.sat:
        return None
    m = s.model()
    ids = [f"n{i + 1}" for i in range(n)]

    def members(vec: list[z3.BoolRef]) -> list[str]:
        return [ids[i] for i in range(n) if z3.is_true(m.eval(vec[i], model_completion=True))]

    return {
        "n": n,
        "f": f,
        "threshold": q,
        "quorum1": members(a),
        "quorum2": members(b),
        "faulty": members(faulty),
        "shared": sorted(set(members(a)) & set(members(b))),
    }


def symbolic(threshold_expr: str = "2f+1") -> dict[str, int] | None:
    """For all integers f >= 1, n = 3f+1: the smallest possible intersection of two quorums of
    size t(f) (= 2t - n when positive) is at least f+1. None = proved; else a counterexample f."""
    f, inter = z3.Ints("f inter")
    n = 3 * f + 1
    t = {"2f+1": 2 * f + 1, "2f": 2 * f}[threshold_expr]
    s = z3.Solver()
    s.add(f >= 1)
    # the intersection of two subsets of size t of an n-set can be as small as max(0, 2t - n)
    s.add(inter == z3.If(2 * t - n > 0, 2 * t - n, 0))
    s.add(inter < f + 1)  # negation of: at least f+1 shared, hence one correct
    if s.check() == z3.unsat:
        return None
    m = s.model()
    return {"f": m[f].as_long(), "smallest_intersection": m[inter].as_long()}


def prove(f: int, threshold: int | None = None) -> dict[str, Any]:
    """Every proof for ``f`` (and, with the default threshold, for all f and the wrong 2f), as
    data: ``{"verdict": "proved" | "counterexample", "n", "f", "threshold", "proofs": [...]}``,
    each proof ``{"name", "holds", "expected", "counterexample"}``. ``expected`` is False for the
    proofs that show why a wrong threshold fails."""
    n = 3 * f + 1
    q = 2 * f + 1 if threshold is None else threshold
    proofs: list[dict[str, Any]] = [
        {"name": f"concrete n={n} quorums of {q}", "kind": "concrete", "expected": True}
    ]
    proofs[0]["counterexample"] = concrete(f, q)
    if threshold is None:
        proofs.append(
            {
                "name": "for all f >= 1, quorums of 2f+1",
                "kind": "symbolic",
                "expected": True,
                "counterexample": symbolic("2f+1"),
            }
        )
        proofs.append(
            {
                "name": f"concrete n={n} quorums of 2f={2 * f} (wrong threshold)",
                "kind": "concrete",
                "expected": False,
                "counterexample": concrete(f, 2 * f),
            }
        )
        proofs.append(
            {
                "name": "for all f >= 1, quorums of 2f (wrong threshold)",
                "kind": "symbolic",
                "expected": False,
                "counterexample": symbolic("2f"),
            }
        )
    for pr in proofs:
        pr["holds"] = pr["counterexample"] is None
    ok = all(pr["holds"] for pr in proofs if pr["expected"])
    return {
        "verdict": "proved" if ok else "counterexample",
        "target": "pbft",
        "n": n,
        "f": f,
        "threshold": q,
        "proofs": proofs,
    }


def _shared_text(cex: dict[str, Any]) -> str:
    return f"share only {cex['shared']}, all faulty" if cex["shared"] else "share no replica"


def run(argv: list[str]) -> int:
    p = one_line_parser("treadle prove pbft", description=__doc__.split("\n\n")[0])
    p.add_argument("--f", type=int, default=1, help="faulty replicas tolerated (n = 3f+1)")
    p.add_argument(
        "--threshold",
        type=int,
        default=None,
        help="quorum size to check (default 2f+1; try 2f to see the counterexample)",
    )
    p.add_argument("--json", action="store_true", help="print one object (fields: see prove())")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    f = args.f
    if f < 1:
        print("error: --f must be >= 1", file=sys.stderr)
        return 2
    if args.threshold is not None and not 1 <= args.threshold <= 3 * f + 1:
        print(f"error: --threshold must be in [1, {3 * f + 1}] (n = 3f+1)", file=sys.stderr)
        return 2
    res = prove(f, args.threshold)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0 if res["verdict"] == "proved" else 1
    n, q = res["n"], res["threshold"]
    first, rest = res["proofs"][0], res["proofs"][1:]
    cex = first["counterexample"]
    if cex is None:
        print(
            f"proved: n={n}, f={f}: any two quorums of {q} replicas share at least f+1={f + 1}, "
            f"so at least one correct replica"
        )
    else:
        print(
            f"COUNTEREXAMPLE: n={n}, f={f}, quorums of {q}: Q1={cex['quorum1']} and "
            f"Q2={cex['quorum2']} {_shared_text(cex)} (faulty: {cex['faulty']}); no correct "
            "replica is in both"
        )
    if rest:
        sym, wrong, sym2 = (pr["counterexample"] for pr in rest)
        if sym is None:
            print(
                "proved: for all f >= 1, n = 3f+1: two quorums of 2f+1 share at least "
                "2(2f+1) - (3f+1) = f+1 replicas"
            )
        else:
            print(f"COUNTEREXAMPLE (symbolic): {sym}")
        if wrong is not None:
            print(
                f"as expected, the wrong threshold 2f={2 * f} fails: Q1={wrong['quorum1']} and "
                f"Q2={wrong['quorum2']} {_shared_text(wrong)}"
            )
        if sym2 is not None:
            print(
                f"as expected, symbolically the threshold 2f fails (z3's witness: f={sym2['f']}, "
                f"where two quorums may share only {sym2['smallest_intersection']} replica(s), "
                f"fewer than f+1)"
            )
    return 0 if res["verdict"] == "proved" else 1
