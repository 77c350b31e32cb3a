"""Exhaustive search: BFS and DFS over canonical state fingerprints, and path counting.

A search is two halves that meet in one place. :func:`expand` takes one state and returns an
:class:`Expansion`: what happens there (the path ends, is cut by the depth bound, or every
transition with its choices, check results and the successor's fingerprint). :class:`StateGraph`
merges expansions one state at a time, in the search's order: it dedups successors by
fingerprint, numbers the new states, counts, and stops at the first violation or at a bound.
The serial search expands each state where it pops it; the parallel BFS
(:mod:`treadle.exhaustive.workers`) expands states on workers and merges their expansions in the
same order, so both count the same states and transitions and return the same counterexample.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.exhaustive.bounds import _Stop
from treadle.exhaustive.explorer import Explorer, Found, Stats
from treadle.world import World


# ------------------------------------------------------------------------------ one state
class Expansion:
    """What expanding one state found. ``kind``: ``end`` (nothing enabled: ``ending`` is
    ``terminal``, or ``budget`` when a budget disabled what was left), ``cut`` (the depth
    bound), ``step`` (``steps``: one tuple per transition, in the serial order: choices,
    violation, fingerprint, meta, history checks run, unknown checks, the first unknown's
    message, and the successor world when kept), or ``error`` (expanding it raised)."""

    __slots__ = ("kind", "ending", "final", "never", "unknown", "unknown_message", "steps", "error")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ending = ""
        self.final: CheckResult | None = None  # the final checks' violation (end, cut)
        self.never: list[str] = []  # liveness predicates that never held (end, cut)
        self.unknown = 0  # final checks that could not decide (end, cut)
        self.unknown_message = ""
        self.steps: list[tuple[Any, ...]] = []
        self.error: BaseException | None = None

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for k, v in zip(self.__slots__, state):
            setattr(self, k, v)

    @property
    def stops(self) -> bool:
        """Does merging it end the search (a violation or an error)?"""
        return (
            self.kind == "error"
            or self.final is not None
            or (bool(self.steps) and self.steps[-1][1] is not None)
        )


def expand(
    ex: Explorer, w: World, meta: tuple[Any, ...], depth: int, keep_worlds: bool
) -> Expansion:
    """Expand one state, as the serial search did where it popped it. The checks' counters go
    into the expansion (merged by :meth:`StateGraph.merge`), not into ``ex.stats``; a violating
    transition ends the expansion (the search stops there)."""
    main = ex.stats
    scratch = ex.stats = Stats(main.strategy)
    try:
        choices = ex.choices_of(w, meta)
        if not choices or depth >= ex.max_depth:
            out = Expansion("end" if not choices else "cut")
            out.ending = "budget" if ex.budget_cut else "terminal"
            out.final = ex.check_final(w)
            if out.final is None:
                out.never = ex.never_held(w, meta)
            out.unknown, out.unknown_message = scratch.unknown, scratch.unknown_message
            return out
        out = Expansion("step")
        steps = out.steps
        hc = unk = 0
        for i, ev, _ in choices:
            meta1 = ex.next_meta(meta, ev)
            for w2, ch, viol in ex.transitions(w, i, ev, ex.n_events):
                dh, hc = scratch.history_checks - hc, scratch.history_checks
                du, unk = scratch.unknown - unk, scratch.unknown
                msg = scratch.unknown_message
                scratch.unknown_message = ""
                if viol is not None:
                    steps.append((tuple(ch), viol, None, None, dh, du, msg, None))
                    return out
                meta2 = ex.update_live(w2, meta1)
                fp = ex.fingerprint(w2, meta2)
                steps.append((tuple(ch), None, fp, meta2, dh, du, msg, w2 if keep_worlds else None))
        return out
    finally:
        ex.stats = main


# ------------------------------------------------------------------------------ the graph
class StateGraph:
    """The visited states of one search (fingerprint -> index), their parents (for paths), their
    successors (for counting paths) and the counters; expansions are merged here, in order."""

    def __init__(self, ex: Explorer, strategy: str) -> None:
        self.ex = ex
        self.st = ex.stats = Stats(strategy)
        self.visited: dict[Any, int] = {}
        self.parent: list[tuple[int, tuple[int, ...]]] = []
        self.succ: list[list[int] | None] = []  # edges, for counting maximal paths
        self.depth_of: list[int] = []
        #: the position of the transition that first reached each state among its parent's
        #: (-1 for an initial state): with the parent, where a worker may have kept its world
        self.slot: list[int] = []
        self.roots: list[int] = []

    def path(self, idx: int) -> list[int]:
        out: list[tuple[int, ...]] = []
        parent = self.parent
        while idx >= 0:
            p, ch = parent[idx]
            out.append(ch)
            idx = p
        return [c for ch in reversed(out) for c in ch]

    def add(self, fp: Any, par: int, ch: tuple[int, ...], depth: int, slot: int = -1) -> int:
        """The new state's index, or ``-index - 1`` of the state it is already."""
        got = self.visited.get(fp)
        if got is not None:
            return -got - 1
        idx = len(self.parent)
        self.visited[fp] = idx
        self.parent.append((par, ch))
        self.slot.append(slot)
        self.succ.append(None)
        self.depth_of.append(depth)
        st = self.st
        st.states += 1
        if depth > st.depth:
            st.depth = depth
        return idx

    def add_roots(self) -> tuple[Found | None, list[tuple[int, World, tuple[Any, ...]]]]:
        """Every initial state; (a violation at one, the new ones with their worlds)."""
        ex = self.ex
        fresh = []
        for w, ch, viol in ex.roots():
            meta = ex.update_live(w, ex.root_meta())
            idx = self.add(ex.fingerprint(w, meta), -1, tuple(ch), 0)
            if viol is not None:
                return Found(viol, ch, 0), fresh
            self.roots.append(idx if idx >= 0 else -idx - 1)
            if idx >= 0:
                fresh.append((idx, w, meta))
        return None, fresh

    def merge(
        self, idx: int, exp: Expansion
    ) -> tuple[Found | None, list[tuple[int, Any, tuple[Any, ...]]], bool]:
        """Merge the expansion of state ``idx``: (a violation, the new states (index, world or
        None, meta) in order, whether a bound now stops the search)."""
        st, ex = self.st, self.ex
        depth = self.depth_of[idx]
        if exp.kind == "error":
            assert exp.error is not None
            raise exp.error
        if exp.kind != "step":
            st.unknown += exp.unknown
            if exp.unknown and not st.unknown_message:
                st.unknown_message = exp.unknown_message
            if exp.kind == "cut":
                st.bounds_hit.add("depth")
                st.complete = False
            if exp.final is not None:
                return Found(exp.final, self.path(idx), depth), [], False
            kind = "bound" if exp.kind == "cut" else exp.ending
            ex.path_ended(exp.never, kind, self.path(idx), depth)
            if exp.kind == "end":
                self.succ[idx] = []
            return None, [], False
        edges: list[int] = []
        fresh = []
        for k, (ch, viol, fp, meta2, dh, du, msg, w2) in enumerate(exp.steps):
            st.transitions += 1
            st.history_checks += dh
            st.unknown += du
            if du and not st.unknown_message:
                st.unknown_message = msg
            if viol is not None:
                return Found(viol, self.path(idx) + list(ch), depth + 1), [], False
            got = self.add(fp, idx, ch, depth + 1, k)
            if got >= 0:
                edges.append(got)
                fresh.append((got, w2, meta2))
            else:
                edges.append(-got - 1)
        self.succ[idx] = edges
        if st.states >= ex.max_states:
            st.bounds_hit.add("states")
            st.complete = False
            return None, fresh, True
        return None, fresh, False

    def finish(self) -> None:
        if self.st.complete:
            self.st.paths = _count_paths(self.succ, self.roots)


# ------------------------------------------------------------------------------ BFS / DFS
def search(ex: Explorer, strategy: str, stop_at_first: bool = True) -> Found | None:
    """Stateful BFS or DFS over fingerprints, in this process. Fills ``ex.stats``; returns the
    first violation."""
    g = StateGraph(ex, strategy)
    st = g.st
    try:
        found, fresh = g.add_roots()
        if found is not None:
            return found
        frontier: deque[tuple[int, World, tuple[Any, ...]]] = deque(fresh)
        pop = frontier.popleft if strategy == "bfs" else frontier.pop
        while frontier:
            idx, w, meta = pop()
            depth = g.depth_of[idx]
            ex.tick(f"{strategy}: {st.states} states, depth {depth}, {len(frontier)} queued")
            found, fresh, stop = g.merge(idx, expand(ex, w, meta, depth, keep_worlds=True))
            if found is not None:
                return found
            if strategy == "dfs":
                fresh.reverse()  # explore event 0 first
            frontier.extend(fresh)
            if stop:
                break
    except _Stop:
        pass
    g.finish()
    return None


def _count_paths(succ: list[list[int] | None], roots: list[int]) -> int | None:
    """Maximal paths of an acyclic graph from each initial state (one entry per initial choice
    list, repeats included): what a stateless DFS without reduction would execute. None on a
    cycle."""
    n = len(succ)
    memo: list[int | None] = [None] * n
    on_stack = [False] * n
    total = 0
    for r in roots:
        if memo[r] is not None:
            total += memo[r]  # type: ignore[operator]
            continue
        stack = [(r, 0)]
        on_stack[r] = True
        while stack:
            v, k = stack[-1]
            edges = succ[v] or []
            if k < len(edges):
                stack[-1] = (v, k + 1)
                t = edges[k]
                if memo[t] is None:
                    if on_stack[t]:
                        return None
                    on_stack[t] = True
                    stack.append((t, 0))
                continue
            memo[v] = 1 if not edges else sum(memo[t] for t in edges)  # type: ignore[misc]
            on_stack[v] = False
            stack.pop()
        total += memo[r]  # type: ignore[operator]
    return total
