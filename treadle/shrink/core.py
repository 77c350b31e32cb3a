"""The shrinker's state: the best failing run so far, the budget, and how candidates are judged.

Every candidate is a full run (from a choice list or a schedule, under the best configuration or
a smaller one); it is kept only if it violates the same property and is *simpler*: smaller in
the order (steps, settling included; client operations; the system's shrinkable config values, number of choices,
the choices themselves). Every kept candidate is strictly smaller in a well-founded order, so the
passes reach a fixpoint. The budget is counted in candidate runs, so the result is the same on
every machine; a wall-time cap exists only as a safety bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from treadle import history as hist
from treadle.errors import Nondeterminism
from treadle.run import RunResult, run_once
from treadle.shrink.pool import CandidatePool, Outcome, run_candidate
from treadle.shrink.schedule import Schedule, ScheduleRecorder
from treadle.strategies import Replay
from treadle.system import System
from treadle.trace import Trace

#: why shrinking ended, as reported
FIXPOINT = "fixpoint"
RUNS = "runs"
TIME = "time"
INTERRUPTED = "interrupted"

STOP_MESSAGES = {
    FIXPOINT: "shrinking reached a fixpoint: no pass makes it smaller",
    RUNS: "shrinking stopped by its run budget: not minimal",
    TIME: "shrinking stopped by time: not minimal",
    INTERRUPTED: "shrinking interrupted: not minimal",
}


@dataclass
class Candidate:
    """One run to try: a choice list or a schedule, under a configuration, up to a bound."""

    data: list[int] | Schedule
    cfg: dict[str, Any]
    steps: int
    #: the memo of a plain candidate under the best configuration (rejected ones are not rerun)
    memo: tuple[tuple[int, ...], int] | None


class OutOfBudget(Exception):
    """Raised inside a pass when the budget is spent; the best so far stands."""


def trim(choices: list[int]) -> list[int]:
    """Drop trailing zeros: past the end of a choice list every choice is 0 anyway."""
    while choices and choices[-1] == 0:
        choices.pop()
    return choices


def client_ops(history: list[dict[str, Any]]) -> int:
    return sum(1 for e in history if e.get("type") == "invoke" and "process" in e)


class Shrinker:
    def __init__(
        self,
        system: System,
        trace: Trace,
        max_runs: int,
        max_seconds: float | None,
        progress: Callable[[str], None] | None = None,
        pool: CandidatePool | None = None,
    ):
        assert trace.violation is not None
        #: workers for candidates (None: one at a time, here)
        self.pool = pool
        self.system = system
        self.trace = trace
        self.prop: str = trace.violation["property"]
        self.max_runs = max_runs
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.progress = progress
        self.runs = 0
        #: search smaller configurations with fresh runs (once; treadle.shrink.search)
        self.search = True
        self.stopped: str | None = None
        self.shrink_keys = [k for k in getattr(system, "shrink_config", {}) if k in trace.config]
        self.cfg: dict[str, Any] = dict(trace.config)
        self.choices: list[int] = list(trace.choices)
        self.steps = trace.steps
        self.best_run: RunResult | None = None
        self._schedule: Schedule | None = None
        self.original_ops = 0
        #: shrinkable config values (in shrink_keys order) that did not fail -> the best run's
        #: steps when they were tried
        self.failed_configs: dict[tuple[Any, ...], int] = {}
        #: plain candidates already run and rejected: (choices, steps), under the best config
        self._rejected: set[tuple[tuple[int, ...], int]] = set()

    # ------------------------------------------------------------------ budget
    def spend(self) -> None:
        if self.runs >= self.max_runs:
            self.stopped = RUNS
            raise OutOfBudget
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = TIME
            raise OutOfBudget
        self.runs += 1

    # ------------------------------------------------------------------ order
    def key(self, cfg: dict[str, Any], r: RunResult, choices: list[int]) -> tuple[Any, ...]:
        weight = tuple(cfg[k] for k in self.shrink_keys)
        # every step a reader walks through: the run's and, after it, settling and audits
        return (r.world.step_count, client_ops(r.history), weight, len(choices), choices)

    @property
    def best_key(self) -> tuple[Any, ...]:
        assert self.best_run is not None
        return self.key(self.cfg, self.best_run, self.choices)

    # ------------------------------------------------------------------ runs
    def _run(self, chooser: Any, cfg: dict[str, Any], steps: int) -> RunResult | None:
        self.spend()
        if cfg is self.cfg:
            return run_once(self.system, cfg, self.trace.bug, chooser, steps)
        try:  # a smaller configuration the system may refuse (one node too few ...)
            return run_once(self.system, cfg, self.trace.bug, chooser, steps)
        except Exception:
            return None

    def _fails(self, r: RunResult | None) -> bool:
        return r is not None and r.violation is not None and r.violation.property == self.prop

    def start(self) -> bool:
        """Replay the trace as given; False if it no longer fails."""
        rep = Replay(list(self.choices))
        self.runs += 1  # the replay of the trace itself: always allowed
        r = run_once(self.system, self.cfg, self.trace.bug, rep, self.steps)
        if not self._fails(r):
            return False
        assert r is not None
        self.best_run = r
        self.original_ops = client_ops(r.history)
        self.choices = trim(self.choices[: rep.pos])
        self.steps = r.steps
        return True

    def _accept(self, cfg: dict[str, Any], r: RunResult, choices: list[int]) -> None:
        if cfg is not self.cfg:
            self._rejected.clear()  # judged under another configuration
        self.cfg, self.best_run, self.choices, self.steps = cfg, r, choices, r.steps
        self._schedule = None

    # ------------------------------------------------------------------ candidates
    def choices_candidate(
        self, choices: list[int], cfg: dict[str, Any] | None = None, steps: int | None = None
    ) -> Candidate | None:
        """A run from a plain choice list (None: already run and rejected under this config)."""
        same_cfg = cfg is None or cfg is self.cfg
        cfg = self.cfg if cfg is None else cfg
        steps = self.steps if steps is None else steps
        memo = (tuple(trim(list(choices))), steps) if same_cfg else None
        if memo is not None and memo in self._rejected:
            return None
        return Candidate(list(choices), cfg, steps, memo)

    def schedule_candidate(self, sched: Schedule, cfg: dict[str, Any] | None = None) -> Candidate:
        """A run driven by a schedule (events matched by identity)."""
        cfg = self.cfg if cfg is None else cfg
        # a smaller configuration may need more steps to get there: allow the original bound
        steps = self.steps if cfg is self.cfg else max(self.steps, self.trace.steps)
        return Candidate(sched, cfg, steps, None)

    def first(self, tagged: Iterable[tuple[Any, Candidate | None]]) -> Any:
        """Run candidates in order until one fails the same way and is smaller; keep it and
        return its tag (None if none qualifies). Candidates are built from the best as it is
        now, so none after a kept one is run. With workers, a batch runs at once and the first
        that qualifies *in this order* is kept: the same one, for the same runs counted, as
        one at a time (:mod:`treadle.shrink.pool`)."""
        it = ((t, c) for t, c in tagged if c is not None)
        if self.pool is None:
            for tag, c in it:
                self.spend()
                out = run_candidate(
                    self.system, self.trace.bug, c.data, c.cfg, c.steps, c.cfg is not self.cfg
                )
                if self._judge(c, out):
                    return tag
            return None
        return self._first_parallel(it)

    def _judge(self, c: Candidate, out: tuple[RunResult, list[int]] | None) -> bool:
        if out is not None:
            r, choices = out
            if self._fails(r) and self.key(c.cfg, r, choices) < self.best_key:
                self._accept(c.cfg, r, choices)
                return True
        if c.memo is not None:  # deterministic runs, a best that only gets smaller: for good
            self._rejected.add(c.memo)
        return False

    def _first_parallel(self, it: Iterator[tuple[Any, Candidate]]) -> Any:
        pool = self.pool
        assert pool is not None
        while True:
            batch: list[tuple[Any, Candidate]] = []
            memos: set[Any] = set()
            room = min(pool.workers, self.max_runs - self.runs)
            for tag, c in it:
                if c.memo is not None and c.memo in memos:
                    continue  # the same run twice: the second only after the first is rejected
                batch.append((tag, c))
                if c.memo is not None:
                    memos.add(c.memo)
                if len(batch) >= max(1, room):
                    break
            if not batch:
                return None
            if room <= 0:
                self.spend()  # out of runs: raises as the serial loop would here
            futures = [
                pool.submit(self.trace.bug, c.data, c.cfg, c.steps, c.cfg is not self.cfg)
                for _, c in batch
            ]
            try:
                for (tag, c), fut in zip(batch, futures):
                    self.spend()
                    o = fut.result()
                    qualifies = (
                        o is not None
                        and o.prop == self.prop
                        and self._key_of(c.cfg, o) < self.best_key
                    )
                    if not qualifies:
                        if c.memo is not None:
                            self._rejected.add(c.memo)
                        continue
                    assert o is not None
                    # the parent needs the run's world: run it here (a pure function of its
                    # inputs; not counted, the worker's run was)
                    again = run_candidate(
                        self.system, self.trace.bug, c.data, c.cfg, c.steps, False
                    )
                    assert again is not None
                    r, choices = again
                    if hist.digest(r.history) != o.history_sha256 or tuple(choices) != o.choices:
                        raise Nondeterminism(
                            "a shrink candidate ran differently on a worker and here: the "
                            "system's runs depend on something besides their choices"
                        )
                    self._accept(c.cfg, r, choices)
                    return tag
            finally:
                for fut in futures:
                    fut.cancel()

    def _key_of(self, cfg: dict[str, Any], o: Outcome) -> tuple[Any, ...]:
        weight = tuple(cfg[k] for k in self.shrink_keys)
        return (o.step_count, o.client_ops, weight, len(o.choices), list(o.choices))

    def try_choices(
        self, choices: list[int], cfg: dict[str, Any] | None = None, steps: int | None = None
    ) -> bool:
        return self.first([(True, self.choices_candidate(choices, cfg, steps))]) is not None

    def try_schedule(self, sched: Schedule, cfg: dict[str, Any] | None = None) -> bool:
        return self.first([(True, self.schedule_candidate(sched, cfg))]) is not None

    def schedule(self) -> Schedule:
        """The schedule of the best run (recorded once per best, a run of the budget)."""
        if self._schedule is None:
            rec = ScheduleRecorder(Replay(list(self.choices)))
            self._run(rec, self.cfg, self.steps)
            self._schedule = rec.schedule
        return self._schedule

    def say(self, what: str) -> None:
        if self.progress:
            self.progress(
                f"shrinking ({what}): {self.steps} steps, {len(self.choices)} choices "
                f"({self.runs} runs)"
            )
