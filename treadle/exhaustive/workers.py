"""BFS on workers, with the serial search's counts and counterexample.

Serial BFS pops states in the order it numbered them (its queue is first in, first out, and
every new state joins it), so "expand state i" for different i are independent pure functions of
the state, and only *merging* their results has to happen in order. Here the coordinator keeps
the one visited set (:class:`~treadle.exhaustive.search.StateGraph`) and hands contiguous runs
of numbered states to workers as soon as they are known (no barrier between BFS levels); each
worker rebuilds its states by replaying their choice paths from the initial state (a batch's
paths share prefixes: the batch is sent as a trie and every shared step runs once) and returns one
:class:`~treadle.exhaustive.search.Expansion` per state: every transition's choices, check
results and the successor's fingerprint, never a world. The coordinator merges them strictly in
state order, dedups by fingerprint, numbers the new states and stops exactly where the serial
search stops (the first violation in BFS order, or a bound). So the states, transitions, history
checks, depth, path counts and the counterexample are the serial search's, for any number of
workers and any ``concurrent.futures`` executor; what ran beyond the stopping point is dropped.

Fingerprints are compared whole (no hash digests: equal fingerprints are equal states, as in
the serial search). Symmetry reduction's canonical form breaks ties by ``hash()``, which depends
on the process's hash seed: workers forked from this process share it; on workers that do not
(a fork server, Dask) the batches run in this process instead, and the result says so.

A worker that dies loses nothing: its batch is submitted again (the pool restarted).
"""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import time
from dataclasses import dataclass
from typing import Any

from treadle.errors import TreadleError
from treadle.exhaustive.bounds import _Stop
from treadle.exhaustive.canon import clone_world
from treadle.exhaustive.explorer import Explorer, Found, _completes
from treadle.exhaustive.search import Expansion, StateGraph, expand
from treadle.world import World

#: states expanded in this process before any worker starts: a small search ends before a pool
#: would have started
LOCAL_STATES = 400
#: aim for batches of about this much work (long enough to hide the per-task cost, short enough
#: to keep every worker busy while the next states are merged)
BATCH_SECONDS = 0.25
MAX_BATCH = 1024
MAX_RESTARTS = 5
_PROBE = "treadle: symmetric fingerprints compare hash() values"


@dataclass(frozen=True)
class SearchSpec:
    """What a worker needs to rebuild the explorer: plain, picklable data."""

    where: dict[str, Any]
    config: dict[str, Any]
    bug: str | None
    bounds: dict[str, Any]
    symmetry: bool
    #: this process's hash of :data:`_PROBE` (symmetric fingerprints need the same hash seed)
    probe: int


@dataclass
class BatchResult:
    seconds: float
    expansions: list[Expansion]
    #: the worker's hash seed differs and the search uses symmetry: nothing was expanded
    hash_mismatch: bool = False


# ------------------------------------------------------------------------------ worker side
_explorers: dict[bytes, Explorer] = {}


def _explorer_for(spec: SearchSpec) -> Explorer:
    from treadle.parallel import _system_for

    key = pickle.dumps((spec.where, spec.config, spec.bug, spec.bounds, spec.symmetry))
    ex = _explorers.get(key)
    if ex is None:
        if len(_explorers) >= 2:
            _explorers.pop(next(iter(_explorers)))
        system = _system_for(spec.where)
        ex = _explorers[key] = Explorer(system, spec.config, spec.bug, spec.bounds, spec.symmetry)
    # caches keyed by object ids: valid while the objects live, i.e. within one batch
    ex._hist_memo.clear()
    ex._rename_cache.clear()
    return ex


def root_world(ex: Explorer, choices: tuple[int, ...]) -> World:
    """The initial state whose start handlers drew ``choices``, built as
    :meth:`Explorer.roots` built it (the checks run too: they may keep memory on the world)."""
    ex.script.reset(list(choices))
    w = World(ex.cfg, ex.bug, ex.servers, ex.clients, ex.script)
    w.start()
    if ex.history_checks and _completes(w.history, 0):
        ex.check_history(w)
    return w


def step_world(ex: Explorer, w: World, choices: tuple[int, ...]) -> World:
    """The successor of ``w`` by the transition with ``choices``, built as
    :meth:`Explorer.transitions` built it: a copy-on-write clone of ``w``, the step, then the
    checks (a checker may keep its memory of the path on the world, e.g. Raft's leaders)."""
    events = w.enabled()
    ev = events[choices[0] if len(events) > 1 else 0]
    w2 = clone_world(w, ev.node)
    ex.script.reset(list(choices))
    w2.chooser = ex.script
    base = len(w2.history)
    w2.step()
    ex.check_invariants(w2)
    if ex.history_checks and _completes(w2.history, base):
        ex.check_history(w2)
    return w2


def expand_batch(
    spec: SearchSpec,
    trie: list[tuple[int, tuple[int, ...]]],
    targets: list[tuple[int, tuple[Any, ...], int]],
) -> BatchResult:
    """A worker's task. ``trie``: (parent entry or -1 for an initial state, the transition's
    choices), parents first; ``targets``: (trie entry, meta, depth) of the states to expand, in
    order. Stops after an expansion that ends the search."""
    t0 = time.perf_counter()
    ex = _explorer_for(spec)
    if ex.groups and hash(_PROBE) != spec.probe:
        return BatchResult(0.0, [], hash_mismatch=True)
    out: list[Expansion] = []
    try:
        worlds: list[World] = []
        for parent, choices in trie:
            worlds.append(
                root_world(ex, choices) if parent < 0 else step_world(ex, worlds[parent], choices)
            )
        shared: dict[Any, Any] = {}
        for entry, meta, depth in targets:
            exp = expand(ex, worlds[entry], meta, depth, keep_worlds=False)
            worlds[entry] = None  # type: ignore[call-overload]
            # equal fingerprints as one object: pickled once, sent once (diamonds in a batch)
            exp.steps = [
                (ch, viol, shared.setdefault(fp, fp) if fp is not None else None, *rest)
                for ch, viol, fp, *rest in exp.steps
            ]
            out.append(exp)
            if exp.stops:
                break
    except Exception as e:
        from treadle.parallel import _portable

        err = Expansion("error")
        err.error = _portable(e)
        out.append(err)
    return BatchResult(time.perf_counter() - t0, out)


class _InProcess(cf.Executor):
    """Runs each task when it is submitted, here (the fallback when workers cannot be used)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        fut: cf.Future[Any] = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:
            fut.set_exception(e)
        return fut


# ------------------------------------------------------------------------------ coordinator
def parallel_bfs(
    ex: Explorer,
    where: dict[str, Any],
    workers: int,
    executor: cf.Executor | None = None,
    report: dict[str, Any] | None = None,
) -> Found | None:
    """BFS with the expansions on ``workers`` processes (or ``executor``); fills ``ex.stats``
    exactly as :func:`treadle.exhaustive.search.search` (``"bfs"``) does, and returns the same
    violation. ``report`` receives the workers' statistics."""
    from treadle.parallel import LocalPool, _worker_lost

    rep = report if report is not None else {}
    rep.update(workers=workers, executor="process-pool" if executor is None else "", batches=0)
    rep.update(states_on_workers=0, worker_restarts=0)
    if executor is not None:
        rep["executor"] = type(executor).__name__
    g = StateGraph(ex, "bfs")
    st = g.st
    pool = LocalPool(workers) if executor is None else None
    spec = SearchSpec(
        where, ex.cfg, ex.bug, {**ex.bounds, "max_depth": ex.max_depth}, bool(ex.groups),
        hash(_PROBE),
    )  # fmt: skip
    pending: dict[cf.Future[Any], tuple[list[int], tuple[Any, ...]]] = {}
    results: dict[int, Expansion] = {}
    metas: dict[int, tuple[Any, ...]] = {}
    run_on: cf.Executor | None = executor
    worker_seconds = 0.0  # measured on the workers: sizes the batches
    measured = 0
    try:
        found, fresh = g.add_roots()
        if found is not None:
            return found
        # the first states here: a small search is over before a pool would have started
        worlds = {idx: (w, meta) for idx, w, meta in fresh}
        nxt = 0  # BFS pops states in index order: the next one to merge
        while nxt < len(g.parent) and len(g.parent) < LOCAL_STATES:
            w, meta = worlds.pop(nxt)
            ex.tick(f"bfs: {st.states} states, depth {g.depth_of[nxt]}")
            found, fresh, stop = g.merge(nxt, expand(ex, w, meta, g.depth_of[nxt], True))
            nxt += 1
            if found is not None:
                return found
            if stop:
                raise _Stop
            for idx, w2, meta2 in fresh:
                worlds[idx] = (w2, meta2)
        metas = {idx: meta for idx, (_, meta) in worlds.items()}
        worlds.clear()
        dispatched = nxt
        restarts = 0

        def submit(idxs: list[int], args: tuple[Any, ...]) -> None:
            nonlocal run_on
            if run_on is None:
                assert pool is not None
                target: cf.Executor = pool.get()
            else:
                target = run_on
            fut = target.submit(expand_batch, *args)
            pending[fut] = (idxs, args)
            rep["batches"] += 1

        while nxt < len(g.parent):
            # hand out the states already numbered, in contiguous batches
            while len(pending) < 2 * workers and dispatched < len(g.parent):
                per_state = worker_seconds / measured if measured else 0.0
                size = 32 if not measured else int(BATCH_SECONDS / max(per_state, 1e-6))
                size = max(1, min(MAX_BATCH, size))
                avail = len(g.parent) - dispatched
                if avail < size and len(pending) >= workers:
                    break  # every worker is busy: let more states pile up
                idxs = list(range(dispatched, dispatched + min(size, avail)))
                dispatched += len(idxs)
                submit(idxs, (spec, *_batch(g, idxs, metas)))
            # merge what is next in order
            while nxt in results:
                exp = results.pop(nxt)
                ex.tick(f"bfs: {st.states} states, depth {g.depth_of[nxt]}, on {workers} workers")
                found, fresh, stop = g.merge(nxt, exp)
                nxt += 1
                if found is not None:
                    return found
                if stop:
                    raise _Stop
                for idx, _, meta2 in fresh:
                    metas[idx] = meta2
            if nxt >= len(g.parent):
                break
            if not pending:
                if dispatched < len(g.parent):
                    continue  # new states to hand out
                raise TreadleError(f"internal error: state {nxt} was never expanded")
            done, _ = cf.wait(list(pending), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            ex.tick(f"bfs: {st.states} states, on {workers} workers")  # --time, progress
            for fut in done:
                idxs, args = pending.pop(fut)
                err = fut.exception() if not fut.cancelled() else cf.CancelledError()
                if err is not None:
                    if not (_worker_lost(err) or isinstance(err, cf.CancelledError)):
                        raise TreadleError(
                            f"a worker failed expanding states {idxs[0]}..{idxs[-1]}: "
                            f"{type(err).__name__}: {err}"
                        ) from err
                    restarts += 1
                    rep["worker_restarts"] = restarts
                    if restarts > MAX_RESTARTS:
                        raise TreadleError(
                            f"workers died {restarts} times (last expanding states "
                            f"{idxs[0]}..{idxs[-1]}): try --workers 1"
                        ) from None
                    lost = [(idxs, args)]
                    if isinstance(err, cf.BrokenExecutor):
                        if pool is None:
                            raise TreadleError(
                                f"the executor broke ({err}); treadle cannot restart an "
                                "executor it did not create"
                            ) from None
                        lost += list(pending.values())
                        pending.clear()
                        pool.restart()
                    for item in lost:
                        submit(*item)
                    continue
                res: BatchResult = fut.result()
                if res.hash_mismatch:
                    # symmetric fingerprints on another hash seed would merge differently
                    run_on = _InProcess()
                    rep["executor"] = "in-process"
                    rep["note"] = (
                        "symmetry reduction breaks ties by hash(), and the workers run under "
                        "another hash seed than this process: the search ran in this process"
                    )
                    again = [(idxs, args)] + list(pending.values())
                    pending.clear()
                    for item in again:
                        submit(*item)
                    continue
                measured += len(res.expansions)
                worker_seconds += res.seconds
                rep["states_on_workers"] += len(res.expansions)
                for idx, exp in zip(idxs, res.expansions):
                    results[idx] = exp
    except _Stop:
        pass
    finally:
        for fut in pending:
            fut.cancel()
        if pool is not None:
            pool.close()
    g.finish()
    return None


def _batch(
    g: StateGraph, idxs: list[int], metas: dict[int, tuple[Any, ...]]
) -> tuple[list[tuple[int, tuple[int, ...]]], list[tuple[int, tuple[Any, ...], int]]]:
    """The trie of the paths to ``idxs`` (parents first) and the targets."""
    local: dict[int, int] = {}
    trie: list[tuple[int, tuple[int, ...]]] = []
    targets = []
    parent = g.parent
    for t in idxs:
        chain = []
        i = t
        while i >= 0 and i not in local:
            chain.append(i)
            i = parent[i][0]
        for j in reversed(chain):
            p, ch = parent[j]
            local[j] = len(trie)
            trie.append((local[p] if p >= 0 else -1, ch))
        targets.append((local[t], metas.pop(t), g.depth_of[t]))
    return trie, targets
