"""Shrinking: minimize a failing trace's choices and steps while the same property keeps failing."""

from __future__ import annotations

import time
from collections.abc import Callable

from treadle import history as hist
from treadle.errors import TraceMismatch, TreadleError
from treadle.runner import RunResult, run_once
from treadle.schedule import Schedule, ScheduleRecorder, ScheduleReplay, Step
from treadle.strategies import Replay
from treadle.system import System
from treadle.trace import Trace


def _same_failure(r: RunResult, prop: str) -> bool:
    return r.violation is not None and r.violation.property == prop


def _trim(choices: list[int]) -> list[int]:
    """Drop trailing zeros: past the end of a choice list every choice is 0 anyway."""
    while choices and choices[-1] == 0:
        choices.pop()
    return choices


def _shortlex(a: list[int], b: list[int]) -> bool:
    """a is simpler than b."""
    return (len(a), a) < (len(b), b)


def shrink(
    system: System,
    trace: Trace,
    max_seconds: float = 30.0,
    max_attempts: int = 50_000,
    progress: Callable[[str], None] | None = None,
) -> Trace:
    """Minimize the choice list (and the step count) while the same property keeps failing.

    Passes, repeated to a fixpoint: delete whole steps of the schedule, matched by event identity
    (:mod:`treadle.schedule`), and clear single steps' sub-choices; then, on the plain choice
    list, delete chunks (delta debugging, big chunks first, from the end), zero chunks, lower
    single values, and lower the step bound. Every candidate is a full replay, so what is kept is
    always a real failing run.
    """
    if trace.violation is None:
        raise TreadleError("this trace records no violation: nothing to shrink towards")
    prop = trace.violation["property"]
    deadline = time.monotonic() + max_seconds
    attempts = 0
    original = (len(trace.choices), trace.steps)

    def run(choices: list[int], steps: int) -> tuple[list[int], int, RunResult] | None:
        nonlocal attempts
        attempts += 1
        rep = Replay(choices)
        r = run_once(system, trace.config, trace.bug, rep, steps)
        if not _same_failure(r, prop):
            return None
        return _trim(choices[: rep.pos]), r.steps, r

    first = run(list(trace.choices), trace.steps)
    if first is None:
        raise TraceMismatch(
            f"trace does not match system {trace.system}: replaying it no longer violates {prop!r}"
        )
    best, best_steps, best_run = first

    def budget() -> bool:
        return attempts < max_attempts and time.monotonic() < deadline

    def consider(cand: list[int], steps: int) -> bool:
        nonlocal best, best_steps, best_run
        if not budget():
            return False
        got = run(cand, steps)
        if got is None:
            return False
        c, s, r = got
        if _shortlex(c, best) or (c == best and s < best_steps):
            best, best_steps, best_run = c, s, r
            return True
        return False

    def schedule_of(choices: list[int], steps: int) -> Schedule:
        rec = ScheduleRecorder(Replay(choices))
        run_once(system, trace.config, trace.bug, rec, steps)
        return rec.schedule

    def consider_schedule(sched: Schedule) -> bool:
        nonlocal best, best_steps, best_run, attempts
        if not budget():
            return False
        attempts += 1
        rep = ScheduleReplay(sched)
        r = run_once(system, trace.config, trace.bug, rep, best_steps)
        if not _same_failure(r, prop):
            return False
        c = _trim(rep.choices)
        if _shortlex(c, best) or (c == best and r.steps < best_steps):
            best, best_steps, best_run = c, r.steps, r
            return True
        return False

    def shrink_schedule() -> bool:
        """Delete whole steps (by event identity, so the others keep their meaning), then
        clear the sub-choices of single steps."""
        changed = False
        sched = schedule_of(best, best_steps)
        size = max(1, len(sched.steps) // 2)
        while size >= 1 and budget():
            i = len(sched.steps) - size
            while i >= 0 and budget():
                cand = Schedule(sched.prelude, sched.steps[:i] + sched.steps[i + size :])
                if consider_schedule(cand):
                    changed = True
                    sched = schedule_of(best, best_steps)
                    i = min(i, len(sched.steps)) - size
                else:
                    i -= size
            size //= 2
        for k in range(len(sched.steps) - 1, -1, -1):
            if not budget():
                break
            if k < len(sched.steps) and sched.steps[k].subs:
                steps = list(sched.steps)
                steps[k] = Step(steps[k].key, [])
                if consider_schedule(Schedule(sched.prelude, steps)):
                    changed = True
                    sched = schedule_of(best, best_steps)
        return changed

    improved = True
    while improved and budget():
        improved = shrink_schedule()
        # 1. delete chunks
        size = max(1, len(best) // 2)
        while size >= 1 and budget():
            i = len(best) - size
            while i >= 0 and budget():
                if consider(best[:i] + best[i + size :], best_steps):
                    improved = True
                i -= size
            size //= 2
        # 2. zero chunks
        size = max(1, len(best) // 2)
        while size >= 1 and budget():
            i = 0
            while i < len(best) and budget():
                chunk = best[i : i + size]
                if any(chunk):
                    if consider(best[:i] + [0] * len(chunk) + best[i + size :], best_steps):
                        improved = True
                i += size
            size //= 2
        # 3. lower single values (binary search towards 0)
        i = 0
        while i < len(best) and budget():
            v = best[i]
            if v > 1:
                lo, hi = 0, v
                while lo < hi and budget():
                    mid = (lo + hi) // 2
                    cand = list(best)
                    if i < len(cand):
                        cand[i] = mid
                    if consider(cand, best_steps):
                        improved = True
                        hi = mid
                    else:
                        lo = mid + 1
                    if i >= len(best) or best[i] != v:
                        break
            i += 1
        # 4. lower the step bound (matters for checks that run at the end of a run)
        lo, hi = 1, best_steps
        while lo < hi and budget():
            mid = (lo + hi) // 2
            got = run(best, mid)
            if got is not None:
                best_steps = mid
                best_run = got[2]
                hi = mid
                improved = True
            else:
                lo = mid + 1
        if progress:
            progress(f"shrinking: {len(best)} choices, {best_steps} steps ({attempts} attempts)")
    found = best_run.violation
    assert found is not None
    return Trace(
        system=trace.system,
        system_version=trace.system_version,
        bug=trace.bug,
        config=trace.config,
        seed=trace.seed,
        strategy=trace.strategy,
        steps=best_steps,
        choices=best,
        violation=found.to_json(),
        history_sha256=hist.digest(best_run.history),
        events=len(best_run.history),
        shrunk_from={"choices": original[0], "steps": original[1]},
        extra=trace.extra,
    )
