"""Shrink candidates run on workers, with the result a single process gives.

A shrinking pass tries candidates one after another and keeps the first that still fails and is
smaller; after a kept one it builds its next candidates from the new best. Most candidates are
rejected, so the next few candidates of a pass are, most of the time, exactly the ones it would
try next: :meth:`treadle.shrink.core.Shrinker.first` runs a batch of them at once (one per
worker), then walks the batch *in the pass's order* and keeps the first one that qualifies, as
the serial loop would have. The candidates after it in the batch were built from a best that is
no longer the best: they are discarded and neither counted in the budget nor remembered as
rejected, so the budget, the kept candidate and the final trace are those of ``workers=1``.

A worker finds the system again by its entry point or module
(:func:`treadle.parallel.worker_locator`) and sends back a small :class:`Outcome`; the parent
re-runs the one candidate it keeps, to have its world (a run is a pure function of its inputs,
and the history digest is compared to make sure).
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from typing import Any

from treadle import history as hist
from treadle.run import run_once
from treadle.shrink.schedule import Schedule, ScheduleReplay
from treadle.strategies import Replay


@dataclass(frozen=True)
class Outcome:
    """What the parent needs to judge a candidate run without its world."""

    #: the violated property, or None
    prop: str | None
    #: every step of the run (settling and audits included), client operations
    step_count: int
    client_ops: int
    #: the choices that replay it (trimmed), and the run's steps
    choices: tuple[int, ...]
    steps: int
    history_sha256: str


def run_candidate(
    system: Any,
    bug: str | None,
    data: list[int] | Schedule,
    cfg: dict[str, Any],
    steps: int,
    refusable: bool,
) -> tuple[Any, list[int]] | None:
    """Run one candidate (a choice list or a schedule): (RunResult, its trimmed choices), or
    None when a configuration the system refuses made it raise (``refusable``)."""
    from treadle.shrink.core import trim

    chooser = ScheduleReplay(data) if isinstance(data, Schedule) else Replay(list(data))
    try:
        r = run_once(system, cfg, bug, chooser, steps)
    except Exception:
        if not refusable:
            raise
        return None
    if isinstance(chooser, ScheduleReplay):
        return r, trim(chooser.choices)
    return r, trim(list(data[: chooser.pos]))


def evaluate(
    where: dict[str, Any],
    bug: str | None,
    data: list[int] | Schedule,
    cfg: dict[str, Any],
    steps: int,
    refusable: bool,
) -> Outcome | None:
    """A worker's task: run one candidate and describe the run."""
    from treadle.parallel import _system_for
    from treadle.shrink.core import client_ops

    out = run_candidate(_system_for(where), bug, data, cfg, steps, refusable)
    if out is None:
        return None
    r, choices = out
    return Outcome(
        r.violation.property if r.violation is not None else None,
        r.world.step_count,
        client_ops(r.history),
        tuple(choices),
        r.steps,
        hist.digest(r.history),
    )


class CandidatePool:
    """Workers for shrink candidates: a process pool of ``workers`` (or a given executor)."""

    def __init__(self, system: Any, workers: int, executor: cf.Executor | None = None):
        from treadle.parallel import process_pool, worker_locator

        self.where = worker_locator(system)  # a TreadleError if workers cannot find it
        self.workers = workers
        self._own = executor is None
        self.executor: cf.Executor = executor if executor is not None else process_pool(workers)

    def submit(
        self,
        bug: str | None,
        data: list[int] | Schedule,
        cfg: dict[str, Any],
        steps: int,
        refusable: bool,
    ) -> cf.Future[Outcome | None]:
        return self.executor.submit(evaluate, self.where, bug, data, cfg, steps, refusable)

    def close(self) -> None:
        if self._own:
            from treadle.parallel import _kill_pool

            assert isinstance(self.executor, cf.ProcessPoolExecutor)
            _kill_pool(self.executor)
