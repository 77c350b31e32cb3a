"""Runs of many seeds: in this process, on a process pool, or on any ``concurrent.futures``
executor (a Dask cluster's included), with results that do not depend on where they ran.

A run is a pure function of (system, config, bug, strategy, steps, seed): a worker gets exactly
that (a :class:`RunSpec` and a list of seeds; the system is found again by its entry-point name or
its module, never pickled) and sends back one small :class:`SeedRun` per seed. :class:`SeedRuns`
hands them to the caller *in seed order*, whatever order the workers finish in, so the caller's
loop is the serial loop: it counts the same runs, stops at the same (lowest) violating seed, and
shrinks and saves in the parent. Past a violation it submits nothing further and discards what
was run beyond it; with a time budget it stops submitting at the deadline and waits for the runs
in flight, so every seed it reports was run to its end.

A worker that dies (its process killed, out of memory) loses no result: the pool is restarted
and every chunk that had not come back is submitted again; on a Dask cluster the scheduler
re-runs a lost worker's tasks itself, and a task it gave up on is submitted again here.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import multiprocessing.context as _mpc
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from treadle import condcov
from treadle import history as hist
from treadle.checkers.result import CheckResult
from treadle.errors import Nondeterminism, TreadleError
from treadle.options import run_config
from treadle.strategies import Recorder, Replay, Strategy, make_strategy
from treadle.system import System
from treadle.trace import Trace

#: restarts of a broken pool (or resubmissions after lost workers) before giving up
MAX_RESTARTS = 5
#: aim for chunks of about this much work: long enough to hide the per-task cost, short enough
#: that a time budget or a violation stops the workers soon
CHUNK_SECONDS = 0.2
MAX_CHUNK = 256

CLIENT_TYPES = frozenset({"invoke", "ok", "fail", "info"})
FAULT_EVENTS = frozenset({"crash", "restart", "partition", "heal"})


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to run seeds: all plain, picklable data."""

    #: how to find the system: ``{"name": ...}`` (entry point) or its module (see
    #: :func:`treadle.determinism.locate`)
    where: dict[str, Any]
    config: dict[str, Any]
    bug: str | None
    strategy: str
    max_steps: int
    #: the exploration's first seed: the determinism sample is by run index (seed - first_seed)
    first_seed: int = 0
    check_determinism: bool = False
    #: count event kinds and faults per run (campaigns)
    coverage: bool = False
    #: a learning strategy's corpus, frozen for this generation of seeds (treadle.generations)
    corpus: Any = None
    #: system options each run draws from its seed (:mod:`treadle.options`): key -> values
    options: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def run_config(self, seed: int) -> dict[str, Any]:
        """The configuration of the run with ``seed`` (its drawn options included)."""
        return run_config(self.config, self.options, seed)


@dataclass
class SeedRun:
    """One run's outcome, small enough to send back from a worker."""

    seed: int
    steps: int
    events: int
    unknown: bool
    violation: CheckResult | None = None
    #: the run's choices and history digest, kept when it violated
    choices: list[int] | None = None
    history_sha256: str | None = None
    strategy_run: dict[str, Any] | None = None
    #: determinism self-check: the run was replayed in its process; (choices, whole-run digest)
    #: when it is in the sample replayed under other hash seeds
    det_sample: tuple[list[int], str] | None = None
    #: campaigns: history event types and faults seen, with counts
    coverage: dict[str, dict[str, int]] | None = None
    #: sometimes-assertions evaluated: name -> step of the first hit (None: never true)
    sometimes: dict[str, int | None] | None = None
    #: a learning strategy's coverage of the run: feature -> choice position of its first hit
    #: (with ``choices`` kept for every run)
    features: dict[Any, int] | None = None
    #: what else a learning strategy keeps of the run besides its choices (its fault mix)
    meta: Any = None
    #: the run's configuration (its drawn options included), kept when it violated
    config: dict[str, Any] | None = None

    def trace(self, system: System, spec: RunSpec, **extra: Any) -> Trace:
        """The trace of this violating run, under its own configuration (drawn options
        included); ``extra`` goes beside its strategy's description."""
        assert self.violation is not None
        return Trace(
            system=system.name,
            system_version=system.version,
            bug=spec.bug,
            config=self.config or spec.config,
            seed=self.seed,
            strategy=spec.strategy,
            steps=self.steps,
            choices=self.choices or [],
            violation=self.violation.to_json(),
            history_sha256=self.history_sha256 or "",
            events=self.events,
            extra={"strategy_run": self.strategy_run or {}, **extra},
        )


@dataclass
class _SeedError:
    """A run that raised (a checker's bug, nondeterminism): raised again in the parent when the
    caller reaches this seed."""

    seed: int
    error: BaseException


# ---------------------------------------------------------------------------------------- one seed
class _CountingRecorder(Recorder):
    """Records choices and counts message fates (drops and duplicates are faults too)."""

    def __init__(self, inner: Strategy, config: dict[str, Any]):
        super().__init__(inner)
        self.drops = 0
        self.duplicates = 0
        # the world delivers a fate its configuration does not allow (a mutated choice list
        # may ask for one): only the fates that happen are counted
        self.may_drop = (config.get("drop_rate") or 0) > 0
        self.may_duplicate = (config.get("duplicate_rate") or 0) > 0

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = self.inner.choose(kind, n, options)
        self.choices.append(v)
        if kind == "fate":
            if v == 1 and self.may_drop:
                self.drops += 1
            elif v == 2 and self.may_duplicate:
                self.duplicates += 1
        return v


def run_seed(system: System, spec: RunSpec, strategy: Strategy, seed: int) -> SeedRun:
    """Run one seed (in whichever process this is)."""
    from treadle.determinism import divergence, in_sample, log_digest, run_log
    from treadle.run import run_once

    if strategy.learns:
        strategy.bind_system(system)
    config = spec.run_config(seed)
    if strategy.learns and spec.options:
        # a guided child runs under its parent's options (what reached the state it resumes from)
        config = strategy.run_options(seed, config, spec.options)
    log = spec.check_determinism
    # a learning run's condition features are recorded process-wide (treadle.condcov): one
    # such run at a time per process, also when an executor runs chunks in threads
    with condcov.RUN_LOCK if strategy.learns else contextlib.nullcontext():
        strategy.begin_run(seed, config, spec.max_steps)
        rec = _CountingRecorder(strategy, config) if spec.coverage else Recorder(strategy)
        on_step = strategy.observer(rec.choices) if strategy.learns else None
        r = run_once(system, config, spec.bug, rec, spec.max_steps, log_steps=log, on_step=on_step)
        features = strategy.run_features() if strategy.learns else None
    out = SeedRun(seed, r.steps, len(r.history), r.unknown is not None)
    if r.world.sometimes_seen:
        out.sometimes = dict(r.world.sometimes_seen)
    if strategy.learns:
        out.features = features
        out.choices = rec.choices
        out.meta = strategy.run_meta()
    if r.violation is not None:
        out.violation = r.violation
        out.choices = rec.choices
        out.history_sha256 = hist.digest(r.history)
        out.strategy_run = strategy.describe_run()
        out.config = config
        if spec.options:
            out.strategy_run["options"] = {k: config[k] for k in sorted(spec.options)}
    if log:
        again = run_once(system, config, spec.bug, Replay(list(rec.choices)), spec.max_steps, True)
        msg = divergence(run_log(r), run_log(again), "the run", "its replay")
        if msg:
            raise Nondeterminism(f"seed {seed}: {msg}")
        if in_sample(seed - spec.first_seed) or r.violation is not None:
            out.det_sample = (list(rec.choices), log_digest(run_log(r)))
            if spec.options and config != spec.run_config(seed):
                out.config = config  # not the seed's own draw: the replays need it
    if spec.coverage:
        assert isinstance(rec, _CountingRecorder)
        kinds: dict[str, int] = {}
        for ev in r.history:
            t = ev.get("type")
            if isinstance(t, str):
                kinds[t] = kinds.get(t, 0) + 1
        faults = {k: kinds[k] for k in FAULT_EVENTS if k in kinds}
        if rec.drops:
            faults["drop"] = rec.drops
        if rec.duplicates:
            faults["duplicate"] = rec.duplicates
        protocol = {k: v for k, v in kinds.items() if k not in CLIENT_TYPES | FAULT_EVENTS}
        out.coverage = {"faults": faults, "events": protocol}
        if out.strategy_run is None:
            out.strategy_run = strategy.describe_run()
            if spec.options:
                out.strategy_run["options"] = {k: config[k] for k in sorted(spec.options)}
    return out


class PickledCorpus:
    """A generation's corpus, pickled once in the parent: every chunk of the generation carries
    these bytes (a copy, cheap) instead of the corpus object (pickled again per chunk, which
    costs as much as the runs once the corpus has grown); each worker unpickles a generation's
    corpus once (:func:`strategy_for`)."""

    __slots__ = ("key", "data")

    def __init__(self, corpus: Any):
        import hashlib

        self.data = pickle.dumps(corpus, protocol=pickle.HIGHEST_PROTOCOL)
        self.key = hashlib.sha256(self.data).hexdigest()

    def __getstate__(self) -> tuple[str, bytes]:
        return self.key, self.data

    def __setstate__(self, state: tuple[str, bytes]) -> None:
        self.key, self.data = state


#: this process's unpickled corpora, by key (the last few generations)
_corpora: dict[str, Any] = {}


def strategy_for(spec: RunSpec) -> Strategy:
    """The strategy of ``spec``, with the generation's corpus when it learns."""
    strategy = make_strategy(spec.strategy)
    corpus = spec.corpus
    if isinstance(corpus, PickledCorpus):
        loaded = _corpora.get(corpus.key)
        if loaded is None:
            if len(_corpora) >= 2:
                _corpora.pop(next(iter(_corpora)))
            loaded = _corpora[corpus.key] = pickle.loads(corpus.data)
        corpus = loaded
    if corpus is not None:
        strategy.load_corpus(corpus)
    return strategy


# ---------------------------------------------------------------------------------------- worker side
_systems: dict[str, System] = {}


def _system_for(where: dict[str, Any]) -> System:
    import json

    from treadle.determinism import _load_system

    key = json.dumps(where, sort_keys=True)
    sys_obj = _systems.get(key)
    if sys_obj is None:
        sys_obj = _systems[key] = _load_system(where)
    return sys_obj


def _portable(e: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else one that says the same."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        cls = TreadleError if isinstance(e, TreadleError) else RuntimeError
        return cls(f"{type(e).__name__}: {e}")


def run_chunk(spec: RunSpec, seeds: list[int]) -> tuple[float, list[SeedRun | _SeedError]]:
    """A worker's task: run ``seeds`` in order, stopping at the first that raises. Returns the
    seconds it took (to size later chunks) and the runs."""
    t0 = time.perf_counter()
    system = _system_for(spec.where)
    strategy = strategy_for(spec)
    out: list[SeedRun | _SeedError] = []
    for seed in seeds:
        try:
            out.append(run_seed(system, spec, strategy, seed))
        except Exception as e:
            out.append(_SeedError(seed, _portable(e)))
            break
    return time.perf_counter() - t0, out


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle: it stops the workers itself and reports exact counts
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_locator(system: System) -> dict[str, Any]:
    """How a worker (another process, maybe another machine) finds ``system``: by its
    entry-point name, or the module that defines it. A system built inside a function, or
    defined in the script being run, cannot be found there."""
    from treadle.determinism import locate

    try:
        where = locate(system)
    except TreadleError:
        where = {"module": None}
    if "module" in where and where["module"] in (None, "__main__"):
        raise TreadleError(
            f"system {system.name!r} cannot run on workers: they find a system by its entry "
            "point (group treadle.systems) or the module that defines it at top level, and this "
            "one is "
            + (
                "defined in the script being run"
                if where.get("module")
                else "built inside a function"
            )
            + "; move it into a module, or use workers=1"
        )
    return where


# ---------------------------------------------------------------------------------------- executors
def default_workers() -> int:
    """The machine's cores (those this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _HiddenMain:
    """While a worker process starts, hide the parent's ``__main__`` from multiprocessing, so
    the child does not import it: workers find the system by entry point or module, and a user's
    script that calls ``explore(workers=2)`` need not guard itself with ``if __name__ ==
    "__main__"`` (multiprocessing would otherwise run it again in every worker)."""

    def __enter__(self) -> None:
        self.main = sys.modules.get("__main__")
        if self.main is None:
            return
        d = self.main.__dict__
        self.saved: dict[str, Any] = {k: d[k] for k in ("__file__", "__spec__") if k in d}
        d.pop("__file__", None)
        d["__spec__"] = None

    def __exit__(self, *exc: Any) -> None:
        if self.main is not None:
            d = self.main.__dict__
            d.pop("__spec__", None)
            d.update(self.saved)


def _pool_context() -> Any:
    """How workers start. A process with no other thread forks them (a tenth of a second, and
    they have everything the parent imported); beside other threads, whose locks a fork could
    copy mid-use, they come from a fork server (one fresh interpreter per process, with treadle
    and the installed systems imported once) and start without the parent's ``__main__``; spawn
    where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods and sys.platform != "darwin":
        return multiprocessing.get_context("fork")
    if hasattr(_mpc, "ForkServerContext"):
        ctx = _ForkServerContext()
        ctx.set_forkserver_preload(["treadle._preload"])
        return ctx
    return _SpawnContext()  # pragma: no cover (platforms without fork)


class _SpawnProcess(_mpc.SpawnProcess):  # type: ignore[name-defined, misc]
    def start(self) -> None:
        with _HiddenMain():
            super().start()


class _SpawnContext(_mpc.SpawnContext):  # type: ignore[name-defined, misc]
    Process = _SpawnProcess


if hasattr(_mpc, "ForkServerContext"):

    class _ForkServerProcess(_mpc.ForkServerProcess):  # type: ignore[name-defined, misc]
        def start(self) -> None:
            with _HiddenMain():
                super().start()

    class _ForkServerContext(_mpc.ForkServerContext):  # type: ignore[name-defined, misc]
        Process = _ForkServerProcess


def process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` processes for :func:`run_chunk`; they ignore Ctrl-C."""
    return cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=_pool_context(), initializer=_worker_init
    )


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except Exception:
            pass
    for p in procs:
        try:
            p.join(5)
        except Exception:
            pass
    # let the pool's manager thread finish too: left running, it races the interpreter's exit
    # hook, which then writes to the pipe the thread has just closed and prints a traceback
    # ("OSError: Bad file descriptor") after treadle's one-line error
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(5)


def _worker_lost(e: BaseException) -> bool:
    """Did the task fail because its worker went away (not because of what it ran)?"""
    if isinstance(e, cf.BrokenExecutor):
        return True
    return type(e).__name__ in ("KilledWorker", "CommClosedError", "WorkerLost")


def lost_work(fut: cf.Future[Any], what: str) -> BaseException | None:
    """None if ``fut`` succeeded; its error if its worker went away or it was cancelled (its
    work is to be run again); a :class:`TreadleError` naming ``what`` if the work itself failed."""
    err: BaseException | None = cf.CancelledError() if fut.cancelled() else fut.exception()
    if err is not None and not (_worker_lost(err) or isinstance(err, cf.CancelledError)):
        raise TreadleError(f"a worker failed {what}: {type(err).__name__}: {err}") from err
    return err


@dataclass
class _Chunk:
    seeds: list[int]
    submitted: float = 0.0


@dataclass
class PoolStats:
    workers: int = 1
    executor: str = "in-process"
    #: runs done beyond the reported ones (past a violation), discarded
    runs_discarded: int = 0
    #: times the pool was restarted (or chunks resubmitted) after a worker died
    restarts: int = 0
    chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "executor": self.executor,
            "runs_discarded": self.runs_discarded,
            "worker_restarts": self.restarts,
        }


class LocalPool:
    """The process pool treadle makes (and may restart): shared by the SeedRuns of one
    exploration (e.g. the generations of a learning strategy), killed by :meth:`close`."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None
        #: seconds and runs measured so far on this pool's workers (sizes the next chunks)
        self.run_time = 0.0
        self.run_count = 0

    def get(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = process_pool(self.workers)
        return self._pool

    def restart(self) -> None:
        """Drop a broken pool; the next :meth:`get` starts a fresh one."""
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            _kill_pool(self._pool)
            self._pool = None


class SeedRuns:
    """Iterate over the runs of seeds ``first, first+1, ...`` in seed order.

    ``runs``: how many seeds (None: until ``deadline``, a ``time.monotonic()`` value; at least one
    run starts). ``stop_at_violation``: submit nothing past the lowest violating seed known (the
    caller stops there). ``workers`` 1 without ``executor``: every run in this process, one at a
    time, as the serial loop always did. ``pool``: a :class:`LocalPool` to use (and leave open)
    instead of making one. Use as a context manager (or call :meth:`close`): it stops and cleans
    up the workers when the caller leaves the loop early."""

    def __init__(
        self,
        system: System,
        spec: RunSpec,
        first: int,
        runs: int | None,
        deadline: float | None,
        workers: int = 1,
        executor: cf.Executor | None = None,
        stop_at_violation: bool = True,
        pool: LocalPool | None = None,
    ):
        if runs is None and deadline is None:
            raise ValueError("SeedRuns needs runs or a deadline")
        self.system, self.spec = system, spec
        self.first, self.runs, self.deadline = first, runs, deadline
        self.workers = max(1, int(workers))
        self.executor = executor
        self.stop_at_violation = stop_at_violation
        self.stats = PoolStats(workers=self.workers)
        self._owns_pool = pool is None
        self._pool = pool if pool is not None else LocalPool(self.workers)
        self._pending: dict[cf.Future[Any], _Chunk] = {}
        self._closed = False

    @property
    def parallel(self) -> bool:
        return self.executor is not None or self.workers > 1

    def __enter__(self) -> SeedRuns:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[SeedRun]:
        if not self.parallel:
            return self._in_process()
        return self._distributed()

    # -------------------------------------------------------------- in process
    def _in_process(self) -> Iterator[SeedRun]:
        strategy = strategy_for(self.spec)
        n = 0
        while True:
            if self.runs is not None and n >= self.runs:
                return
            if self.deadline is not None and n and time.monotonic() >= self.deadline:
                return
            yield run_seed(self.system, self.spec, strategy, self.first + n)
            n += 1

    # -------------------------------------------------------------- on workers
    def _executor(self) -> cf.Executor:
        if self.executor is not None:
            self.stats.executor = type(self.executor).__name__
            return self.executor
        self.stats.executor = "process-pool"
        return self._pool.get()

    def _submit(self, seeds: list[int]) -> None:
        fut = self._executor().submit(run_chunk, self.spec, seeds)
        self._pending[fut] = _Chunk(seeds, time.monotonic())
        self.stats.chunks += 1

    def _restart(self, why: BaseException, seeds: list[int]) -> None:
        self.stats.restarts += 1
        if self.stats.restarts > MAX_RESTARTS:
            raise TreadleError(
                f"workers died {self.stats.restarts} times (last while running seeds "
                f"{seeds[0]}..{seeds[-1]}: {type(why).__name__}: {why}); a run may be killing "
                "its process (os._exit, a signal, running out of memory): try --workers 1"
            ) from None
        if self.executor is None and isinstance(why, cf.BrokenExecutor):
            self._pool.restart()
        elif self.executor is not None and isinstance(why, cf.BrokenExecutor):
            raise TreadleError(
                f"the executor broke while running seeds {seeds[0]}..{seeds[-1]} ({why}); "
                "treadle cannot restart an executor it did not create"
            ) from None

    def _distributed(self) -> Iterator[SeedRun]:
        done: dict[int, SeedRun | _SeedError] = {}
        next_yield = next_seed = self.first
        limit = self.first + self.runs if self.runs is not None else None
        stop_at: int | None = None  # the lowest violating (or raising) seed known
        timing = self._pool  # the estimate lives as long as the pool (across generations)
        in_flight = 2 * self.workers
        while True:
            # hand over every result that is next in seed order
            while next_yield in done:
                item = done.pop(next_yield)
                if isinstance(item, _SeedError):
                    raise item.error
                next_yield += 1
                yield item
            if limit is not None and next_yield >= limit:
                return
            if stop_at is not None and next_yield > stop_at:
                self.stats.runs_discarded += len(done)
                return
            # keep every worker busy
            while len(self._pending) < in_flight:
                if limit is not None and next_seed >= limit:
                    break
                if stop_at is not None and next_seed > stop_at:
                    break
                if (
                    self.deadline is not None
                    and next_seed > self.first
                    and time.monotonic() >= self.deadline
                ):
                    break
                size = 1
                if timing.run_count:
                    size = int(CHUNK_SECONDS / max(timing.run_time / timing.run_count, 1e-6))
                if limit is not None:  # balance the tail: no worker left with a long last chunk
                    size = min(size, max(1, (limit - next_seed) // (2 * self.workers)))
                size = max(1, min(MAX_CHUNK, size))
                if limit is not None:
                    size = min(size, limit - next_seed)
                if stop_at is not None:
                    size = min(size, stop_at + 1 - next_seed)
                self._submit(list(range(next_seed, next_seed + size)))
                next_seed += size
            if not self._pending:
                return  # nothing more will come (budget spent)
            finished, _ = cf.wait(list(self._pending), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            resubmit: list[list[int]] = []
            for fut in finished:
                chunk = self._pending.pop(fut, None)
                if chunk is None:
                    continue  # lost with a broken pool, already resubmitted
                err = lost_work(fut, f"running seeds {chunk.seeds[0]}..{chunk.seeds[-1]}")
                if err is not None:
                    lost = [chunk.seeds]
                    if isinstance(err, cf.BrokenExecutor):  # the pool's other chunks went too
                        lost += [c.seeds for c in self._pending.values()]
                        self._pending.clear()
                    self._restart(err, chunk.seeds)
                    resubmit.extend(lost)
                    continue
                elapsed, results = fut.result()
                if results:
                    timing.run_time += elapsed
                    timing.run_count += len(results)
                for item in results:
                    if item.seed < next_yield or item.seed in done:
                        continue  # a resubmitted chunk's duplicate
                    if stop_at is not None and item.seed > stop_at:
                        self.stats.runs_discarded += 1
                        continue
                    done[item.seed] = item
                    bad = isinstance(item, _SeedError) or (
                        self.stop_at_violation and item.violation is not None
                    )
                    if bad and (stop_at is None or item.seed < stop_at):
                        stop_at = item.seed
                if stop_at is not None:
                    self._drop_beyond(stop_at)
            for seeds in resubmit:
                seeds = [s for s in seeds if (stop_at is None or s <= stop_at) and s not in done]
                if seeds:
                    self._submit(seeds)

    def _drop_beyond(self, stop_at: int) -> None:
        """Cancel the chunks that hold only seeds past the lowest violation."""
        for fut, chunk in list(self._pending.items()):
            if chunk.seeds[0] > stop_at:
                fut.cancel()
                self._pending.pop(fut)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        if self._owns_pool:
            self._pool.close()


# ---------------------------------------------------------------------------------------- helpers
def executor_from_name(
    name: str, dask_address: str | None = None
) -> tuple[cf.Executor | None, int | None, Any]:
    """``process`` (None: treadle makes its own pool) or ``dask`` (an existing cluster, at
    ``dask_address`` or ``$TREADLE_DASK_ADDRESS``). Returns (executor, its parallelism, the object
    to close afterwards)."""
    if name in ("process", "processes", "local"):
        return None, None, None
    if name != "dask":
        raise TreadleError(f"unknown executor {name!r}; known: process, dask")
    address = dask_address or os.environ.get("TREADLE_DASK_ADDRESS")
    if not address:
        raise TreadleError(
            "--executor dask needs the scheduler's address: --dask-address tcp://HOST:PORT "
            "or TREADLE_DASK_ADDRESS"
        )
    try:
        from distributed import Client
    except ImportError:
        raise TreadleError(
            "--executor dask needs Dask distributed: pip install 'treadle[dask]'"
        ) from None
    try:
        client = Client(address, timeout=10, set_as_default=False)
    except Exception as e:
        text = " ".join(str(e).split())[:200]
        raise TreadleError(
            f"cannot connect to the Dask scheduler at {address}: {type(e).__name__}: {text}"
        ) from None
    threads = sum(client.nthreads().values()) or 1
    return client.get_executor(pure=False), threads, client


def choose_workers(requested: int | None, system: System, runs: int | None) -> int:
    """The command line's worker count: as asked; by default the machine's cores, but no more
    than the runs asked for, and 1 for a system workers could not import (registered in-process,
    e.g. by a test), which then runs here as it always did."""
    if requested is not None:
        return requested
    n = default_workers()
    if runs is not None:
        n = min(n, runs)
    if n > 1:
        try:
            worker_locator(system)
        except TreadleError:
            return 1
    return n


@contextlib.contextmanager
def cli_executor(
    workers: int | None, name: str, dask_address: str | None
) -> Iterator[tuple[int, cf.Executor | None]]:
    """The command line's ``--workers/--executor/--dask-address``: (workers, executor) for
    :func:`treadle.runner.explore`, and the Dask client closed afterwards."""
    executor, threads, closer = executor_from_name(name, dask_address)
    try:
        if executor is not None:
            yield (workers or threads or 1), executor
        else:
            yield (workers or default_workers()), None
    finally:
        if closer is not None:
            try:
                closer.close()
            except Exception:
                pass
