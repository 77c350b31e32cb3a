"""One partition, checked segment by segment, so that a history without concurrency costs
time and memory linear in its length.

A *cut* is a point of the history where no operation is open: every operation invoked before
it has returned before it, and none is outstanding with an unknown outcome (an ``info`` or
pending operation stays open to the end: it may take effect at any later point). At a cut,
every linearization has placed exactly the operations before it, so the history is
linearizable iff the segments between cuts can be linearized one after the other, each
starting in a state the previous one can end in. Each segment but the last is searched for
*all* the states it can end in (usually one; a few for concurrent writes), the last only for
one linearization. A segment of one operation is a single model step.

This keeps the search's bitsets as small as a segment instead of the whole partition (with
one bitset over two million operations every step copies a quarter-megabyte integer).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from treadle.checkers.linearizability.frontier import frontier
from treadle.checkers.linearizability.ops import Operation
from treadle.checkers.linearizability.search import Outcome, search
from treadle.models.model import Model

_INF = float("inf")
# segments longer than this are walked just in time (:mod:`.frontier`), linear in their
# length for bounded concurrency, instead of by the depth-first search (quadratic there)
FRONTIER_OPS = 1000
# on a violation, the report's search re-runs over up to this many operations before the
# failing segment too, so that the explanation shows how the state came about
CONTEXT_OPS = 200
CONTEXT_MAX_EXPANSIONS = 500


def cut(ops: list[Operation]) -> Iterator[list[Operation]]:
    """The partition's operations (in call order) split at every point where none is open."""
    cur: list[Operation] = []
    horizon: float = -1
    for o in ops:
        if cur and horizon < o.call:
            yield cur
            cur = []
        cur.append(o)
        r = _INF if o.ret is None else o.ret
        if r > horizon:
            horizon = r
    if cur:
        yield cur


@dataclass
class PartitionOutcome:
    linearizable: bool
    expansions: int
    model_steps: int
    segments: int
    # not linearizable: the segment that cannot follow and its search's outcome
    failing: list[Operation] | None = None
    outcome: Outcome | None = None


def check_partition(
    ops: list[Operation], model: Model, slice_steps: int = 2000
) -> Generator[int, None, PartitionOutcome]:
    """Search one partition, segment by segment; yields progress like :func:`search`."""
    read_only = model.read_only
    if read_only is not None:  # unknown-outcome reads constrain nothing (and would block cuts)
        ops = [o for o in ops if o.completed or not read_only(o.input)]
    segs = cut(ops)
    step = model.step
    states: list[Any] = [model.init()]
    expansions = model_steps = 0
    budget = slice_steps
    recent: deque[tuple[list[Operation], list[Any]]] = deque()  # (segment, its start states)
    recent_ops = 0
    n_segs = 0
    nxt_seg = next(segs, None)
    while nxt_seg is not None:
        seg = nxt_seg
        nxt_seg = next(segs, None)
        n_segs += 1
        is_last = nxt_seg is None
        recent.append((seg, states))
        recent_ops += len(seg)
        while recent_ops - len(recent[0][0]) >= CONTEXT_OPS and len(recent) > 1:
            recent_ops -= len(recent.popleft()[0])
        if len(seg) == 1 and seg[0].completed:
            # the common case without concurrency: one step from each possible state
            o = seg[0]
            nxt: list[Any] = []
            for st in states:
                model_steps += 1
                legal, new = step(st, o.input, o.output)
                if legal and new not in nxt:
                    nxt.append(new)
            budget -= 1
            if budget <= 0:
                budget = slice_steps
                yield expansions + model_steps
            if nxt:
                states = nxt
                continue
        if len(seg) > FRONTIER_OPS:
            fg = frontier(seg, model, states, slice_steps)
            while True:
                try:
                    next(fg)
                except StopIteration as stop:
                    fout = stop.value
                    break
                yield expansions + model_steps
            expansions += fout.expansions
            model_steps += fout.model_steps
            if not fout.linearizable:
                return PartitionOutcome(
                    False, expansions, model_steps, n_segs, fout.window, fout.outcome
                )
            states = fout.ends
            recent.clear()
            recent_ops = 0
            continue
        g = search(seg, model, slice_steps, starts=states, collect_ends=not is_last)
        while True:
            try:
                next(g)
            except StopIteration as stop:
                out: Outcome = stop.value
                break
            yield expansions + model_steps
        expansions += out.expansions
        model_steps += out.model_steps
        if not out.linearizable:
            # the report's search, with the segments before as context; skipped when the
            # failing segment alone was a long search (it is context enough, and the search
            # would only be repeated)
            if len(recent) > 1 and out.expansions <= CONTEXT_MAX_EXPANSIONS:
                window = [o for s, _ in recent for o in s]
                g = search(window, model, slice_steps, starts=recent[0][1])
                while True:
                    try:
                        next(g)
                    except StopIteration as stop:
                        ctx: Outcome = stop.value
                        break
                    yield expansions + model_steps
                if not ctx.linearizable:  # always so; the check keeps a bug from lying
                    return PartitionOutcome(False, expansions, model_steps, n_segs, window, ctx)
            return PartitionOutcome(False, expansions, model_steps, n_segs, seg, out)
        states = out.ends
    return PartitionOutcome(True, expansions, model_steps, n_segs)
