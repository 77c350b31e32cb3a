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
import uuid
from collections import OrderedDict, deque
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
    #: names this search: a worker keeps the worlds it made for this search only
    search_id: str = ""


@dataclass
class BatchResult:
    seconds: float
    expansions: list[Expansion]
    #: the worker's hash seed differs and the search uses symmetry: nothing was expanded
    hash_mismatch: bool = False
    #: states whose world came from the worker's keep (not replayed)
    kept_hits: int = 0


class Sealed:
    """A fingerprint as a worker sends it: its ``hash()`` (the same in this process: the
    workers share its hash seed, or they send the fingerprint itself) and its pickle. It equals
    the fingerprint it seals: equal pickles are equal fingerprints; otherwise (a frozenset
    built in another order, a hash collision) both are unpickled and compared, so merging stays
    exact. The coordinator never rebuilds a fingerprint it only stores (unpickling one means
    hashing every message in it again, a dataclass's ``__hash__`` in Python: as costly as
    computing it)."""

    __slots__ = ("h", "b", "_value")

    def __init__(self, h: int, b: bytes) -> None:
        self.h, self.b = h, b
        self._value: Any = None

    def __getstate__(self) -> tuple[int, bytes]:
        return self.h, self.b

    def __setstate__(self, state: tuple[int, bytes]) -> None:
        self.h, self.b = state
        self._value = None

    def __hash__(self) -> int:
        return self.h

    def value(self) -> Any:
        if self._value is None:
            self._value = pickle.loads(self.b)
        return self._value

    def __eq__(self, other: object) -> bool:
        if type(other) is Sealed:
            return self.b == other.b or self.value() == other.value()
        return self.value() == other


# ------------------------------------------------------------------------------ worker side
_explorers: dict[bytes, Explorer] = {}
#: the successor worlds this process made, by (parent state, transition position): a state whose
#: parent was expanded here needs no replay (oldest dropped first)
_kept: OrderedDict[tuple[int, int], World] = OrderedDict()
_kept_hashes: set[int] = set()  # hash(fingerprint) of each world kept: one world per state
_kept_search = [""]
MAX_KEPT = 20_000


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
    if _kept_search[0] != spec.search_id:
        _kept.clear()
        _kept_hashes.clear()
        _kept_search[0] = spec.search_id
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
    trie: list[tuple[int, tuple[int, ...], tuple[int, int]]],
    targets: list[tuple[int, tuple[Any, ...], int, int]],
) -> BatchResult:
    """A worker's task. ``trie``: (parent entry or -1 for an initial state, the transition's
    choices, (parent state, transition position)), parents first; ``targets``: (trie entry,
    meta, depth, state number) of the states to expand, in order. A state whose world this
    process kept (it expanded the parent) is not replayed. Stops after an expansion that ends
    the search."""
    t0 = time.perf_counter()
    ex = _explorer_for(spec)
    if ex.groups and hash(_PROBE) != spec.probe:
        return BatchResult(0.0, [], hash_mismatch=True)
    out: list[Expansion] = []
    hits = 0
    try:
        worlds: list[World | None] = [None] * len(trie)

        def build(j: int) -> World:
            nonlocal hits
            chain = []
            while worlds[j] is None:
                got = _kept.pop(trie[j][2], None)
                if got is not None:
                    worlds[j] = got
                    hits += 1
                    break
                chain.append(j)
                if trie[j][0] < 0:
                    break
                j = trie[j][0]
            for k in reversed(chain):
                parent, choices, _ = trie[k]
                if parent < 0:
                    worlds[k] = root_world(ex, choices)
                else:
                    worlds[k] = step_world(ex, worlds[parent], choices)  # type: ignore[arg-type]
            return worlds[chain[0] if chain else j]  # type: ignore[return-value]

        same_seed = hash(_PROBE) == spec.probe
        shared: dict[Any, Any] = {}
        for entry, meta, depth, idx in targets:
            exp = expand(ex, build(entry), meta, depth, keep_worlds=True)
            steps = []
            for k, (ch, viol, fp, *rest, w2) in enumerate(exp.steps):
                if fp is not None:
                    h = hash(fp)
                    if h not in _kept_hashes:  # the first world of each state made here
                        _kept_hashes.add(h)
                        _kept[(idx, k)] = w2
                    # the fingerprint travels pickled either way: a state that cannot be is
                    # one clear error here, not a pickling error of the whole batch's result
                    try:
                        b = pickle.dumps(fp, pickle.HIGHEST_PROTOCOL)
                    except Exception as e:
                        raise TreadleError(
                            "bfs on workers sends state fingerprints to the coordinator, "
                            f"and a successor of state {idx} cannot be pickled "
                            f"({type(e).__name__}: {e}); make node state() plain data, "
                            "or use --workers 1"
                        ) from None
                    if same_seed:
                        fp = Sealed(h, shared.setdefault(b, b))  # equal bytes sent once
                    else:
                        fp = shared.setdefault(fp, fp)  # equal fingerprints sent once
                steps.append((ch, viol, fp, *rest, None))
            exp.steps = steps
            out.append(exp)
            if exp.stops:
                break
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    except Exception as e:
        from treadle.parallel import _portable

        err = Expansion("error")
        err.error = _portable(e)
        out.append(err)
    return BatchResult(time.perf_counter() - t0, out, kept_hits=hits)


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
class _Lanes:
    """Where batches run. treadle's own pool is one single-process pool per worker, so that a
    state goes to the worker that expanded its parent and kept its world (a lane); an executor
    given by the caller is one lane (which process runs a task is its choice)."""

    def __init__(self, workers: int, executor: cf.Executor | None) -> None:
        from treadle.parallel import LocalPool

        self.given = executor
        self.pools = [LocalPool(1) for _ in range(workers)] if executor is None else []
        self.n = len(self.pools) or 1
        #: tasks in flight per lane that keep it busy
        self.depth = 2 * workers // self.n
        self.fallback: cf.Executor | None = None

    def start(self) -> None:
        """Start every lane's process before any pool starts its manager thread: forked from a
        process with no other thread (as :func:`treadle.parallel._pool_context` wants), they
        all share this process's hash seed (symmetric fingerprints need it)."""
        pools = [p.get() for p in self.pools]
        for pool in pools:
            launch = getattr(pool, "_launch_processes", None)
            if launch is not None and getattr(pool, "_executor_manager_thread", 1) is None:
                try:
                    launch()
                except Exception:
                    pass  # the pool starts its process itself at the first task

    def executor(self, lane: int) -> cf.Executor:
        if self.fallback is not None:
            return self.fallback
        if self.given is not None:
            return self.given
        return self.pools[lane].get()

    def restart(self, lane: int) -> bool:
        if self.given is not None and self.fallback is None:
            return False
        if self.pools:
            self.pools[lane].restart()
        return True

    def close(self) -> None:
        for p in self.pools:
            p.close()


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
    from treadle.parallel import lost_work

    rep = report if report is not None else {}
    rep.update(workers=workers, executor="process-pool" if executor is None else "", batches=0)
    rep.update(states_on_workers=0, replayed=0, worker_restarts=0)
    if executor is not None:
        rep["executor"] = type(executor).__name__
    g = StateGraph(ex, "bfs")
    st = g.st
    lanes = _Lanes(workers, executor)
    spec = SearchSpec(
        where, ex.cfg, ex.bug, {**ex.bounds, "max_depth": ex.max_depth}, bool(ex.groups),
        hash(_PROBE), uuid.uuid4().hex,
    )  # fmt: skip
    #: in flight: future -> (lane, states, the task's arguments)
    pending: dict[cf.Future[Any], tuple[int, list[int], tuple[Any, ...]]] = {}
    busy = [0] * lanes.n
    results: dict[int, Expansion] = {}
    metas: dict[int, tuple[Any, ...]] = {}
    owner: dict[int, int] = {}  # state -> the lane that expanded its parent (kept its world)
    queues: list[deque[int]] = [deque() for _ in range(lanes.n)]  # numbered, not yet handed out
    worker_seconds = 0.0  # measured on the workers: sizes the batches
    measured = 0
    restarts = 0

    def submit(lane: int, idxs: list[int], args: tuple[Any, ...]) -> None:
        fut = lanes.executor(lane).submit(expand_batch, *args)
        pending[fut] = (lane, idxs, args)
        busy[lane] += 1
        rep["batches"] += 1

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
        for i, idx in enumerate(sorted(worlds)):
            metas[idx] = worlds[idx][1]
            queues[i * lanes.n // max(1, len(worlds))].append(idx)  # contiguous runs per lane
        worlds.clear()
        lanes.start()

        while nxt < len(g.parent):
            # hand out numbered states: to the lane that kept their worlds; an idle lane with
            # none of its own takes the lowest-numbered ones of the longest queue
            for lane in range(lanes.n):
                while busy[lane] < lanes.depth:
                    per_state = worker_seconds / measured if measured else 0.0
                    size = 32 if not measured else int(BATCH_SECONDS / max(per_state, 1e-6))
                    size = max(1, min(MAX_BATCH, size))
                    q = queues[lane]
                    if not q and busy[lane] == 0:
                        q = max(queues, key=len)
                    if not q or (len(q) < size and busy[lane] > 0):
                        break  # let more states pile up while this lane is busy
                    idxs = [q.popleft() for _ in range(min(size, len(q)))]
                    submit(lane, idxs, (spec, *_batch(g, idxs, metas)))
            # merge what is next in order
            while nxt in results:
                exp = results.pop(nxt)
                ex.tick(f"bfs: {st.states} states, depth {g.depth_of[nxt]}, on {workers} workers")
                found, fresh, stop = g.merge(nxt, exp)
                lane = owner.pop(nxt, 0)
                nxt += 1
                if found is not None:
                    return found
                if stop:
                    raise _Stop
                for idx, _, meta2 in fresh:
                    metas[idx] = meta2
                    queues[lane].append(idx)
            if nxt >= len(g.parent):
                break
            if not pending:
                if any(queues):
                    continue  # new states to hand out
                raise TreadleError(f"internal error: state {nxt} was never expanded")
            done, _ = cf.wait(list(pending), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            ex.tick(f"bfs: {st.states} states, on {workers} workers")  # --time, progress
            for fut in sorted(done, key=lambda f: pending[f][1][0]):
                if fut not in pending:
                    continue  # lost with its pool, or run again here: already resubmitted
                lane, idxs, args = pending.pop(fut)
                busy[lane] -= 1
                err = lost_work(fut, f"expanding states {idxs[0]}..{idxs[-1]}")
                if err is not None:
                    restarts += 1
                    rep["worker_restarts"] = restarts
                    if restarts > MAX_RESTARTS:
                        raise TreadleError(
                            f"workers died {restarts} times (last expanding states "
                            f"{idxs[0]}..{idxs[-1]}): try --workers 1"
                        ) from None
                    lost = [(lane, idxs, args)]
                    if isinstance(err, cf.BrokenExecutor):
                        if not lanes.restart(lane):
                            raise TreadleError(
                                f"the executor broke ({err}); treadle cannot restart an "
                                "executor it did not create"
                            ) from None
                        for f2, item in list(pending.items()):
                            if item[0] == lane:  # the same pool: lost with it
                                pending.pop(f2)
                                busy[lane] -= 1
                                lost.append(item)
                    for item in lost:
                        submit(*item)
                    continue
                res: BatchResult = fut.result()
                if res.hash_mismatch:
                    # symmetric fingerprints on another hash seed would merge differently
                    lanes.fallback = _InProcess()
                    rep["executor"] = "in-process"
                    rep["note"] = (
                        "symmetry reduction breaks ties by hash(), and the workers run under "
                        "another hash seed than this process: the search ran in this process"
                    )
                    again = [(lane, idxs, args)] + list(pending.values())
                    pending.clear()
                    busy[:] = [0] * lanes.n
                    for item in again:
                        submit(*item)
                    continue
                measured += len(res.expansions)
                worker_seconds += res.seconds
                rep["states_on_workers"] += len(res.expansions)
                rep["replayed"] += len(res.expansions) - res.kept_hits
                for idx, exp in zip(idxs, res.expansions):
                    results[idx] = exp
                    owner[idx] = lane  # its successors' worlds are kept on that lane
    except _Stop:
        pass
    finally:
        for fut in pending:
            fut.cancel()
        lanes.close()
    g.finish()
    return None


def _batch(
    g: StateGraph, idxs: list[int], metas: dict[int, tuple[Any, ...]]
) -> tuple[
    list[tuple[int, tuple[int, ...], tuple[int, int]]], list[tuple[int, tuple[Any, ...], int, int]]
]:
    """The trie of the paths to ``idxs`` (parents first; each entry names where a worker may
    have kept its world) and the targets."""
    local: dict[int, int] = {}
    trie: list[tuple[int, tuple[int, ...], tuple[int, int]]] = []
    targets = []
    parent, slot = g.parent, g.slot
    for t in idxs:
        chain = []
        i = t
        while i >= 0 and i not in local:
            chain.append(i)
            i = parent[i][0]
        for j in reversed(chain):
            p, ch = parent[j]
            local[j] = len(trie)
            trie.append((local[p] if p >= 0 else -1, ch, (p, slot[j])))
        targets.append((local[t], metas.pop(t), g.depth_of[t], t))
    return trie, targets
