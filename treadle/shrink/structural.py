"""Structural passes: remove whole things a person would name, before any positional pass.

* smaller configuration: fewer clients, operations, nodes, keys, where the system declares the
  key shrinkable (``System.shrink_config``: key -> smallest value worth trying);
* whole faults: a crash with its restart, a partition with its heal, one dropped or duplicated
  message (its fate sub-choice back to "deliver");
* causal slicing: keep only the steps in the happens-before cone of the steps the violation
  names (:mod:`treadle.shrink.causal`);
* whole client operations: the step that invoked one and the chain of messages it caused.

Each pass rebuilds the schedule after every kept candidate, since indexes shift.
"""

from __future__ import annotations

from collections.abc import Iterator

from treadle.shrink import causal
from treadle.shrink.core import Candidate, Shrinker
from treadle.shrink.schedule import Schedule, Step


def smaller_config(sh: Shrinker) -> bool:
    """Lower each shrinkable config key: straight to its floor, else binary search."""
    changed = False
    floors = getattr(sh.system, "shrink_config", {})
    for key in sh.shrink_keys:
        floor = floors[key]
        cur = sh.cfg[key]
        if not isinstance(cur, int) or cur <= floor:
            continue
        if _try_config(sh, {**sh.cfg, key: floor}):
            changed = True
            continue
        lo, hi = floor + 1, cur  # hi: the smallest value known to fail
        while lo < hi:
            mid = (lo + hi) // 2
            if _try_config(sh, {**sh.cfg, key: mid}):
                changed = True
                hi = mid
            else:
                lo = mid + 1
    return changed


def _try_config(sh: Shrinker, cfg: dict[str, object]) -> bool:
    # the best run's schedule, matched by event identity, keeps its meaning best under a new
    # configuration; the plain choice list is the fallback. A configuration that failed is
    # tried again only once the best run is half as long as when it failed (a shorter run
    # often carries over where a long one did not; retrying every round costs too many runs).
    tried = tuple(cfg[k] for k in sh.shrink_keys)
    try:  # the system's rules across keys (replicas <= members ...): a trace must load again
        sh.system.resolve_config(cfg)
    except Exception:
        return False
    assert sh.best_run is not None
    size = sh.best_run.world.step_count
    if tried in sh.failed_configs and size >= sh.failed_configs[tried]:
        return False
    sched = sh.schedule()
    tagged = [
        (True, sh.schedule_candidate(sched, cfg)),
        (True, sh.choices_candidate(list(sh.choices), cfg)),
    ]
    if sh.first(tagged):
        return True
    sh.failed_configs[tried] = size
    return False


def fault_groups(sched: Schedule) -> list[tuple[set[int], list[tuple[int, int]]]]:
    """Each fault as (steps to delete, (step, sub index) fates to clear), in schedule order."""
    steps = sched.steps
    groups: list[tuple[set[int], list[tuple[int, int]]]] = []
    for i, s in enumerate(steps):
        if s.key[0] == "fault" and s.key[1] in ("crash", "partition"):
            closer = (
                ("fault", "restart", s.key[2]) if s.key[1] == "crash" else ("fault", "heal", None)
            )
            drop = {i}
            for j in range(i + 1, len(steps)):
                if steps[j].key == closer:
                    drop.add(j)
                    break
            groups.append((drop, []))
        for k, kind in enumerate(s.kinds):
            if kind == "fate" and k < len(s.subs) and s.subs[k] in (1, 2):
                groups.append((set(), [(i, k)]))
    return groups


def _without_faults(
    sched: Schedule, groups: list[tuple[set[int], list[tuple[int, int]]]]
) -> Schedule:
    drop: set[int] = set()
    clear: dict[int, set[int]] = {}
    for d, fates in groups:
        drop |= d
        for i, k in fates:
            clear.setdefault(i, set()).add(k)
    steps: list[Step] = []
    for i, s in enumerate(sched.steps):
        if i in drop:
            continue
        if i in clear:
            subs = [0 if k in clear[i] else v for k, v in enumerate(s.subs)]
            s = Step(s.key, subs, s.kinds, s.node, s.consumed, s.created, s.history)
        steps.append(s)
    return Schedule(sched.prelude, steps)


def whole_faults(sh: Shrinker) -> bool:
    """All faults at once, then each fault alone, the last first."""
    groups = fault_groups(sh.schedule())
    if not groups:
        return False
    if len(groups) > 1 and sh.try_schedule(_without_faults(sh.schedule(), groups)):
        sh.say("removed every fault")
        return True
    changed = False
    i = len(groups) - 1
    while i >= 0:
        sched = sh.schedule()
        groups = fault_groups(sched)
        hit = sh.first(
            (j, sh.schedule_candidate(_without_faults(sched, [groups[j]])))
            for j in range(min(i, len(groups) - 1), -1, -1)
        )
        if hit is None:
            break
        changed = True
        i = hit - 1
    if changed:
        sh.say("removed faults")
    return changed


def causal_slice(sh: Shrinker) -> bool:
    """Drop every step outside the happens-before cone of what the violation names."""
    assert sh.best_run is not None
    sched = sh.schedule()
    v = sh.best_run.violation
    assert v is not None
    node_ids = sh.best_run.world.server_ids + sh.best_run.world.client_ids
    faults = {i for i, s in enumerate(sched.steps) if s.key[0] == "fault"}

    def candidates() -> Iterator[tuple[bool, Candidate]]:
        for anchors in causal.anchor_sets(sched, sh.best_run.history, v.details, node_ids):
            keep = causal.cone(sched, anchors)
            if len(keep) >= len(sched.steps):
                continue
            outside = set(range(len(sched.steps))) - keep
            yield True, sh.schedule_candidate(sched.without(outside))
            if outside - faults != outside:  # the same, keeping the faults
                yield True, sh.schedule_candidate(sched.without(outside - faults))

    if sh.first(candidates()):
        sh.say("causal slice")
        return True
    return False


def whole_client_ops(sh: Shrinker) -> bool:
    """Delete the steps of one client operation (its invocation and the messages it caused),
    the last operation first."""
    changed = False
    k = len(_invokes(sh)) - 1
    while k >= 0:
        invokes = _invokes(sh)
        if min(k, len(invokes) - 1) < 0:
            break
        sched = sh.schedule()
        where = causal.step_of_history(sched)
        hit = sh.first(
            (j, sh.schedule_candidate(sched.without(causal.message_cone(sched, where[invokes[j]]))))
            for j in range(min(k, len(invokes) - 1), -1, -1)
            if invokes[j] in where
        )
        if hit is None:
            break
        changed = True
        k = hit - 1
    if changed:
        sh.say("removed client operations")
    return changed


def _invokes(sh: Shrinker) -> list[int]:
    assert sh.best_run is not None
    return [e["index"] for e in sh.best_run.history if e.get("type") == "invoke" and "process" in e]


def search_smaller_config(sh: Shrinker) -> bool:
    from treadle.shrink.search import search_smaller_config as search

    return search(sh)


PASSES = (smaller_config, search_smaller_config, whole_faults, causal_slice, whole_client_ops)
