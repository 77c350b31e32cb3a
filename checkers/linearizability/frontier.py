"""Just-in-time linearization over a long segment: linear in its length for bounded concurrency.

The depth-first search (:mod:`.search`) keeps one bitset over every operation of a segment;
on a long segment with no point free of open operations (busy clients) that is quadratic in
time and memory. This walk goes through the events in order instead and keeps the *frontier*:
every configuration (which of the currently open operations have been linearized, model
state) consistent with the history so far (the just-in-time linearization idea of Lowe,
"Testing for linearizability", CCPE 2017, and of Wing & Gong's search read breadth first).

* At an invocation the operation joins the open ones (not linearized in any configuration).
* At the return of operation ``o`` the frontier is closed under "linearize one more open
  operation", and only the configurations where ``o`` has been linearized are kept (``o``
  then leaves the open set). None left: the history is not linearizable at that return.

Open operations are numbered by *slot* (the smallest free number), so a configuration's
bitset is as wide as the concurrency, not the history. Pruning, each sound by dominance:
an unknown-outcome (``info``) operation is never linearized where it would not change the
state; a completed read-only operation that is legal is linearized at once (as in the
search); and of two configurations with the same state, one whose linearized unknown-outcome
operations are a superset of the other's is dropped (the other can still linearize them
later, or never).

On a violation the report needs a readable witness: the depth-first search is re-run over a
window (the operations from a snapshot of the frontier taken a few hundred returns earlier up
to the failing return), started from that snapshot's configurations. Dropping the operations
that return later only removes choices, so the window is not linearizable either.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from treadle.checkers.linearizability.ops import Operation
from treadle.checkers.linearizability.search import Outcome, search
from treadle.models.model import Model

SNAPSHOT_EVERY = 100  # returns between frontier snapshots (for the report's window)


@dataclass
class FrontierOutcome:
    linearizable: bool
    expansions: int
    model_steps: int
    ends: list[Any] = field(default_factory=list)  # states at the end (linearizable)
    window: list[Operation] | None = None  # not linearizable: the report's operations
    outcome: Outcome | None = None  # ... and the search's outcome over them


def frontier(
    ops: list[Operation], model: Model, starts: list[Any], slice_steps: int = 2000
) -> Generator[int, None, FrontierOutcome]:
    step = model.step
    read_only = model.read_only
    overwrites = model.overwrites
    slot_of: dict[int, int] = {}
    free: list[int] = []
    next_slot = 0
    open_ops: dict[int, int] = {}  # slot -> op index
    info_bits = 0
    configs: set[tuple[int, Any]] = {(0, s) for s in starts}
    expansions = model_steps = 0
    budget = slice_steps
    returns = 0
    snapshots: deque[tuple[int, frozenset, dict[int, int]]] = deque(maxlen=3)
    snapshots.append((-1, frozenset(configs), {}))
    # events in history order without a list of them: invokes come in call order, returns from
    # a heap of the open operations' return positions
    n = len(ops)
    k = 0
    rets: list[tuple[int, int]] = []
    while k < n or rets:
        if k < n and (not rets or ops[k].call < rets[0][0]):
            i = k
            k += 1
            if ops[i].ret is not None:
                heapq.heappush(rets, (ops[i].ret, i))
            if free:
                b = heapq.heappop(free)
            else:
                b = next_slot
                next_slot += 1
            slot_of[i] = b
            open_ops[b] = i
            if not ops[i].completed:
                info_bits |= 1 << b
            continue
        pos, i = heapq.heappop(rets)
        b = slot_of.pop(i)
        bit = 1 << b
        items = list(open_ops.items())
        seen = set(configs)
        # breadth first: configurations come in order of how many operations they add, so a
        # configuration is met after the ones it is dominated by (the same state with one
        # unknown-outcome operation fewer linearized), and is then skipped
        queue = deque((m, s, False) for m, s in configs)
        out: set[tuple[int, Any]] = set()
        memo: dict[tuple[Any, int], tuple[bool, Any]] = {}
        while queue:
            mask, st, after_overwrite = queue.popleft()
            if mask & bit:
                out.add((mask & ~bit, st))
                continue
            expansions += 1
            budget -= 1
            if budget <= 0:
                budget = slice_steps
                yield expansions + model_steps
            children: list[tuple[int, Any, bool]] = []
            for s, j in items:
                sb = 1 << s
                if mask & sb:
                    continue
                o = ops[j]
                r = memo.get((st, j))
                if r is None:
                    model_steps += 1
                    r = step(st, o.input, o.output)
                    memo[(st, j)] = r
                legal, new = r
                if not legal:
                    continue
                if sb & info_bits:
                    if new == st:
                        continue
                    if after_overwrite and overwrites is not None and overwrites(o.input):
                        continue  # its sibling (this op right after the parent) dominates
                elif new == st and read_only is not None and read_only(o.input):
                    children = [(mask | sb, st, False)]
                    break
                ow = bool(sb & info_bits) and overwrites is not None and overwrites(o.input)
                children.append((mask | sb, new, ow))
            for cm, cs, ow in children:
                c = (cm, cs)
                if c in seen:
                    continue
                if cm & info_bits and _dominated(c, seen, info_bits):
                    continue
                seen.add(c)
                queue.append((cm, cs, ow))
        del open_ops[b]
        heapq.heappush(free, b)
        if info_bits:
            out = {c for c in out if not _dominated(c, out, info_bits)}
        if not out:
            window, wout = _window(ops, model, snapshots[0], i, slot_of, slice_steps)
            if wout is not None:
                g = wout
                while True:
                    try:
                        next(g)
                    except StopIteration as stop:
                        res: Outcome = stop.value
                        break
                    yield expansions + model_steps
                if not res.linearizable:
                    return FrontierOutcome(False, expansions, model_steps, [], window, res)
            # the window search disagrees (it should not): report the failing operation alone
            lone = search([ops[i]], model, slice_steps, starts=[st for _, st in configs])
            while True:
                try:
                    next(lone)
                except StopIteration as stop:
                    res = stop.value
                    break
            return FrontierOutcome(False, expansions, model_steps, [], [ops[i]], res)
        configs = out
        returns += 1
        if returns % SNAPSHOT_EVERY == 0:
            snapshots.append((pos, frozenset(configs), dict(open_ops)))
    return FrontierOutcome(True, expansions, model_steps, list({st for _, st in configs}))


def _dominated(c: tuple[int, Any], out: Any, info_bits: int) -> bool:
    mask, st = c
    rem = mask & info_bits
    while rem:
        low = rem & -rem
        rem ^= low
        if (mask & ~low, st) in out:
            return True
    return False


def _window(
    ops: list[Operation],
    model: Model,
    snap: tuple[int, frozenset, dict[int, int]],
    failing: int,
    slot_of: dict[int, int],
    slice_steps: int,
) -> tuple[list[Operation], Any]:
    """The operations from the snapshot to the failing return, and a search over them started
    from the snapshot's configurations."""
    snap_pos, snap_configs, snap_open = snap
    end = ops[failing].ret
    assert end is not None
    read_only = model.read_only
    keep: list[int] = sorted(
        set(snap_open.values()) | {j for j, o in enumerate(ops) if snap_pos < o.call < end}
    )
    keep = [
        j
        for j in keep
        if (ops[j].ret is not None and ops[j].ret <= end)
        or (ops[j].ret is None and not (read_only is not None and read_only(ops[j].input)))
    ]
    window = [ops[j] for j in keep]
    where = {j: k for k, j in enumerate(keep)}
    roots = []
    for mask, st in snap_configs:
        wmask = 0
        for s, j in snap_open.items():
            if mask >> s & 1 and j in where:
                wmask |= 1 << where[j]
        roots.append((wmask, st))
    return window, search(window, model, slice_steps, roots=roots)
