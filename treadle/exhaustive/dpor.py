"""Exhaustive search: source-DPOR with sleep sets (Abdulla et al., POPL 2014), and counting
Mazurkiewicz traces."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.errors import TreadleError
from treadle.exhaustive.bounds import _Stop
from treadle.exhaustive.explorer import Explorer, Found, Stats
from treadle.world import Pending, World


# ------------------------------------------------------------------------------ DPOR
class _Entry:
    __slots__ = ("key", "node", "fault", "hist", "hb", "seq_lo", "seq_hi", "choices")

    def __init__(self, key, node, fault, hist_, hb, seq_lo, seq_hi, choices):
        self.key = key
        self.node = node
        self.fault = fault
        self.hist = hist_
        self.hb = hb
        self.seq_lo = seq_lo
        self.seq_hi = seq_hi
        self.choices = choices


def _dependent(a_node, a_fault, a_hist, b_node, b_fault, b_hist, asyn: bool) -> bool:
    # faults are dependent with each other (budgets, max_down); a crash or restart of node X
    # touches only X (its state, storage and timers; messages to X are lost when delivered to a
    # down X, at X), so it is dependent with X's events only; partition and heal (no node) with all
    if not asyn or (a_fault and b_fault):
        return True
    if (a_fault and a_node is None) or (b_fault and b_node is None):
        return True
    return a_node == b_node or (a_hist and b_hist)


class _Frame:
    __slots__ = ("keys", "backtrack", "done", "sleep")

    def __init__(self, keys: dict[Any, int], first: Any, sleep: dict[Any, tuple]):
        self.keys = keys
        self.backtrack: dict[Any, None] = {first: None}
        self.done: set[Any] = set()
        self.sleep = sleep


def dpor(
    ex: Explorer,
    reduce: bool = True,
    on_execution: Callable[[list[_Entry]], None] | None = None,
) -> Found | None:
    """Stateless DFS with source-DPOR and sleep sets; ``reduce=False`` explores every
    interleaving (the plain DFS DPOR is measured against)."""
    st = ex.stats = Stats("dpor" if reduce else "tree")
    st.paths = None
    asyn = ex.asynchronous
    E: list[_Entry] = []
    frames: list[_Frame] = []
    path_choices: list[list[int]] = []
    found: list[Found] = []

    def creator_of(seq: int) -> int | None:
        lo, hi = 0, len(E) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            e = E[mid]
            if seq <= e.seq_lo:
                hi = mid - 1
            elif seq > e.seq_hi:
                lo = mid + 1
            else:
                return mid
        return None

    def races(n_node, n_fault, n_hist, key, hb_n: int, creator: int | None) -> None:
        via = 0
        bits = hb_n
        while bits:
            low = bits & -bits
            k = low.bit_length() - 1
            via |= E[k].hb
            bits ^= low
        n = len(E)
        for j in range(n):
            e = E[j]
            if j == creator or e.key == key or (via >> j) & 1:
                continue
            if not _dependent(e.node, e.fault, e.hist, n_node, n_fault, n_hist, asyn):
                continue
            # v = events after j that do not happen after j, then the new event
            vmask = 0
            v = []
            for k in range(j + 1, n):
                if not (E[k].hb >> j) & 1:
                    v.append(k)
                    vmask |= 1 << k
            initials = [E[k].key for k in v if not (E[k].hb & vmask)]
            if not (hb_n & vmask):
                initials.append(key)
            fr = frames[j]
            if any(q in fr.backtrack for q in initials):
                continue
            pick = key if key in initials else initials[0]
            if pick in fr.keys:
                fr.backtrack[pick] = None
            else:  # cannot happen if the theory holds; stay sound
                for q in fr.keys:
                    fr.backtrack[q] = None

    def explore(w: World, meta: tuple[Any, ...], sleep: dict[Any, tuple]) -> None:
        depth = len(E)
        ex.tick(f"dpor: {st.executions} executions, depth {depth}")
        choices = ex.choices_of(w, meta)
        if not choices:
            st.executions += 1
            if on_execution is not None:
                on_execution(E)
            flat = [c for ch in path_choices for c in ch]
            v = ex.check_final(w)
            if v is not None:
                found.append(Found(v, flat, depth))
                raise _Stop
            ex.liveness_findings(w, meta, "budget" if ex.budget_cut else "terminal", flat, depth)
            if st.executions >= ex.max_states:
                st.bounds_hit.add("states")
                st.complete = False
                raise _Stop
            return
        if depth >= ex.max_depth:
            st.bounds_hit.add("depth")
            st.complete = False
            st.executions += 1
            return
        n_events = ex.n_events
        keys = {k: (i, ev) for i, ev, k in choices}
        avail = [k for k in keys if k not in sleep]
        if not avail:
            st.blocked += 1
            return
        fr = _Frame(keys, avail[0], dict(sleep))  # type: ignore[arg-type]
        if not reduce:
            for k in keys:
                fr.backtrack[k] = None
        frames.append(fr)
        try:
            while True:
                p = next((k for k in fr.backtrack if k not in fr.done and k not in fr.sleep), None)
                if p is None:
                    break
                fr.done.add(p)
                i, ev = keys[p]
                meta1 = ex.next_meta(meta, ev)
                is_pending = type(ev) is Pending
                node = ev.node  # None for partition and heal
                fault = not is_pending
                creator = creator_of(ev.seq) if is_pending else None
                union_hist = False
                seq_lo = w._seq
                hist_len = len(w.history)
                for w2, ch, viol in ex.transitions(w, i, ev, n_events):
                    st.transitions += 1
                    wrote = ex.read_history and len(w2.history) > hist_len
                    union_hist = union_hist or wrote
                    if viol is not None:
                        flat = [c for chs in path_choices for c in chs] + ch
                        found.append(Found(viol, flat, depth + 1))
                        raise _Stop
                    hb = 0
                    for j, e in enumerate(E):
                        if _dependent(e.node, e.fault, e.hist, node, fault, wrote, asyn):
                            hb |= (1 << j) | e.hb
                    if creator is not None:
                        hb |= (1 << creator) | E[creator].hb
                    if reduce:
                        races(node, fault, wrote, p, hb, creator)
                        # p may disable co-enabled events (a handler cancels its own timer, a
                        # crash drops a node's timers, the last event ends crash faults): those
                        # never execute after p, so no race reveals them; explore them here
                        after = {ex.event_key(w2, e2) for e2 in w2.enabled()}
                        for q in keys:
                            if q != p and q not in after and q not in fr.sleep:
                                fr.backtrack[q] = None
                    inner = tuple(ch[1:] if n_events > 1 else ch)
                    E.append(_Entry(p, node, fault, wrote, hb, seq_lo, w2._seq, inner))
                    path_choices.append(ch)
                    if depth + 1 > st.depth:
                        st.depth = depth + 1
                    child_sleep = {
                        q: f
                        for q, f in fr.sleep.items()
                        if not _dependent(f[0], f[1], f[2], node, fault, wrote, asyn)
                    }
                    meta2 = ex.update_live(w2, meta1)
                    explore(w2, meta2, child_sleep)
                    E.pop()
                    path_choices.pop()
                if reduce:
                    fr.sleep[p] = (node, fault, union_hist)
        finally:
            frames.pop()

    try:
        for w, ch, viol in ex.roots():
            if viol is not None:
                return Found(viol, ch, 0)
            path_choices.append(ch)
            try:
                explore(w, ex.update_live(w, ex.root_meta()), {})
            finally:
                path_choices.pop()
    except _Stop:
        pass
    except RecursionError:
        raise TreadleError("dpor: path too deep for the recursion limit; lower max_depth") from None
    return found[0] if found else None


def count_traces(ex: Explorer) -> tuple[int, int]:
    """(executions, Mazurkiewicz traces) of the full execution tree, by brute force: every
    interleaving is executed and reduced to its lexicographic normal form under the same
    dependence DPOR uses. Exponential: for checking DPOR on small configurations."""
    forms: set[tuple[Any, ...]] = set()

    def normal_form(E: list[_Entry]) -> tuple[Any, ...]:
        labels = [repr((e.key, e.choices)) for e in E]
        done = 0
        out = []
        for _ in range(len(E)):
            best = -1
            for k, e in enumerate(E):
                if (done >> k) & 1 or (e.hb & ~done):
                    continue
                if best < 0 or labels[k] < labels[best]:
                    best = k
            done |= 1 << best
            out.append(labels[best])
        return tuple(out)

    root: list[Any] = [None]
    roots = ex.roots

    def tag_roots() -> Iterator[tuple[World, list[int], CheckResult | None]]:
        for w, ch, viol in roots():
            root[0] = tuple(ch)  # runs from different initial draws are different traces
            yield w, ch, viol

    ex.roots = tag_roots  # type: ignore[method-assign]
    dpor(ex, reduce=False, on_execution=lambda E: forms.add((root[0], normal_form(E))))
    if not ex.stats.complete:
        raise TreadleError("count_traces: a bound was hit; the counts would be partial")
    return ex.stats.executions, len(forms)
