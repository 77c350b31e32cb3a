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
from collections.abc import Callable
from typing import Any

from treadle.run import RunResult, run_once
from treadle.shrink.schedule import Schedule, ScheduleRecorder, ScheduleReplay
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
    ):
        assert trace.violation is not None
        self.system = system
        self.trace = trace
        self.prop: str = trace.violation["property"]
        self.max_runs = max_runs
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.progress = progress
        self.runs = 0
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

    def _offer(self, cfg: dict[str, Any], r: RunResult | None, choices: list[int]) -> bool:
        if not self._fails(r):
            return False
        assert r is not None
        if self.key(cfg, r, choices) >= self.best_key:
            return False
        if cfg is not self.cfg:
            self._rejected.clear()  # judged under another configuration
        self.cfg, self.best_run, self.choices, self.steps = cfg, r, choices, r.steps
        self._schedule = None
        return True

    def try_choices(
        self, choices: list[int], cfg: dict[str, Any] | None = None, steps: int | None = None
    ) -> bool:
        same_cfg = cfg is None or cfg is self.cfg
        cfg = self.cfg if cfg is None else cfg
        steps = self.steps if steps is None else steps
        memo = (tuple(trim(list(choices))), steps)
        if same_cfg and memo in self._rejected:
            return False
        rep = Replay(choices)
        r = self._run(rep, cfg, steps)
        if self._offer(cfg, r, trim(list(choices[: rep.pos]))):
            return True
        if same_cfg:  # runs are deterministic and the best only gets smaller: rejected for good
            self._rejected.add(memo)
        return False

    def try_schedule(self, sched: Schedule, cfg: dict[str, Any] | None = None) -> bool:
        cfg = self.cfg if cfg is None else cfg
        rep = ScheduleReplay(sched)
        # a smaller configuration may need more steps to get there: allow the original bound
        steps = self.steps if cfg is self.cfg else max(self.steps, self.trace.steps)
        r = self._run(rep, cfg, steps)
        return self._offer(cfg, r, trim(rep.choices))

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
