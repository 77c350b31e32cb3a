"""Smaller configurations found by search, where replaying the best run in them fails.

:func:`treadle.shrink.structural.smaller_config` replays the best run's schedule under a smaller
configuration. In a timed world with background work (periodic timers, retries, anti-entropy)
that rarely carries over: with one client or one key fewer, every later message, version and due
time differs, the schedule's records stop lining up and the violation is gone, although the
smaller configuration shows the bug readily in runs of its own. So, once per shrink, this pass
*searches* smaller configurations: fresh runs of the exploration's strategy (seeds 0, 1, ...,
counted in the run budget like every candidate) until one violates the same property; that run
is shrunk by a nested shrinker (the same passes, this one left out) and kept if the result is
smaller in the shrinker's order than the best so far. Everything is a function of the trace and
the budget, so the result is still the same bytes everywhere.

The configurations tried, in order: every key of ``System.shrink_config`` halfway to its floor,
then only the first half of the keys (a system lists them in the order worth lowering first:
the workload, then the nodes). Each gets an eighth of the budget in seeds.
"""

from __future__ import annotations

from typing import Any

from treadle.run import run_once
from treadle.shrink.core import OutOfBudget, Shrinker
from treadle.strategies import Recorder, make_strategy
from treadle.trace import Trace

#: the share of the run budget each searched configuration may spend on fresh runs
SEED_SHARE = 8


def search_configs(sh: Shrinker) -> list[dict[str, Any]]:
    floors = getattr(sh.system, "shrink_config", {})
    keys = [k for k in sh.shrink_keys if isinstance(sh.cfg[k], int) and sh.cfg[k] > floors[k]]
    out: list[dict[str, Any]] = []
    for chosen in (keys, keys[: (len(keys) + 1) // 2]):
        if not chosen:
            continue
        cfg = dict(sh.cfg)
        for k in chosen:
            cfg[k] = floors[k] + (sh.cfg[k] - floors[k]) // 2
        try:
            cfg = sh.system.resolve_config(cfg)  # the system's rules across keys
        except Exception:
            continue
        if cfg != sh.cfg and cfg not in out:
            out.append(cfg)
    return out


def search_smaller_config(sh: Shrinker) -> bool:
    if not sh.search or not sh.shrink_keys:
        return False
    # once per configuration: what it finds is shrunk by the other passes, and searched again
    # only from the smaller configuration it found
    sh.search = False
    for cfg in search_configs(sh):
        found = _first_failing_run(sh, cfg, max(1, sh.max_runs // SEED_SHARE))
        if found is not None and _shrink_nested(sh, found):
            sh.say("a smaller configuration, found by search")
            return True
    return False


def _first_failing_run(sh: Shrinker, cfg: dict[str, Any], seeds: int) -> Trace | None:
    name = sh.trace.strategy if sh.trace.strategy in ("random", "pct", "swarm", "mixed") else ""
    strategy = make_strategy(name or "mixed")
    bound = max(sh.steps, sh.trace.steps)
    for seed in range(seeds):
        sh.spend()
        strategy.begin_run(seed, cfg, bound)
        rec = Recorder(strategy)
        try:
            r = run_once(sh.system, cfg, sh.trace.bug, rec, bound)
        except Exception:
            return None  # a configuration the system refuses
        if sh._fails(r):
            assert r.violation is not None
            t = sh.trace
            return Trace.of_run(
                t.system, t.system_version, t.bug, cfg, t.seed, t.strategy, r, rec.choices
            )
    return None


def _shrink_nested(sh: Shrinker, found: Trace) -> bool:
    """Shrink ``found`` with half the runs left; keep the result if it beats the best."""
    from treadle.shrink import _fixpoint

    left = sh.max_runs - sh.runs
    nested = Shrinker(sh.system, found, left // 2, None, None, sh.pool)
    nested.deadline = sh.deadline
    nested.search = False
    nested.failed_configs = dict(sh.failed_configs)
    try:
        if nested.start():
            _fixpoint(nested)
    except OutOfBudget:
        pass
    finally:
        sh.runs += nested.runs
    r = nested.best_run
    if r is None or not sh._fails(r) or nested.best_key >= sh.best_key:
        return False
    sh._accept(nested.cfg, r, nested.choices)
    sh.search = True
    return True
