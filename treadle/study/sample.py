"""A trace of any run, violating or not, to study a system's normal behaviour (and to measure
pages of a given size): ``record_trace("raft", {"nodes": 5}, seed=1, steps=600)``."""

from __future__ import annotations

from typing import Any

from treadle.run import run_once
from treadle.strategies import Recorder, make_strategy
from treadle.system import get_system
from treadle.trace import Trace


def record_trace(
    system: str,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    steps: int | None = None,
    strategy: str = "random",
    bug: str | None = None,
) -> Trace:
    sys_obj = get_system(system)
    cfg = sys_obj.resolve_config(config)
    max_steps = steps if steps is not None else sys_obj.steps
    strat = make_strategy(strategy)
    strat.begin_run(seed, cfg, max_steps)
    rec = Recorder(strat)
    r = run_once(sys_obj, cfg, bug, rec, max_steps)
    return Trace.of_run(sys_obj.name, sys_obj.version, bug, cfg, seed, strategy, r, rec.choices)
