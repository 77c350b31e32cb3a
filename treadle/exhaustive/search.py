"""Exhaustive search: BFS and DFS over canonical state fingerprints, and path counting."""

from __future__ import annotations

from collections import deque
from typing import Any

from treadle.exhaustive.bounds import _Stop
from treadle.exhaustive.explorer import Explorer, Found, Stats
from treadle.world import World


# ------------------------------------------------------------------------------ BFS / DFS
def search(ex: Explorer, strategy: str, stop_at_first: bool = True) -> Found | None:
    """Stateful BFS or DFS over fingerprints. Fills ``ex.stats``; returns the first violation."""
    st = ex.stats = Stats(strategy)
    visited: dict[Any, int] = {}
    parent: list[tuple[int, tuple[int, ...]]] = []
    succ: list[list[int] | None] = []  # edges, for counting maximal paths
    depth_of: list[int] = []
    cut: list[bool] = []

    def path(idx: int) -> list[int]:
        out: list[tuple[int, ...]] = []
        while idx >= 0:
            p, ch = parent[idx]
            out.append(ch)
            idx = p
        return [c for ch in reversed(out) for c in ch]

    def add(w: World, meta: tuple[Any, ...], par: int, ch: list[int], depth: int) -> int | None:
        fp = ex.fingerprint(w, meta)
        got = visited.get(fp)
        if got is not None:
            return -got - 1  # already known: negative marks "seen"
        idx = len(parent)
        visited[fp] = idx
        parent.append((par, tuple(ch)))
        succ.append(None)
        depth_of.append(depth)
        cut.append(False)
        st.states += 1
        if depth > st.depth:
            st.depth = depth
        return idx

    frontier: deque[tuple[int, World, tuple[Any, ...]]] = deque()
    roots: list[int] = []
    found: Found | None = None
    try:
        for w, ch, viol in ex.roots():
            meta = ex.update_live(w, ex.root_meta())
            idx = add(w, meta, -1, ch, 0)
            if viol is not None:
                return Found(viol, ch, 0)
            assert idx is not None
            roots.append(idx if idx >= 0 else -idx - 1)
            if idx >= 0:
                frontier.append((idx, w, meta))
        pop = frontier.popleft if strategy == "bfs" else frontier.pop
        while frontier:
            idx, w, meta = pop()
            depth = depth_of[idx]
            ex.tick(f"{strategy}: {st.states} states, depth {depth}, {len(frontier)} queued")
            choices = ex.choices_of(w, meta)
            if not choices:
                kind = "budget" if ex.budget_cut else "terminal"
                v = ex.check_final(w)
                if v is not None:
                    return Found(v, path(idx), depth)
                ex.liveness_findings(w, meta, kind, path(idx), depth)
                succ[idx] = []
                continue
            if depth >= ex.max_depth:
                st.bounds_hit.add("depth")
                st.complete = False
                cut[idx] = True
                v = ex.check_final(w)
                if v is not None:
                    return Found(v, path(idx), depth)
                ex.liveness_findings(w, meta, "bound", path(idx), depth)
                continue
            edges: list[int] = []
            fresh = []
            for i, ev, _ in choices:
                meta1 = ex.next_meta(meta, ev)
                for w2, ch, viol in ex.transitions(w, i, ev, ex.n_events):
                    st.transitions += 1
                    if viol is not None:
                        found = Found(viol, path(idx) + ch, depth + 1)
                        return found
                    meta2 = ex.update_live(w2, meta1)
                    got = add(w2, meta2, idx, ch, depth + 1)
                    assert got is not None
                    if got >= 0:
                        edges.append(got)
                        fresh.append((got, w2, meta2))
                    else:
                        edges.append(-got - 1)
            succ[idx] = edges
            if strategy == "dfs":
                fresh.reverse()  # explore event 0 first
            frontier.extend(fresh)
            if st.states >= ex.max_states:
                st.bounds_hit.add("states")
                st.complete = False
                break
    except _Stop:
        pass
    if st.complete:
        st.paths = _count_paths(succ, roots)
    return found


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
