"""The search: Wing & Gong's algorithm with Lowe's memoization, plus pruning.

References:
* J. M. Wing and C. Gong, "Testing and verifying concurrent objects", JPDC 1993.
* G. Lowe, "Testing for linearizability", CCPE 2017: memoize (linearized set, state) pairs.
* A. Horn and D. Kroening, "Faster linearizability checking via P-compositionality", FORTE 2015.
* Porcupine (A. Athalye): the same search over a call/return list with a bitset cache.

The search is a depth-first walk over *configurations* ``(linearized, state)``: ``linearized``
is a bitset (a Python int) over the operations of one partition, indexed in call order, and
``state`` an interned model state (an int id). From a configuration, an operation may be
linearized next iff it is not yet linearized and was invoked before the earliest return among
the completed operations not yet linearized (the *frontier*): with operations indexed by call,
those form a prefix mask. The walk succeeds when every completed operation is linearized;
operations with an unknown outcome (``info``, pending) never have to be.

Pruning, each sound (a pruned branch is dominated by one that is explored):

1. Memoization (Lowe): a configuration is expanded at most once.
2. Completed read-only operations (per ``Model.read_only``) are taken greedily when legal: a
   read that matches now is as good here as at any later point, since nothing must precede it
   (it was invoked before the frontier) and it changes no state anywhere. (Only read-only ones:
   a write that is an identity step in the current state is not one in every state.)
3. An unknown-outcome operation is never linearized where it would not change the state:
   linearizing it there is no better than never linearizing it.
4. Unknown-outcome operations with identical inputs are interchangeable (each may take effect
   at any point after its call): only the earliest-invoked unused one of each group is tried.
5. Unknown-outcome read-only operations (per ``Model.read_only``) are dropped up front.
6. Model steps are cached per (state, operation): each is computed once.
7. Lookahead (models with ``monotone``/``reachable``, e.g. kv append): a child configuration
   is not pushed when some completed read-only operation still to be placed can be satisfied
   neither by a state reachable from the child's state by monotone steps nor by way of a
   pending non-monotone operation (a put) that was invoked before it returned and whose
   restart state can lead to it. Per state the unsatisfiable readers are computed once (with
   ``Model.unreachable_index`` when the model has one: kv sorts gets by output, so the gets a
   state is a prefix of form one range); per set of pending puts, the readers they can save
   (``cover``) are a union computed once. (Sound for non-string kv values too: a key holding
   ``5`` can still be read as ``5``; an earlier version assumed strings.)

The walk is a generator that yields every ``slice_steps`` expansions, so that a driver can
interleave partitions and enforce a timeout.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from treadle.checkers.linearizability.ops import Operation
from treadle.models.model import UNKNOWN, Model


@dataclass
class Outcome:
    linearizable: bool
    expansions: int
    model_steps: int
    # linearizable: one linearization (operation ids, in order)
    linearization: list[int] = field(default_factory=list)
    # not linearizable: the longest partial linearizations found (operation ids, in order)
    longest: list[list[int]] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)  # interned states, by id
    # the state the search started from (for ``longest``: the start of the first path)
    start: Any = None
    # with ``collect_ends``: every state a full linearization can end in
    ends: list[Any] = field(default_factory=list)
    # with ``roots``: the operations (ids) already linearized where ``longest`` starts
    pre: list[int] = field(default_factory=list)


def search(
    ops: list[Operation],
    model: Model,
    slice_steps: int = 5000,
    keep_longest: int = 3,
    starts: list[Any] | None = None,
    collect_ends: bool = False,
    roots: list[tuple[int, Any]] | None = None,
) -> Generator[int, None, Outcome]:
    """Search one partition (or one segment of it, see :mod:`.segments`). ``ops`` are in call
    order. ``starts``: the states it may start in (default: the model's initial state). With
    ``collect_ends`` the walk goes on past the first full linearization and returns every
    state one can end in (``Outcome.ends``; linearizable iff there is one). Yields progress;
    returns an Outcome. ``roots``: instead of ``starts``, (bitset of ``ops`` already
    linearized, state) pairs to start from (see :mod:`.frontier`)."""
    read_only = model.read_only
    if read_only is not None:
        ops = [o for o in ops if o.completed or not read_only(o.input)]
    n = len(ops)
    step = model.step
    if roots is None:
        roots = [(0, st) for st in ([model.init()] if starts is None else starts)]
    states: list[Any] = []
    sid_of: dict[Any, int] = {}
    root_nodes = []
    for m0, st in roots:
        if st not in sid_of:
            sid_of[st] = len(states)
            states.append(st)
        root_nodes.append((m0, sid_of[st], 0, -1, None))
    if not any(o.completed for o in ops):
        return Outcome(True, 0, 0, [], [], states, states[0], list(states))

    inputs = [o.input for o in ops]
    outputs = [o.output for o in ops]
    calls = [o.call for o in ops]
    completed = sorted((o.ret, i) for i, o in enumerate(ops) if o.completed)
    ncomp = len(completed)
    ret_bits = [1 << i for _, i in completed]
    # prefix[r]: ops invoked before the r-th return (in return order)
    prefix = []
    j = 0
    for ret, _ in completed:
        while j < n and calls[j] < ret:
            j += 1
        prefix.append((1 << j) - 1)
    info_mask = 0
    comp_mask = 0
    # read-only operations: identity in every state, so taking one greedily when it is legal
    # is sound; a write that merely happens to be an identity step *now* is not (placed later,
    # after another write, it changes the state)
    ro_mask = 0
    if read_only is not None:
        for i, o in enumerate(ops):
            if read_only(o.input):
                ro_mask |= 1 << i
    prev_ident = [0] * n
    last_of: dict[Any, int] = {}
    for i, o in enumerate(ops):
        if o.completed:
            comp_mask |= 1 << i
        else:
            info_mask |= 1 << i
            if o.input in last_of:
                prev_ident[i] = 1 << last_of[o.input]
            last_of[o.input] = i

    # lookahead pruning (optional model hooks, see Model.monotone / Model.reachable)
    reachable = model.reachable
    lookahead = reachable is not None and model.monotone is not None
    nonmono = 0
    if lookahead:
        for i, o in enumerate(ops):
            if not model.monotone(o.input):
                nonmono |= 1 << i
    unreach: dict[int, int] = {}
    # completed operations grouped by (input, output); read-only ones only when the model
    # says which those are (checking fewer operations only prunes less)
    obs: dict[tuple[Any, Any], int] = {}
    for _, g in completed:
        if read_only is None or read_only(inputs[g]):
            k = (inputs[g], outputs[g])
            obs[k] = obs.get(k, 0) | 1 << g
    observers = list(obs.items())
    # a model may index its observers once (e.g. kv: gets sorted by output, so that those a
    # state is a prefix of form one range) instead of asking ``reachable`` for each
    unreach_fn = None
    if lookahead and model.unreachable_index is not None:
        unreach_fn = model.unreachable_index(observers)
    # cover[p]: the completed ops g that the non-monotone op p may save from the lookahead: p
    # was invoked before g returned, and from p's restart state monotone steps can fit g
    cover = [0] * n
    saved: dict[int, int] = {}  # union of cover[p] over a set of pending p
    if lookahead:
        restart = model.restart
        obs_mask = 0
        for _, gmask in observers:
            obs_mask |= gmask
        rets = [ret for ret, _ in completed]
        after = [0] * (ncomp + 1)  # after[r]: completed ops from the r-th return on
        for r in range(ncomp - 1, -1, -1):
            after[r] = after[r + 1] | ret_bits[r]
        rem = nonmono
        while rem:
            low = rem & -rem
            rem ^= low
            p = low.bit_length() - 1
            rs = restart(inputs[p]) if restart is not None else None
            if rs is None:
                fits = obs_mask
            elif unreach_fn is not None:
                fits = obs_mask & ~unreach_fn(rs)
            else:
                fits = 0
                for (g_in, g_out), gmask in observers:
                    if reachable(rs, g_in, g_out):
                        fits |= gmask
            cover[p] = fits & after[bisect_right(rets, calls[p])]

    trans: dict[int, int] = {}
    seen: set[tuple[int, int]] = set()
    # a node: (mask, sid, rp, op, parent); one root per start state, the first on top
    stack: list[tuple] = list(reversed(root_nodes))
    ends: set[int] = set()
    best_depth = -1
    best_nodes: list[tuple] = []
    expansions = 0
    model_steps = 0
    pruned = 0  # children cut by the lookahead
    budget = slice_steps

    while stack:
        node = stack.pop()
        mask, sid, rp = node[0], node[1], node[2]
        while rp < ncomp and mask & ret_bits[rp]:
            rp += 1
        if rp == ncomp:
            if collect_ends:
                ends.add(sid)
                continue
            path = []
            while node[4] is not None:
                path.append(ops[node[3]].id)
                node = node[4]
            path.reverse()
            return Outcome(True, expansions, model_steps, path, [], states, states[node[1]])
        expansions += 1
        budget -= 1
        if budget <= 0:
            budget = slice_steps
            yield expansions
        depth = (mask & comp_mask).bit_count()
        if depth >= best_depth:
            if depth > best_depth:
                best_depth = depth
                best_nodes = [node]
            elif len(best_nodes) < keep_longest:
                best_nodes.append(node)
        cand = prefix[rp] & ~mask
        base = sid * n
        comp_children: list[tuple] = []
        info_children: list[tuple] = []
        while cand:
            low = cand & -cand
            cand ^= low
            i = low.bit_length() - 1
            t = trans.get(base + i)
            if t is None:
                model_steps += 1
                legal, new_state = step(states[sid], inputs[i], outputs[i])
                if legal:
                    t = sid_of.get(new_state)
                    if t is None:
                        t = len(states)
                        sid_of[new_state] = t
                        states.append(new_state)
                else:
                    t = -1
                trans[base + i] = t
            if t < 0:
                continue
            if low & info_mask:
                if t == sid:
                    continue
                pb = prev_ident[i]
                if pb and not mask & pb:
                    continue
                info_children.append((mask | low, t, i))
            elif t == sid and low & ro_mask:
                comp_children = [(mask | low, t, i)]
                info_children = []
                break
            else:
                comp_children.append((mask | low, t, i))
        # explore completed operations first (in call order), then unknown ones
        for children in (info_children, comp_children):
            for k in range(len(children) - 1, -1, -1):
                cm, t, i = children[k]
                key = (cm, t)
                if key in seen:
                    continue
                seen.add(key)
                if lookahead:
                    # A completed op g still to be linearized sees, at its point, a state
                    # reached from t by monotone steps, or from the restart state of a
                    # non-monotone op that may go before it (then monotone steps). If neither
                    # can fit g, the child is a dead end: it is not pushed.
                    bad = unreach.get(t)
                    if bad is None:
                        if unreach_fn is not None:
                            bad = unreach_fn(states[t])
                        else:
                            st = states[t]
                            bad = 0
                            for (g_in, g_out), gmask in observers:
                                if not reachable(st, g_in, g_out):
                                    bad |= gmask
                        unreach[t] = bad
                    bad &= ~cm
                    if bad:
                        pend = nonmono & ~cm
                        sv = saved.get(pend)
                        if sv is None:
                            sv = 0
                            rem = pend
                            while rem:
                                low = rem & -rem
                                rem ^= low
                                sv |= cover[low.bit_length() - 1]
                            saved[pend] = sv
                        if bad & ~sv:
                            pruned += 1
                            continue
                stack.append((cm, t, rp, i, node))

    if ends:
        return Outcome(
            True, expansions, model_steps, [], [], states, None, [states[s] for s in sorted(ends)]
        )
    longest = []
    start = None
    for node in best_nodes:
        path = []
        while node[4] is not None:
            path.append(ops[node[3]].id)
            node = node[4]
        path.reverse()
        if start is None:
            start = node
        elif node is not start:
            continue  # the report replays every prefix from one root
        longest.append(path)
    if start is None:
        start = root_nodes[0]
    m0 = start[0]
    pre = [ops[i].id for i in range(n) if m0 >> i & 1]
    return Outcome(False, expansions, model_steps, [], longest, states, states[start[1]], [], pre)


def replay(ops: list[Operation], model: Model, path: list[int], *start: Any) -> list[Any]:
    """The model states along ``path`` (ids into ``ops``): states[k] is the state before
    path[k], plus the final state. ``start``: the state before the first (default: init)."""
    st = start[0] if start else model.init()
    out = [st]
    for i in path:
        legal, st = model.step(st, ops[i].input, ops[i].output)
        out.append(st)
    return out


__all__ = ["Outcome", "search", "replay", "UNKNOWN"]
