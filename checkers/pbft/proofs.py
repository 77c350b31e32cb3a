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

import argparse

import z3


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


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="treadle prove pbft", description=__doc__.split("\n\n")[0])
    p.add_argument("--f", type=int, default=1, help="faulty replicas tolerated (n = 3f+1)")
    p.add_argument(
        "--threshold",
        type=int,
        default=None,
        help="quorum size to check (default 2f+1; try 2f to see the counterexample)",
    )
    args = p.parse_args(argv)
    f = args.f
    if f < 1:
        print("error: f must be >= 1")
        return 2
    n = 3 * f + 1
    q = 2 * f + 1 if args.threshold is None else args.threshold
    status = 0
    cex = concrete(f, q)
    if cex is None:
        print(
            f"proved: n={n}, f={f}: any two quorums of {q} replicas share at least f+1={f + 1}, "
            f"so at least one correct replica"
        )
    else:
        status = 1
        shared = f"share only {cex['shared']}, all faulty" if cex["shared"] else "share no replica"
        print(
            f"COUNTEREXAMPLE: n={n}, f={f}, quorums of {q}: Q1={cex['quorum1']} and "
            f"Q2={cex['quorum2']} {shared} (faulty: {cex['faulty']}); no correct replica is in both"
        )
    if args.threshold is None:
        sym = symbolic("2f+1")
        if sym is None:
            print(
                "proved: for all f >= 1, n = 3f+1: two quorums of 2f+1 share at least "
                "2(2f+1) - (3f+1) = f+1 replicas"
            )
        else:
            status = 1
            print(f"COUNTEREXAMPLE (symbolic): {sym}")
        wrong = concrete(f, 2 * f)
        if wrong is not None:
            print(
                f"as expected, the wrong threshold 2f={2 * f} fails: Q1={wrong['quorum1']} and "
                f"Q2={wrong['quorum2']} "
                + (
                    f"share only {wrong['shared']}, all faulty"
                    if wrong["shared"]
                    else "share no replica"
                )
            )
        sym2 = symbolic("2f")
        if sym2 is not None:
            print(
                f"as expected, symbolically the threshold 2f fails (z3's witness: f={sym2['f']}, "
                f"where two quorums may share only {sym2['smallest_intersection']} replica(s), "
                f"fewer than f+1)"
            )
    return status
