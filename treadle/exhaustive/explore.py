"""Exhaustive search: the entry point (``explore --strategy dfs|bfs|dpor``): the small config,
the search, the trace of a counterexample, the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from treadle.config import ConfigError
from treadle.errors import TreadleError
from treadle.exhaustive.bounds import EXPLORER_SCHEMA
from treadle.exhaustive.dpor import dpor
from treadle.exhaustive.explorer import Explorer
from treadle.exhaustive.search import search
from treadle.system import System
from treadle.trace import Trace
from treadle.workdir import DEFAULT_TRACES


# ------------------------------------------------------------------------------ entry point
def split_config(
    system: System, overrides: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resolved world+system config, explorer bounds) for an exhaustive run: the system's
    ``exhaustive`` overrides, then the user's."""
    merged = dict(system.exhaustive)
    merged.update(overrides or {})
    bounds_given = {k: v for k, v in merged.items() if k in EXPLORER_SCHEMA}
    world_over = {k: v for k, v in merged.items() if k not in EXPLORER_SCHEMA}
    bounds = EXPLORER_SCHEMA.resolve([bounds_given], lambda k: ConfigError(k))  # keys known
    return system.resolve_config(world_over), bounds


def make_explorer(
    system: System,
    bug: str | None = None,
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    symmetry: bool = True,
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Explorer:
    cfg, bounds = split_config(system, config)
    if steps is not None:
        bounds["max_depth"] = steps
    return Explorer(system, cfg, bug, bounds, symmetry, time_limit, progress)


def _check_paths(ex: Any, found: Any) -> dict[str, Any]:
    """--check-determinism for a search: the first paths it ended (and the counterexample) are
    replayed in-process and in other processes under other hash seeds (one process's searches
    all see one hash order, so only another process can show a dependence on it)."""
    from treadle.determinism import DeterminismCheck
    from treadle.run import run_once
    from treadle.strategies import Replay

    paths = list(ex.sample_paths)
    if found is not None:
        paths.append(list(found.choices))
    steps = max(ex.max_depth, found.steps if found is not None else 0)
    check = DeterminismCheck(ex.system, ex.cfg, ex.bug, steps)
    check.unit = "path"
    for i, choices in enumerate(paths):
        r = run_once(ex.system, ex.cfg, ex.bug, Replay(list(choices)), steps, log_steps=True)
        check.check(i, r, choices)
    check.finish()
    return {**check.report(), "paths_sampled": len(paths)}


def explore_exhaustive(
    system: System,
    bug: str | None = None,
    strategy: str = "dfs",
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    time_limit: float | None = None,
    out: str | None = DEFAULT_TRACES,
    progress: Callable[[str], None] | None = None,
    symmetry: bool = True,
    compare: bool = True,
    check_determinism: bool = False,
    workers: int = 1,
    executor: Any = None,
) -> Any:
    """Exhaustive exploration (``dfs``, ``bfs`` or ``dpor``) of the system's small exhaustive
    config. Returns a :class:`treadle.outcome.ExploreResult`; ``extra`` holds ``complete``,
    ``states``, ``executions``, ``depth`` and, for dpor, the reduction against plain DFS.

    ``workers`` > 1 (or an ``executor``): BFS expands states on workers and reports the serial
    search's counts and counterexample (:mod:`treadle.exhaustive.workers`); DFS and DPOR run
    in this process (their order is inherently sequential; docs/exhaustive.md), and so does the
    BFS that shortens their counterexample, on the workers."""
    from treadle.outcome import ExploreResult, replay_command, save_new_trace, trace_filename
    from treadle.run import run_once
    from treadle.strategies import Replay

    if strategy not in ("dfs", "bfs", "dpor"):
        raise TreadleError(f"unknown exhaustive strategy {strategy!r}; known: dfs, bfs, dpor")
    start = time.monotonic()
    ex = make_explorer(
        system, bug, config, steps, symmetry and strategy != "dpor", time_limit, progress
    )
    interrupted = False
    parallel = workers > 1 or executor is not None
    where = None
    par: dict[str, Any] | None = None
    if parallel:
        from treadle.parallel import worker_locator

        where = worker_locator(system)  # refused before anything runs, as for random runs
        par = {"workers": workers}
        if strategy != "bfs":
            par["note"] = (
                f"{strategy} ran in this process: its visit order is sequential, and split "
                "across workers its counts would differ from the serial search's "
                "(docs/exhaustive.md); only bfs expands states on workers"
            )

    def bfs(ex_b: Explorer) -> Any:
        if not parallel:
            return search(ex_b, "bfs")
        from treadle.exhaustive.workers import parallel_bfs

        assert par is not None and where is not None
        return parallel_bfs(ex_b, where, workers, executor, par)

    try:
        if strategy == "dpor":
            found = dpor(ex)
        elif strategy == "bfs":
            found = bfs(ex)
        else:
            found = search(ex, strategy)
    except KeyboardInterrupt:
        found, interrupted = None, True
        ex.stats.complete = False
    st = ex.stats
    determinism = None
    if check_determinism and not interrupted:
        determinism = _check_paths(ex, found)
    extra: dict[str, Any] = {
        "complete": bool(st.complete and found is None and not interrupted),
        "states": st.states if strategy != "dpor" else None,
        # executions actually run (dpor) apart from maximal paths only counted (dfs/bfs: what a
        # stateless DFS without reduction would run, counted on the state graph, not run)
        "executions_run": st.executions if strategy == "dpor" else None,
        "paths_counted": st.paths if strategy != "dpor" else None,
        "transitions": st.transitions,
        "history_checks": st.history_checks,
        "unknown_checks": st.unknown,
        "depth": st.depth,
        "bounds_hit": sorted(st.bounds_hit),
        "model": "asynchronous" if ex.asynchronous else f"timed (window {ex.cfg['window']})",
        "symmetry": [list(g) for g in ex.groups],
        "budgets": {k: v for k, v in ex.bounds.items() if k.startswith("max_") and v != -1},
        "liveness": st.liveness,
    }
    if determinism is not None:
        extra["determinism"] = determinism
    if par is not None:
        extra["parallel"] = par
    elapsed_search = time.monotonic() - start
    if strategy != "dpor":
        extra["states_per_s"] = round(st.states / elapsed_search, 1) if elapsed_search else None
    else:
        extra["sleep_blocked"] = st.blocked
        extra["states"] = None
        if compare and found is None and st.complete:
            remaining = None
            if time_limit is not None:
                remaining = max(1.0, time_limit - elapsed_search)
            ex2 = make_explorer(system, bug, config, steps, False, remaining, None)
            search(ex2, "dfs")
            extra["dfs_states"] = ex2.stats.states
            extra["dfs_paths_counted"] = ex2.stats.paths
            if ex2.stats.paths and st.executions:
                extra["reduction"] = round(ex2.stats.paths / st.executions, 2)
    # "runs": executions actually run (dpor); a stateful search is one run over the graph
    executions = (st.executions if strategy == "dpor" else 1) or 0
    if found is not None:
        # the shortest counterexample: BFS up to the depth where it was found
        if strategy != "bfs":
            ex_b = make_explorer(system, bug, config, found.steps, symmetry, None, progress)
            ex_b.max_depth = found.steps
            shorter = bfs(ex_b)
            if shorter is not None:
                found = shorter
        # check it replays as a normal trace
        r = run_once(system, ex.cfg, bug, Replay(list(found.choices)), found.steps)
        if r.violation is None or r.violation.property != found.violation.property:
            raise TreadleError(
                "internal error: the exhaustive counterexample does not replay "
                f"(expected {found.violation.property}, got "
                f"{r.violation.property if r.violation else 'no violation'}); node code is "
                "probably nondeterministic (try treadle explore --check-determinism)"
            )
        v = r.violation
        trace = Trace.of_run(
            system.name,
            system.version,
            bug,
            ex.cfg,
            0,
            strategy,
            r,
            list(found.choices),
            steps=found.steps,
            violation=v.to_json(),
            extra={"exhaustive": {"shortest": True, "depth": found.steps}},
        )
        path = None
        if out is not None:
            name = trace_filename(system.name, bug, v.property, 0)
            path = save_new_trace(trace, out, name.replace("-seed0.json", f"-{strategy}.json"))
        extra["counterexample_steps"] = found.steps
        extra["summary"] = (
            f"violation of {v.property} found by {strategy} after {st.states or st.executions} "
            f"{'states' if strategy != 'dpor' else 'executions'}; shortest counterexample: "
            f"{found.steps} steps"
        )
        return ExploreResult(
            "violation",
            system.name,
            bug,
            strategy,
            0,
            executions,
            st.transitions,
            found.steps,
            time.monotonic() - start,
            (0, 0),
            violation=v,
            trace=path,
            replay=replay_command(path) if path else None,
            history_sha256=trace.history_sha256,
            interrupted=interrupted,
            extra=extra,
        )
    if strategy == "dpor":
        what = f"{st.executions} executions ({st.blocked} cut by sleep sets)"
    else:
        paths = (
            f"{st.paths} maximal paths counted on the state graph (not run)"
            if st.paths is not None
            else "paths not counted (incomplete or cyclic state graph)"
        )
        what = f"{st.states} distinct states, {st.transitions} transitions; {paths}"
    if extra["complete"]:
        verb = "ran" if strategy == "dpor" else "explored"
        extra["summary"] = f"{verb} all {what}, up to depth {st.depth}"
    else:
        verb = "ran " if strategy == "dpor" else ""
        extra["summary"] = (
            f"bound hit ({_bounds_text(st.bounds_hit, ex) or 'interrupted'}), no violation found "
            f"in the explored part: {verb}{what}, depth {st.depth}"
        )
    verdict = "ok"
    note = None
    if interrupted:
        verdict = "interrupted"
    elif st.unknown:
        verdict = "unknown"
        note = f"{st.unknown} check(s) could not decide, e.g. {st.unknown_message}"
        extra["summary"] += f"; {note}"
    elif not extra["complete"]:
        # an incomplete search proves nothing about what it did not explore: unknown (exit 3)
        verdict = "unknown"
        note = f"bound hit ({_bounds_text(st.bounds_hit, ex)}), no violation found in the explored part"
    if st.liveness:
        extra["summary"] += f"; {len(st.liveness)} liveness finding(s)"
    return ExploreResult(
        verdict,
        system.name,
        bug,
        strategy,
        0,
        executions,
        st.transitions,
        st.depth,
        time.monotonic() - start,
        None,
        interrupted=interrupted,
        extra=extra,
        note=note,
    )


def _bounds_text(hit: set[str], ex: Any) -> str:
    """The bounds hit with their values: "depth 4", "states 10", "time"."""
    value = {"depth": ex.max_depth, "states": ex.max_states}
    return ", ".join(f"{b} {value[b]}" if b in value else b for b in sorted(hit))
