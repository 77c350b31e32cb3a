"""Shrinking: make a failing trace small while the same property keeps failing.

Structural passes first (:mod:`treadle.shrink.structural`: a smaller configuration, whole
faults, the causal slice, whole client operations), repeated to a fixpoint; then positional ones
(:mod:`treadle.shrink.positional`: single steps by event identity, the plain choice list); then
the structural ones again, until nothing gets smaller. Every candidate is a full replay, so what
is kept is always a real failing run, and the budget is counted in runs
(:mod:`treadle.shrink.core`): the same trace shrinks to the same bytes everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from treadle.errors import TraceMismatch, TreadleError
from treadle.renamed import renamed
from treadle.shrink import positional, structural
from treadle.shrink.core import (
    FIXPOINT,
    INTERRUPTED,
    STOP_MESSAGES,
    OutOfBudget,
    Shrinker,
)
from treadle.shrink.pool import CandidatePool
from treadle.system import System, get_system
from treadle.trace import Trace

#: candidate runs a shrink may spend unless told otherwise
DEFAULT_RUNS = 4000
#: the wall-time safety bound, in seconds (a bound, not the budget)
DEFAULT_SECONDS = 300.0

_NOT_GIVEN: Any = object()  # max_seconds=None meant no bound, so None cannot mean "not given"

__all__ = ["DEFAULT_RUNS", "DEFAULT_SECONDS", "STOP_MESSAGES", "shrink", "shrink_report"]


def _fixpoint(sh: Shrinker) -> None:
    """Run the passes in order; after any pass that made progress start again from the first
    (structural) one, so cheap, large cuts are retried before costly, small ones. Ends when a
    whole round changes nothing: no single pass can make the trace smaller."""
    passes = structural.PASSES + positional.PASSES
    while True:
        for p in passes:
            if p(sh):
                break
        else:
            return


def shrink(
    system: str | System,
    trace: Trace,
    runs: int | None = None,
    time: float | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    max_runs: int | None = None,
    max_seconds: Any = _NOT_GIVEN,
    max_attempts: int | None = None,
    workers: int = 1,
    executor: Executor | None = None,
) -> Trace:
    """Minimize ``trace`` (its configuration, steps, client operations and choices) while the
    same property keeps failing. Spends at most ``runs`` candidate runs (default
    :data:`DEFAULT_RUNS`); ``time`` is a safety bound only, in seconds (default
    :data:`DEFAULT_SECONDS`; ``math.inf``: none). The keywords are ``treadle shrink``'s
    ``--runs``, ``--time`` and ``--workers``; ``max_runs`` (and the older ``max_attempts``) and
    ``max_seconds`` are deprecated aliases. Ctrl-C stops it with the best trace so far.
    ``shrink_report(result)`` says how it ended.

    ``workers`` > 1 runs candidates on a process pool of that many workers (``executor``: on
    that executor), a batch at a time; the result is the same bytes as with one
    (:mod:`treadle.shrink.pool`). A system workers cannot find (built inside a function) is
    shrunk here, one candidate at a time."""
    if isinstance(system, str):
        system = get_system(system)
    runs = renamed("shrink", "max_attempts", "runs", "--runs", max_attempts, runs)
    runs = renamed("shrink", "max_runs", "runs", "--runs", max_runs, runs)
    if max_seconds is not _NOT_GIVEN:  # its None meant "no time bound"
        old = math.inf if max_seconds is None else max_seconds
        time = renamed("shrink", "max_seconds", "time", "--time", old, time)
    if trace.violation is None:
        raise TreadleError("this trace records no violation: nothing to shrink towards")
    budget = DEFAULT_RUNS if runs is None else runs
    seconds = DEFAULT_SECONDS if time is None else time
    pool: CandidatePool | None = None
    if workers > 1 or executor is not None:
        try:
            pool = CandidatePool(system, max(workers, 2), executor)
        except TreadleError:
            pool = None  # not importable by workers: one at a time, the same result
    try:
        return _shrink(
            system, trace, budget, None if seconds == math.inf else seconds, progress, pool
        )
    finally:
        if pool is not None:
            pool.close()


def _shrink(
    system: System,
    trace: Trace,
    max_runs: int,
    max_seconds: float | None,
    progress: Callable[[str], None] | None,
    pool: CandidatePool | None,
) -> Trace:
    assert trace.violation is not None
    sh = Shrinker(system, trace, max_runs, max_seconds, progress, pool)
    prop = sh.prop
    try:
        started = sh.start()
    except OutOfBudget:
        started = False
    if not started:
        raise TraceMismatch(
            f"trace does not match system {trace.system}: replaying it no longer violates {prop!r}"
        )
    try:
        _fixpoint(sh)
        sh.stopped = FIXPOINT
    except OutOfBudget:
        pass
    except KeyboardInterrupt:
        sh.stopped = INTERRUPTED
    r = sh.best_run
    assert r is not None and r.violation is not None and sh.stopped is not None
    extra = dict(trace.extra)
    extra["shrink"] = {"runs": sh.runs, "stopped": sh.stopped}
    return Trace.of_run(
        trace.system,
        trace.system_version,
        trace.bug,
        sh.cfg,
        trace.seed,
        trace.strategy,
        r,
        sh.choices,
        steps=sh.steps,
        violation=_without_timings(r.violation.to_json()),
        # a trace shrunk again keeps the size of the run it first came from
        shrunk_from=trace.shrunk_from
        or {
            "choices": len(trace.choices),
            "steps": trace.steps,
            "client_ops": sh.original_ops,
        },
        extra=extra,
    )


def _without_timings(x: Any) -> Any:
    """A checker's verdict without the wall time it took (``elapsed_s``): the rest is a pure
    function of the run, and a shrunk trace must be the same bytes on every machine."""
    if isinstance(x, dict):
        return {k: _without_timings(v) for k, v in x.items() if k != "elapsed_s"}
    if isinstance(x, list):
        return [_without_timings(v) for v in x]
    return x


def shrink_report(t: Trace) -> dict[str, object]:
    """How a shrink ended: {"runs", "stopped", "minimal", "message"}."""
    info = dict(t.extra.get("shrink") or {})
    stopped = str(info.get("stopped", ""))
    return {
        "runs": info.get("runs"),
        "stopped": stopped,
        "minimal": stopped == FIXPOINT,
        "message": STOP_MESSAGES.get(stopped, ""),
    }
