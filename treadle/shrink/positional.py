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
    changed = False
    sched = sh.schedule()
    size = max(1, len(sched.steps) // 2)
    while size >= 1:
        i = len(sched.steps) - size
        while i >= 0:
            cand = Schedule(sched.prelude, sched.steps[:i] + sched.steps[i + size :])
            if sh.try_schedule(cand):
                changed = True
                sched = sh.schedule()
                i = min(i, len(sched.steps)) - size
            else:
                i -= size
        size //= 2
    return changed


def clear_sub_choices(sh: Shrinker) -> bool:
    changed = False
    sched = sh.schedule()
    for k in range(len(sched.steps) - 1, -1, -1):
        if k < len(sched.steps) and any(sched.steps[k].subs):
            steps = list(sched.steps)
            s = steps[k]
            steps[k] = Step(s.key, [], [], s.node, s.consumed, s.created, s.history)
            if sh.try_schedule(Schedule(sched.prelude, steps)):
                changed = True
                sched = sh.schedule()
    return changed


def delete_choice_chunks(sh: Shrinker) -> bool:
    changed = False
    size = max(1, len(sh.choices) // 2)
    while size >= 1:
        i = len(sh.choices) - size
        while i >= 0:
            best = sh.choices
            if sh.try_choices(best[:i] + best[i + size :]):
                changed = True
            i -= size
        size //= 2
    return changed


def zero_choice_chunks(sh: Shrinker) -> bool:
    changed = False
    size = max(1, len(sh.choices) // 2)
    while size >= 1:
        i = 0
        while i < len(sh.choices):
            best = sh.choices
            chunk = best[i : i + size]
            if any(chunk) and sh.try_choices(best[:i] + [0] * len(chunk) + best[i + size :]):
                changed = True
            i += size
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
