"""Runs: one run, exploration, replay, and the determinism self-check (shrinking: treadle.shrink)."""

from __future__ import annotations

import os
import shlex
import sysconfig
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from checkers.result import CheckResult
from treadle import history as hist
from treadle.budgets import check_budgets
from treadle.config import ConfigError
from treadle.determinism import DeterminismCheck, divergence, log_digest, run_log
from treadle.errors import InputError, Nondeterminism, TraceMismatch, TreadleError
from treadle.strategies import EXHAUSTIVE, Recorder, Replay, make_strategy
from treadle.system import System, get_system
from treadle.trace import Trace, load_trace
from treadle.workdir import DEFAULT_TRACES, reserve_unique
from treadle.world import Chooser, World

#: the property an exception raised by node code violates
HANDLER_EXCEPTION = "handler exception"


@dataclass
class RunResult:
    world: World
    steps: int
    violation: CheckResult | None
    unknown: CheckResult | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.world.history


def run_once(
    system: System,
    config: dict[str, Any],
    bug: str | None,
    chooser: Chooser,
    max_steps: int,
    log_steps: bool = False,
    stop: Callable[[], bool] | None = None,
) -> RunResult:
    """One run: start, step until ``max_steps``, quiescence or a violation; then final checks."""
    cluster = system.build(config, bug)
    world = World(config, bug, cluster.servers, cluster.clients, chooser, log_steps=log_steps)
    attach = getattr(chooser, "attach", None)
    if attach is not None:  # a shrinker's chooser watches every step, forced ones included
        attach(world)
    invariants = system.invariants
    violation: CheckResult | None = None
    steps = 0
    try:
        world.start()
        step = world.step
        while steps < max_steps:
            if not step():
                break
            steps += 1
            for inv in invariants:
                r = _run_check(inv, world)
                if r is not None and r.verdict == "violation":
                    violation = r
                    break
            if violation is not None:
                break
    except CheckerError:
        raise
    except Exception as e:
        if world._current is None:
            raise  # the harness itself failed: not the node's fault
        # the step whose handler raised was taken (World.apply counts it first): a replay of
        # ``steps`` steps must run it again
        steps = world.step_count
        violation = _handler_exception(world, e)  # node code raised: a bug in the node
    unknown: CheckResult | None = None
    if violation is None:
        try:
            if system.settle_steps:
                world.settle(system.settle_steps)
        except Exception as e:
            if world._current is None:
                raise
            violation = _handler_exception(world, e)
    if violation is None:
        for check in system.final_checks:
            r = _run_check(check, world)
            if r is None:
                continue
            if r.verdict == "violation":
                violation = r
                break
            if r.verdict == "unknown" and unknown is None:
                unknown = r
    return RunResult(world, steps, violation, unknown)


class CheckerError(TreadleError):
    """A check raised an exception: a bug in the checker or its wiring, not in the system."""


def _run_check(check: Callable[[World], CheckResult | None], world: World) -> CheckResult | None:
    try:
        return check(world)
    except Exception as e:
        name = getattr(check, "__qualname__", repr(check))
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        raise CheckerError(f"check {name} raised {type(e).__name__}: {e}{where}") from e


_HARNESS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def node_frame(e: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback that is the node's own code (not the harness, not the
    standard library): where a person starts reading. The innermost frame if there is none."""
    tb = traceback.extract_tb(e.__traceback__)
    for fr in reversed(tb):
        path = os.path.abspath(fr.filename)
        if not path.startswith(_HARNESS_DIR) and not path.startswith(_STDLIB_DIR):
            return fr
    return tb[-1] if tb else None


def _handler_exception(world: World, e: Exception) -> CheckResult:
    frame = node_frame(e)
    node = world._current or "the harness"
    text = str(e)
    if len(text) > 500:
        text = text[:497] + "..."
    details: dict[str, Any] = {
        "exception": type(e).__name__,
        "exception_message": text,
        "node": node,
        "step": world.step_count,
        "time": world.now,
    }
    where = ""
    if frame is not None:
        details["frame"] = {
            "file": os.path.basename(frame.filename),
            "line": frame.lineno,
            "function": frame.name,
            "code": (frame.line or "").strip(),
        }
        where = f" in {frame.name} ({os.path.basename(frame.filename)}:{frame.lineno})"
        if frame.line:
            where += f": {frame.line.strip()}"
    return CheckResult.violation(
        HANDLER_EXCEPTION,
        f"{node} raised {type(e).__name__}: {text}{where}, at step {world.step_count}, "
        f"time {world.now}",
        **details,
    )


def replay_trace(system: System, trace: Trace, log_steps: bool = False) -> RunResult:
    return run_once(
        system, trace.config, trace.bug, Replay(trace.choices), trace.steps, log_steps=log_steps
    )


# ---------------------------------------------------------------------------------------- explore
@dataclass
class ExploreResult:
    verdict: str  # ok | violation | unknown | interrupted
    system: str
    bug: str | None
    strategy: str
    seed: int
    runs: int
    events: int
    steps: int
    elapsed_s: float
    #: first and last seed of the runs that completed (None when none did)
    seeds: tuple[int, int] | None
    violation: CheckResult | None = None
    trace: str | None = None
    replay: str | None = None
    history_sha256: str | None = None
    unknown_runs: int = 0
    interrupted: bool = False
    shrunk: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: why the verdict is unknown or interrupted, in words
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "system": self.system,
            "bug": self.bug,
            "strategy": self.strategy,
            "seed": self.seed,
            "seeds": list(self.seeds) if self.seeds else None,
            "runs": self.runs,
            "events": self.events,
            "steps": self.steps,
            "elapsed_s": round(self.elapsed_s, 3),
            "violation": (
                {
                    "property": self.violation.property,
                    "message": self.violation.message,
                    "details": self.violation.details,
                }
                if self.violation
                else None
            ),
            "trace": self.trace,
            "replay": self.replay,
            "history_sha256": self.history_sha256,
            "unknown_runs": self.unknown_runs,
            "interrupted": self.interrupted,
            "shrunk": self.shrunk,
            "note": self.note,
            **self.extra,
        }

    def seeds_text(self) -> str:
        return f"seeds {self.seeds[0]}..{self.seeds[1]}" if self.seeds else "no seeds"

    def summary(self) -> str:
        if self.violation is not None:
            return (
                f"violation of {self.violation.property}: {self.violation.message}\n"
                f"trace: {self.trace}\nreplay: {self.replay}"
            )
        counts = (
            f"{self.runs} runs ({self.seeds_text()}), {self.events} events, {self.elapsed_s:.1f} s"
        )
        if self.verdict == "interrupted":
            return f"interrupted after {counts}"
        if self.verdict == "ok":
            det = self.extra.get("determinism")
            if det:
                counts += (
                    f"; deterministic: {det['runs_checked_in_process']} runs replayed in-process, "
                    f"{det['runs_checked_in_other_processes']} under PYTHONHASHSEED="
                    + " and ".join(det["hash_seeds"])
                )
            return f"no violation: {counts}"
        return f"{self.verdict}: {self.note or ''} ({counts})".replace(":  (", ": (")

    def assert_ok(self, allow_incomplete: bool = False) -> None:
        """For pytest: raise AssertionError unless the exploration ran and found nothing: a
        violation (with the replay command), an unknown verdict, an interrupted run, or an
        exhaustive search that hit a bound (unless ``allow_incomplete``) all fail."""
        if self.verdict != "ok":
            raise AssertionError(self.summary())
        if not allow_incomplete and self.extra.get("complete") is False:
            raise AssertionError(
                f"exhaustive search incomplete: {self.extra.get('summary', '')} "
                "(raise the bounds, or call assert_ok(allow_incomplete=True))"
            )


def replay_command(path: str) -> str:
    return f"treadle replay {shlex.quote(path)}"


def trace_filename(system: str, bug: str | None, prop: str, seed: int) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in prop.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{bug or 'nobug'}-{slug}-seed{seed}.json"


def save_new_trace(trace: Trace, out: str, filename: str) -> str:
    """Save ``trace`` as ``out/<system>/<filename>`` under a name no file has yet (``-2``, ``-3``
    ... appended when taken); inside ``.treadle/`` the folder gets its ``.gitignore``."""
    path = reserve_unique(os.path.join(out, trace.system, filename))
    trace.save(path)
    return path


def explore(
    system: str | System,
    bug: str | None = None,
    strategy: str = "mixed",
    seed: int = 0,
    runs: int | None = None,
    steps: int | None = None,
    time_limit: float | None = None,
    config: dict[str, Any] | None = None,
    out: str | None = DEFAULT_TRACES,
    shrink_seconds: float = 300.0,
    shrink_runs: int | None = None,
    check_determinism: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> ExploreResult:
    """Explore ``system`` (a name or a System). Stops at the first violation, shrinks it, saves the
    trace under ``out/<system>/`` (default ``.treadle/traces/``; ``None``: not saved) and returns
    the result; ``result.assert_ok()`` fails a test with the replay command.

    Budgets: ``runs`` and ``steps`` are positive integers, ``time_limit`` positive finite seconds
    (a ValueError otherwise); without ``runs`` or ``time_limit``, 100 runs."""
    check_budgets(runs, steps, time_limit, shrink_seconds)
    sys_obj = get_system(system) if isinstance(system, str) else system
    sys_obj.check_bug(bug)
    if strategy in EXHAUSTIVE:
        from treadle.exhaustive import explore_exhaustive

        return explore_exhaustive(  # type: ignore[no-any-return]
            sys_obj,
            bug=bug,
            strategy=strategy,
            config=config,
            steps=steps,
            time_limit=time_limit,
            out=out,
            progress=on_message,
        )
    strat = make_strategy(strategy)
    cfg = sys_obj.resolve_config(config)
    max_steps = steps if steps is not None else sys_obj.steps
    if runs is None and time_limit is None:
        runs = 100
    start = time.monotonic()
    deadline = start + time_limit if time_limit is not None else None
    total_events = total_steps = n_runs = unknown_runs = 0
    interrupted = False
    found: tuple[int, RunResult, list[int]] | None = None
    checker = DeterminismCheck(sys_obj, cfg, bug, max_steps) if check_determinism else None
    try:
        while True:
            if runs is not None and n_runs >= runs:
                break
            if deadline is not None and n_runs and time.monotonic() >= deadline:
                break
            run_seed = seed + n_runs
            strat.begin_run(run_seed, cfg, max_steps)
            rec = Recorder(strat)
            result = run_once(sys_obj, cfg, bug, rec, max_steps, log_steps=checker is not None)
            if checker is not None:
                checker.check(run_seed, result, rec.choices)
            # a run counts once it is complete: an interrupted run is not reported as explored
            n_runs += 1
            total_events += len(result.history)
            total_steps += result.steps
            if result.unknown is not None:
                unknown_runs += 1
            if progress:
                progress(n_runs, total_events, time.monotonic() - start)
            if result.violation is not None:
                found = (run_seed, result, rec.choices)
                break
        if checker is not None:
            checker.finish()
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.monotonic() - start
    seeds = (seed, seed + n_runs - 1) if n_runs else None
    extra: dict[str, Any] = {}
    if checker is not None:
        extra["determinism"] = checker.report()
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
    run_seed, result, choices = found
    v = result.violation
    assert v is not None
    raw = Trace(
        system=sys_obj.name,
        system_version=sys_obj.version,
        bug=bug,
        config=cfg,
        seed=run_seed,
        strategy=strategy,
        steps=result.steps,
        choices=choices,
        violation=v.to_json(),
        history_sha256=hist.digest(result.history),
        events=len(result.history),
        extra={"strategy_run": strat.describe_run()},
    )
    if on_message:
        on_message(
            f"found a violation of {v.property} in run {n_runs} (seed {run_seed}); shrinking"
        )
    from treadle.shrink import DEFAULT_RUNS, shrink, shrink_report

    # the budget is counted in candidate runs (the same trace everywhere); shrink_seconds is a
    # safety bound only (0: don't shrink)
    budget = DEFAULT_RUNS if shrink_runs is None else shrink_runs
    report: dict[str, Any] = {}
    try:
        final = (
            shrink(sys_obj, raw, max_runs=budget, max_seconds=shrink_seconds, progress=on_message)
            if shrink_seconds > 0 and budget > 0
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
        time.monotonic() - start,
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
            "from_steps": result.steps,
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
    # A key added to the system after the trace was recorded takes its default (new keys default
    # to the old behaviour); the history digest still decides whether the replay matches.
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
