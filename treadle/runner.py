"""Exploration, replay and the determinism self-check of a trace (one run: treadle.run; what an
exploration reports: treadle.outcome; shrinking: treadle.shrink)."""

from __future__ import annotations

import time as _time  # `time` is the budget keyword of explore()
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from treadle import history as hist
from treadle.budgets import check_budgets
from treadle.checkers.result import CheckResult
from treadle.config import ConfigError
from treadle.determinism import DeterminismCheck, divergence, log_digest, run_log
from treadle.errors import InputError, Nondeterminism, TraceMismatch
from treadle.exhaustive import explore_exhaustive
from treadle.generations import GenerationRuns
from treadle.options import free_options
from treadle.outcome import (
    ExploreResult,
    SometimesReport,
    replay_command,
    save_new_trace,
    trace_filename,
)
from treadle.parallel import RunSpec, SeedRun, SeedRuns, worker_locator
from treadle.renamed import renamed
from treadle.run import (  # noqa: F401  (re-exported: treadle.runner was their home)
    HANDLER_EXCEPTION,
    CheckerError,
    RunResult,
    _handler_exception,
    _run_check,
    node_frame,
    replay_trace,
    run_once,
)
from treadle.session import base_seed, capped
from treadle.strategies import EXHAUSTIVE, Replay, make_strategy
from treadle.system import System, get_system
from treadle.trace import Trace, load_trace
from treadle.workdir import DEFAULT_TRACES

DEFAULT_SHRINK_SECONDS = 300.0  # explore's shrink_time (--shrink-time): a safety bound only

__all__ = [
    "HANDLER_EXCEPTION",
    "CheckerError",
    "ExploreResult",
    "ReplayResult",
    "RunResult",
    "check_determinism",
    "explore",
    "load_and_check",
    "node_frame",
    "replay",
    "replay_command",
    "replay_trace",
    "run_once",
    "save_new_trace",
    "trace_filename",
]


# ---------------------------------------------------------------------------------------- explore
def explore(
    system: str | System,
    bug: str | None = None,
    strategy: str = "mixed",
    seed: int | None = None,
    runs: int | None = None,
    steps: int | None = None,
    time: float | None = None,
    config: dict[str, Any] | None = None,
    out: str | None = DEFAULT_TRACES,
    shrink_time: float | None = None,
    shrink_runs: int | None = None,
    check_determinism: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
    *,
    time_limit: float | None = None,
    shrink_seconds: float | None = None,
) -> ExploreResult:
    """Explore ``system`` (a name or a System). Stops at the first violation, shrinks it, saves the
    trace under ``out/<system>/`` (default ``.treadle/traces/``; ``None``: not saved) and returns
    the result; ``result.assert_ok()`` fails a test with the replay command.

    Budgets: ``runs`` and ``steps`` are positive integers, ``time`` positive finite seconds (a
    ValueError otherwise); without ``runs`` or ``time``, 100 runs. A violation is shrunk with a
    budget of ``shrink_runs`` candidate runs (default 4000; 0: not shrunk) and ``shrink_time``
    seconds as a safety bound (default 300; 0: not shrunk). The keywords are the CLI's flags
    (``--runs``, ``--steps``, ``--time``, ``--seed``, ``--workers``, ``--shrink-runs``,
    ``--shrink-time``, ``--out``, ``--check-determinism``); ``time_limit`` and
    ``shrink_seconds`` are deprecated aliases of ``time`` and ``shrink_time``. Session caps
    (pytest's ``--treadle-runs``/``--treadle-time``/``--treadle-seed``, :mod:`treadle.session`)
    bound every call; ``seed`` defaults to the session's, else 0. ``time`` bounds exploration,
    not shrinking: the shrink is governed by ``shrink_runs`` and bounded by its own safety cap,
    ``shrink_time`` (when hit, the result says "stopped by time: not minimal").

    ``workers`` > 1 runs seeds on a process pool of that many workers, ``executor`` on any
    ``concurrent.futures.Executor`` (a Dask client's ``get_executor()`` included): the same
    seeds run, and the result (verdict, counts, the lowest violating seed, its trace) is the
    one a single process gives (:mod:`treadle.parallel`)."""
    time = renamed("explore", "time_limit", "time", "--time", time_limit, time)
    shrink_time = renamed(
        "explore", "shrink_seconds", "shrink_time", "--shrink-time", shrink_seconds, shrink_time
    )
    if shrink_time is None:
        shrink_time = DEFAULT_SHRINK_SECONDS
    check_budgets(runs, steps, time, shrink_time)
    # ``time`` bounds exploration only: shrinking is governed by its run budget (the same trace
    # on every machine) and bounded by its own safety cap, ``shrink_time``
    runs, time_limit = capped(runs, time)
    seed = base_seed(seed)
    sys_obj = get_system(system) if isinstance(system, str) else system
    sys_obj.check_bug(bug)
    if strategy in EXHAUSTIVE:
        return explore_exhaustive(
            sys_obj,
            bug=bug,
            strategy=strategy,
            config=config,
            steps=steps,
            time_limit=time_limit,
            out=out,
            progress=on_message,
            check_determinism=check_determinism,
            workers=workers,
            executor=executor,
        )
    strat = make_strategy(strategy)  # an unknown name is refused before anything runs
    cfg = sys_obj.resolve_config(config)
    max_steps = steps if steps is not None else sys_obj.steps
    if runs is None and time_limit is None:
        runs = 100
    start = _time.monotonic()
    deadline = start + time_limit if time_limit is not None else None
    total_events = total_steps = n_runs = unknown_runs = 0
    interrupted = False
    found: SeedRun | None = None
    # system options each run draws (PreVote, CheckQuorum, ...), unless the user set them
    options = free_options(sys_obj, config)
    checker = DeterminismCheck(sys_obj, cfg, bug, max_steps) if check_determinism else None
    if checker is not None:
        checker.options = options
    # the seed loop runs here or on workers (treadle.parallel); it yields runs in seed order, so
    # counts and the (lowest) violating seed are the same wherever they ran
    spec = RunSpec(
        worker_locator(sys_obj) if workers > 1 or executor is not None else {"name": sys_obj.name},
        cfg,
        bug,
        strategy,
        max_steps,
        first_seed=seed,
        check_determinism=check_determinism,
        options=options,
    )
    source: SeedRuns | GenerationRuns
    if strat.learns:  # guided, mixed: the corpus changes between generations of seeds only
        source = GenerationRuns(sys_obj, spec, strat, seed, runs, deadline, workers, executor)
    else:
        source = SeedRuns(sys_obj, spec, seed, runs, deadline, workers, executor)
    sometimes = SometimesReport(sys_obj.sometimes_names())
    try:
        with source:
            for result in source:
                if checker is not None:
                    checker.checked_elsewhere(
                        result.seed,
                        result.det_sample,
                        result.violation is not None,
                        config=result.config,
                    )
                if result.sometimes:
                    sometimes.add_run(n_runs, result.sometimes)
                # a run counts once it is complete: an interrupted run is not reported as explored
                n_runs += 1
                total_events += result.events
                total_steps += result.steps
                if result.unknown:
                    unknown_runs += 1
                if progress:
                    progress(n_runs, total_events, _time.monotonic() - start)
                if result.violation is not None:
                    found = result
                    break
        if checker is not None:
            checker.finish()
    except KeyboardInterrupt:
        interrupted = True
    elapsed = _time.monotonic() - start
    seeds = (seed, seed + n_runs - 1) if n_runs else None
    extra: dict[str, Any] = {"sometimes": sometimes.to_json()}
    if checker is not None:
        extra["determinism"] = checker.report()
    if source.parallel:
        extra["parallel"] = source.stats.to_json()
    if found is None:
        note = None
        if interrupted:
            verdict = "interrupted"
        elif n_runs == 0:
            verdict, note = "unknown", "no run completed within the budget: nothing was explored"
        elif total_steps == 0:
            verdict = "unknown"
            note = (
                f"no run took a step ({n_runs} runs ended at their start): nothing was "
                "explored; check the config (window, latency) and the workload"
            )
        elif unknown_runs:
            verdict = "unknown"
            note = f"{unknown_runs} of {n_runs} runs had a check that could not decide"
        else:
            verdict = "ok"
        return ExploreResult(
            verdict,
            sys_obj.name,
            bug,
            strategy,
            seed,
            n_runs,
            total_events,
            total_steps,
            elapsed,
            seeds,
            unknown_runs=unknown_runs,
            interrupted=interrupted,
            note=note,
            extra=extra,
        )
    run_seed, choices = found.seed, found.choices or []
    v = found.violation
    assert v is not None
    raw = found.trace(sys_obj, spec)
    if on_message:
        on_message(
            f"found a violation of {v.property} in run {n_runs} (seed {run_seed}); shrinking"
        )
    from treadle.shrink import DEFAULT_RUNS, shrink, shrink_report

    # the budget is counted in candidate runs (the same trace everywhere); shrink_time is a
    # safety bound only (0: don't shrink)
    budget = DEFAULT_RUNS if shrink_runs is None else shrink_runs
    report: dict[str, Any] = {}
    try:
        final = (
            shrink(
                sys_obj,
                raw,
                runs=budget,
                time=shrink_time,
                progress=on_message,
                workers=workers,
                executor=executor,
            )
            if shrink_time > 0 and budget > 0
            else raw
        )
        if final is not raw:
            report = shrink_report(final)
            if report["stopped"] == "interrupted":
                interrupted = True
            if on_message and not report["minimal"]:
                on_message(str(report["message"]))
    except KeyboardInterrupt:
        final, interrupted = raw, True
    assert final.violation is not None
    violation = CheckResult(
        "violation",
        final.violation["property"],
        final.violation["message"],
        final.violation.get("details", {}),
    )
    path = None
    if out is not None:
        path = save_new_trace(
            final, out, trace_filename(sys_obj.name, bug, violation.property, run_seed)
        )
    return ExploreResult(
        "violation",
        sys_obj.name,
        bug,
        strategy,
        seed,
        n_runs,
        total_events,
        total_steps,
        _time.monotonic() - start,
        seeds,
        violation=violation,
        trace=path,
        replay=replay_command(path) if path else None,
        history_sha256=final.history_sha256,
        unknown_runs=unknown_runs,
        interrupted=interrupted,
        shrunk={
            "choices": len(final.choices),
            "steps": final.steps,
            "from_choices": len(choices),
            "from_steps": found.steps,
            **report,
        },
        extra=extra,
    )


# ---------------------------------------------------------------------------------------- replay
@dataclass
class ReplayResult:
    trace: Trace
    run: RunResult
    history_sha256: str
    matches: bool


def load_and_check(path: str) -> tuple[System, Trace]:
    trace = load_trace(path)
    system = get_system(trace.system)
    if trace.system_version and trace.system_version != system.version:
        raise TraceMismatch(
            f"trace does not match system {system.name}: it was recorded with version "
            f"{trace.system_version}, the installed system is version {system.version}"
        )
    if trace.bug is not None and trace.bug not in system.bugs:
        raise TraceMismatch(
            f"trace does not match system {system.name}: it has no bug {trace.bug!r}"
        )
    # A key added to the system after the trace was recorded takes the value that means the old
    # behaviour: its legacy value if it declares one (a key whose default is new behaviour, e.g.
    # raft's quiet_tail), else its default; the history digest decides whether the replay matches.
    trace.config = {**system.schema().legacy(trace.config), **trace.config}
    defaults = system.resolve_config()
    unknown = set(trace.config) - set(defaults)
    if unknown:
        raise TraceMismatch(
            f"trace does not match system {system.name}: its config has keys the system does not "
            f"know: {', '.join(sorted(unknown))}"
        )
    try:
        trace.config = system.resolve_config(trace.config)  # typed and in range, or refused
    except ConfigError as e:
        raise InputError(path, None, f"trace {e}") from None
    return system, trace


def replay(path: str, log_steps: bool = False) -> ReplayResult:
    system, trace = load_and_check(path)
    r = replay_trace(system, trace, log_steps=log_steps)
    d = hist.digest(r.history)
    matches = not trace.history_sha256 or d == trace.history_sha256
    if not matches:
        raise TraceMismatch(
            f"trace does not match system {system.name}: replaying it gives history sha256 "
            f"{d[:12]}..., the trace recorded {trace.history_sha256[:12]}... (recorded by another "
            f"version of the system, or nondeterministic node code: try --check-determinism)"
        )
    return ReplayResult(trace, r, d, matches)


# ---------------------------------------------------------------------------------------- determinism
def first_divergence(a: RunResult, b: RunResult) -> str | None:
    """Where two runs of the same choices first differ (they were run with ``log_steps``)."""
    return divergence(run_log(a), run_log(b))


def _check_determinism(
    system: System,
    cfg: dict[str, Any],
    bug: str | None,
    choices: list[int],
    steps: int,
    cross_process: bool = True,
) -> None:
    """Run the choices twice in-process and (``cross_process``) in two other processes under
    other hash seeds; raise :class:`Nondeterminism` at the first divergence."""
    a = run_once(system, cfg, bug, Replay(list(choices)), steps, log_steps=True)
    b = run_once(system, cfg, bug, Replay(list(choices)), steps, log_steps=True)
    msg = first_divergence(a, b)
    if msg:
        raise Nondeterminism(msg)
    if cross_process:
        check = DeterminismCheck(system, cfg, bug, steps)
        check.batch.append((0, list(choices), log_digest(run_log(a))))
        check.flush()


def check_determinism(path_or_trace: str | Trace) -> str | None:
    """Replay a trace twice (and in two other processes); None if identical, else the divergence."""
    if isinstance(path_or_trace, str):
        system, trace = load_and_check(path_or_trace)
    else:
        trace = path_or_trace
        system = get_system(trace.system)
    try:
        _check_determinism(system, trace.config, trace.bug, trace.choices, trace.steps)
    except Nondeterminism as e:
        return str(e)
    return None


def __getattr__(name: str) -> Any:
    # shrink() moved to treadle.shrink; keep `from treadle.runner import shrink` working
    if name == "shrink":
        from treadle.shrink import shrink

        return shrink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
