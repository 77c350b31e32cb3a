"""Positional passes, after the structural ones: single steps, then the plain choice list.

* delete steps of the schedule by event identity (ddmin: big chunks first, from the end), and
  clear single steps' sub-choices;
* on the plain choice list: delete chunks, zero chunks, lower single values (binary search
  towards 0), and lower the step bound (matters for checks run at the end of a run).
"""

from __future__ import annotations

from treadle.shrink.core import Shrinker
from treadle.shrink.schedule import Schedule, Step


def delete_steps(sh: Shrinker) -> bool:
    """ddmin over the schedule's steps: chunks of half the steps, then quarters, ... single
    steps, from the end. After a kept deletion the scan goes on from where it was."""
    changed = False
    sched = sh.schedule()
    size = max(1, len(sched.steps) // 2)
    while size >= 1:
        i = len(sched.steps) - size
        while i >= 0:
            s = sched
            hit = sh.first(
                (j, sh.schedule_candidate(Schedule(s.prelude, s.steps[:j] + s.steps[j + size :])))
                for j in range(i, -1, -size)
            )
            if hit is None:
                break
            changed = True
            sched = sh.schedule()
            i = min(hit, len(sched.steps)) - size
        size //= 2
    return changed


def clear_sub_choices(sh: Shrinker) -> bool:
    changed = False
    sched = sh.schedule()
    k = len(sched.steps) - 1
    while k >= 0:
        s = sched

        def cleared(j: int, s: Schedule = s) -> Schedule:
            steps = list(s.steps)
            t = steps[j]
            steps[j] = Step(t.key, [], [], t.node, t.consumed, t.created, t.history)
            return Schedule(s.prelude, steps)

        hit = sh.first(
            (j, sh.schedule_candidate(cleared(j)))
            for j in range(min(k, len(s.steps) - 1), -1, -1)
            if any(s.steps[j].subs)
        )
        if hit is None:
            break
        changed = True
        sched = sh.schedule()
        k = hit - 1
    return changed


def delete_choice_chunks(sh: Shrinker) -> bool:
    changed = False
    size = max(1, len(sh.choices) // 2)
    while size >= 1:
        i = len(sh.choices) - size
        while i >= 0:
            best = sh.choices
            hit = sh.first(
                (j, sh.choices_candidate(best[:j] + best[j + size :])) for j in range(i, -1, -size)
            )
            if hit is None:
                break
            changed = True
            i = hit - size
        size //= 2
    return changed


def zero_choice_chunks(sh: Shrinker) -> bool:
    changed = False
    size = max(1, len(sh.choices) // 2)
    while size >= 1:
        i = 0
        while i < len(sh.choices):
            best = sh.choices
            hit = sh.first(
                (
                    j,
                    sh.choices_candidate(
                        best[:j] + [0] * len(best[j : j + size]) + best[j + size :]
                    ),
                )
                for j in range(i, len(best), size)
                if any(best[j : j + size])
            )
            if hit is None:
                break
            changed = True
            i = hit + size
        size //= 2
    return changed


def lower_values(sh: Shrinker) -> bool:
    changed = False
    i = 0
    while i < len(sh.choices):
        v = sh.choices[i]
        if v > 1:
            lo, hi = 0, v
            while lo < hi:
                mid = (lo + hi) // 2
                cand = list(sh.choices)
                cand[i] = mid
                if sh.try_choices(cand):
                    changed = True
                    hi = v = mid
                else:
                    lo = mid + 1
                if i >= len(sh.choices) or sh.choices[i] != v:
                    break  # the list changed shape: move on
        i += 1
    return changed


def lower_step_bound(sh: Shrinker) -> bool:
    changed = False
    lo, hi = 1, sh.steps
    while lo < hi:
        mid = (lo + hi) // 2
        if sh.try_choices(list(sh.choices), steps=mid):
            changed = True
            hi = mid
        else:
            lo = mid + 1
    return changed


PASSES = (
    lower_step_bound,
    delete_steps,
    clear_sub_choices,
    lower_values,
    delete_choice_chunks,
    zero_choice_chunks,
)
