"""Runs of a learning strategy (guided, mixed), in generations, so that where they ran does not
change them.

A coverage-guided search learns from every run, which makes run k depend on runs 0..k-1. To keep
runs pure functions of (system, config, seed, corpus) wherever they run, the corpus changes only
between *generations* of :data:`GENERATION` seeds: every run of a generation uses the corpus as it
stood at the generation's start, and the parent adds the generation's runs to it in seed order
before the next one starts. One process, a pool or a Dask cluster then give the same runs, the
same violating seed and the same trace; the price is that a discovery helps from the next
generation on, not from the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from treadle import condcov
from treadle.parallel import LocalPool, PickledCorpus, PoolStats, RunSpec, SeedRun, SeedRuns
from treadle.strategies import Strategy
from treadle.system import System

#: seeds per generation: small enough that a discovery is used soon, large enough to keep two
#: workers busy between the parent's updates of the corpus
GENERATION = 16


class GenerationRuns:
    """Like :class:`treadle.parallel.SeedRuns` (runs in seed order, a context manager), for a
    learning strategy: ``strategy`` is the parent's instance, which holds the corpus and learns
    from every run the caller receives."""

    def __init__(
        self,
        system: System,
        spec: RunSpec,
        strategy: Strategy,
        first: int,
        runs: int | None,
        deadline: float | None,
        workers: int = 1,
        executor: cf.Executor | None = None,
    ):
        self.system, self.spec, self.strategy = system, spec, strategy
        self.first, self.runs, self.deadline = first, runs, deadline
        self.workers, self.executor = max(1, int(workers)), executor
        self.stats = PoolStats(workers=self.workers)
        self._pool = LocalPool(self.workers)  # one pool for every generation (restartable)
        self._current: SeedRuns | None = None
        strategy.bind_system(system)

    @property
    def parallel(self) -> bool:
        return self.executor is not None or self.workers > 1

    def __enter__(self) -> GenerationRuns:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[SeedRun]:
        n = 0
        while self.runs is None or n < self.runs:
            if self.deadline is not None and n and time.monotonic() >= self.deadline:
                return
            k = GENERATION if self.runs is None else min(GENERATION, self.runs - n)
            corpus = self.strategy.snapshot()
            if self.parallel:  # pickled once per generation, not once per chunk
                corpus = PickledCorpus(corpus)
            spec = replace(self.spec, corpus=corpus)
            src = SeedRuns(
                self.system,
                spec,
                self.first + n,
                k,
                self.deadline,
                self.workers,
                self.executor,
                pool=self._pool,
            )
            self._current = src
            with src:
                for r in src:
                    n += 1
                    self.strategy.learn(r.choices or [], r.features or {}, r.meta)
                    yield r
            self._add_stats(src.stats)
            self._current = None
            if src.stats.runs_discarded or (self.deadline and time.monotonic() >= self.deadline):
                return

    def _add_stats(self, s: PoolStats) -> None:
        self.stats.runs_discarded += s.runs_discarded
        self.stats.restarts += s.restarts
        self.stats.chunks += s.chunks
        if s.executor != "in-process":
            self.stats.executor = s.executor

    def close(self) -> None:
        if self._current is not None:
            self._add_stats(self._current.stats)
            self._current.close()
            self._current = None
        self._pool.close()
        # the node code this process ran instrumented goes back to its own (workers' processes
        # end with their pool; one an executor keeps runs the same code, only slower)
        condcov.disable()
