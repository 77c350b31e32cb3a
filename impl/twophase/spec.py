"""Lamport's TLA+ TwoPhase spec as a pure state machine, and the map from treadle states to it.

Used to check that ``impl/twophase`` runs the same protocol as Stateright's 2PC example (whose
published counts, 8,832 states for 5 RMs, are the states of this spec): the image of treadle's
reachable states under :func:`abstraction` must be exactly the spec's reachable states.
"""

from __future__ import annotations

from typing import Any

from treadle.impl.twophase.node import TM


def tla_twophase(n: int, symmetric: bool | str = False) -> int:
    """BFS over Lamport's TwoPhase spec (the model Stateright's 2PC example implements)."""
    init = (("working",) * n, "init", frozenset(), frozenset())

    def canon(s: Any) -> Any:
        if not symmetric:
            return s
        rms, tm, prepared, msgs = s
        if symmetric == "sort-by-rm-state":
            # Stateright's representative: RMs sorted by their own state only (stable), then
            # tm_prepared and messages rewritten by that plan; RMs tied on their state keep
            # their index order, so some symmetric states keep distinct representatives
            plan = sorted(range(n), key=lambda i: rms[i])
            new = {old: k for k, old in enumerate(plan)}
            return (
                tuple(rms[i] for i in plan),
                tm,
                frozenset(new[i] for i in prepared),
                frozenset(m if m[0] != "Prepared" else ("Prepared", new[m[1]]) for m in msgs),
            )
        rows = sorted((rms[i], i in prepared, ("Prepared", i) in msgs) for i in range(n))
        return (tuple(rows), tm, frozenset(m for m in msgs if m[0] != "Prepared"))

    def succ(s: Any) -> list[Any]:
        rms, tm, prepared, msgs = s
        out = []
        if tm == "init":
            for i in range(n):
                if ("Prepared", i) in msgs:
                    out.append((rms, tm, prepared | {i}, msgs))
            if len(prepared) == n:
                out.append((rms, "committed", prepared, msgs | {("Commit",)}))
            out.append((rms, "aborted", prepared, msgs | {("Abort",)}))
        for i in range(n):

            def put(p: str, i: int = i) -> tuple[str, ...]:
                return rms[:i] + (p,) + rms[i + 1 :]

            if rms[i] == "working":
                out.append((put("prepared"), tm, prepared, msgs | {("Prepared", i)}))
                out.append((put("aborted"), tm, prepared, msgs))
            if ("Commit",) in msgs:
                out.append((put("committed"), tm, prepared, msgs))
            if ("Abort",) in msgs:
                out.append((put("aborted"), tm, prepared, msgs))
        return out

    seen = {canon(init)}
    frontier = [init]
    while frontier:
        nxt = []
        for s in frontier:
            for t in succ(s):
                c = canon(t)
                if c not in seen:
                    seen.add(c)
                    nxt.append(t)
        frontier = nxt
    return len(seen)


def abstraction(world: Any, symmetric: bool) -> Any:
    """The TLA+ state a treadle twophase state stands for."""
    rms = [nid for nid in world.server_ids if nid != TM]
    tm = world.nodes[TM]
    msgs = set()
    if tm.phase == "committed":  # type: ignore[union-attr]
        msgs.add(("Commit",))
    if tm.phase == "aborted":  # type: ignore[union-attr]
        msgs.add(("Abort",))
    rows = [
        (world.nodes[r].phase, r in tm.prepared, world.nodes[r].voted)  # type: ignore[union-attr]
        for r in rms
    ]
    if symmetric:
        rows.sort()
    return (tuple(rows), tm.phase, frozenset(msgs))  # type: ignore[union-attr]
