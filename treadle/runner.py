"""Runs: one run, exploration, replay, and the determinism self-check (shrinking: treadle.shrink)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from checkers.result import CheckResult
from treadle import history as hist
from treadle.errors import Nondeterminism, TraceMismatch, TreadleError
from treadle.strategies import EXHAUSTIVE, Recorder, Replay, make_strategy
from treadle.system import System, get_system
from treadle.trace import Trace, load_trace
from treadle.world import Chooser, World

HANDLER_EXCEPTION = "no handler exception"


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


def _handler_exception(world: World, e: Exception) -> CheckResult:
    tb = traceback.extract_tb(e.__traceback__)
    frame = tb[-1] if tb else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno} ({frame.name})" if frame else ""
    node = world._current or "the harness"
    return CheckResult.violation(
        HANDLER_EXCEPTION,
        f"{node} raised {type(e).__name__}: {e}{where} at step {world.step_count}, time {world.now}.",
        exception=type(e).__name__,
        node=node,
        step=world.step_count,
    )


def replay_trace(system: System, trace: Trace, log_steps: bool = False) -> RunResult:
    return run_once(
        system, trace.config, trace.bug, Replay(trace.choices), trace.steps, log_steps=log_steps
    )


# ---------------------------------------------------------------------------------------- explore
@dataclass
class ExploreResult:
    verdict: str
    system: str
    bug: str | None
    strategy: str
    seed: int
    runs: int
    events: int
    steps: int
    elapsed_s: float
    seeds: tuple[int, int]
    violation: CheckResult | None = None
    trace: str | None = None
    replay: str | None = None
    history_sha256: str | None = None
    unknown_runs: int = 0
    interrupted: bool = False
    shrunk: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

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
            "seeds": list(self.seeds),
            "runs": self.runs,
            "events": self.events,
            "steps": self.steps,
            "elapsed_s": round(self.elapsed_s, 3),
            "violation": (
                {"property": self.violation.property, "message": self.violation.message}
                if self.violation
                else None
            ),
            "trace": self.trace,
            "replay": self.replay,
            "history_sha256": self.history_sha256,
            "unknown_runs": self.unknown_runs,
            "interrupted": self.interrupted,
            "shrunk": self.shrunk,
            **self.extra,
        }

    def summary(self) -> str:
        if self.violation is None:
            word = "no violation" if self.verdict == "ok" else self.verdict
            return (
                f"{word}: {self.runs} runs, {self.events} events, seeds {self.seeds[0]}..{self.seeds[1]}, "
                f"{self.elapsed_s:.1f} s" + (" (interrupted)" if self.interrupted else "")
            )
        return (
            f"violation of {self.violation.property}: {self.violation.message}\n"
            f"trace: {self.trace}\nreplay: {self.replay}"
        )

    def assert_ok(self) -> None:
        """For pytest: raise AssertionError with the replay command if a violation was found."""
        if self.verdict == "violation":
            raise AssertionError(self.summary())


def replay_command(path: str) -> str:
    return f"treadle replay {shlex.quote(path)}"


def trace_filename(system: str, bug: str | None, prop: str, seed: int) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in prop.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{bug or 'nobug'}-{slug}-seed{seed}.json"


def explore(
    system: str | System,
    bug: str | None = None,
    strategy: str = "mixed",
    seed: int = 0,
    runs: int | None = None,
    steps: int | None = None,
    time_limit: float | None = None,
    config: dict[str, Any] | None = None,
    out: str | None = "histories",
    shrink_seconds: float = 30.0,
    check_determinism: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> ExploreResult:
    """Explore ``system`` (a name or a System). Stops at the first violation, shrinks it, saves the
    trace under ``out/<system>/`` and returns the result; ``result.assert_ok()`` fails a test with
    the replay command."""
    sys_obj = get_system(system) if isinstance(system, str) else system
    sys_obj.check_bug(bug)
    if strategy in EXHAUSTIVE:
        from treadle.exhaustive import explore_exhaustive

        return explore_exhaustive(
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
    last_seed = seed
    try:
        r_index = 0
        while True:
            if runs is not None and r_index >= runs:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            run_seed = seed + r_index
            last_seed = run_seed
            strat.begin_run(run_seed, cfg, max_steps)
            rec = Recorder(strat)
            result = run_once(sys_obj, cfg, bug, rec, max_steps)
            n_runs += 1
            total_events += len(result.history)
            total_steps += result.steps
            if result.unknown is not None:
                unknown_runs += 1
            if check_determinism and (r_index == 0 or result.violation is not None):
                _check_determinism(sys_obj, cfg, bug, rec.choices, max_steps)
            if progress:
                progress(n_runs, total_events, time.monotonic() - start)
            if result.violation is not None:
                found = (run_seed, result, rec.choices)
                break
            r_index += 1
    except KeyboardInterrupt:
        interrupted = True
    elapsed = time.monotonic() - start
    seeds = (seed, last_seed)
    if found is None:
        verdict = "unknown" if unknown_runs and not interrupted else "ok"
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
    from treadle.shrink import shrink

    try:
        final = (
            shrink(sys_obj, raw, max_seconds=shrink_seconds, progress=on_message)
            if shrink_seconds > 0
            else raw
        )
    except KeyboardInterrupt:
        final = raw
    assert final.violation is not None
    violation = CheckResult(
        "violation",
        final.violation["property"],
        final.violation["message"],
        final.violation.get("details", {}),
    )
    path = None
    if out is not None:
        path = os.path.join(
            out, sys_obj.name, trace_filename(sys_obj.name, bug, violation.property, run_seed)
        )
        final.save(path)
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
        },
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
    trace.config = {**defaults, **trace.config}
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
def _fingerprint(r: RunResult) -> tuple[list[Any], list[str]]:
    return list(r.world.steps_log), [hist.encode_event(e) for e in r.history]


def first_divergence(a: RunResult, b: RunResult) -> str | None:
    la, ea = _fingerprint(a)
    lb, eb = _fingerprint(b)
    for x, y in zip(la, lb):
        if x != y:
            return f"nondeterminism at step {x[0]}: first run {x[2]} {x[4]!r}, second run {y[2]} {y[4]!r}"
    for x, y in zip(ea, eb):
        if x != y:
            return f"nondeterminism in the history: first run {x}, second run {y}"
    if len(la) != len(lb) or len(ea) != len(eb):
        step = min(len(la), len(lb))
        return f"nondeterminism at step {step}: one run stopped after {len(la)} steps, the other after {len(lb)}"
    return None


def _check_determinism(
    system: System, cfg: dict[str, Any], bug: str | None, choices: list[int], steps: int
) -> None:
    a = run_once(system, cfg, bug, Replay(list(choices)), steps, log_steps=True)
    b = run_once(system, cfg, bug, Replay(list(choices)), steps, log_steps=True)
    msg = first_divergence(a, b)
    if msg:
        raise Nondeterminism(msg)
    # a second process with another hash seed catches set-iteration-order dependence
    trace = Trace(system.name, system.version, bug, cfg, 0, "check", steps, list(choices))
    other = digest_in_subprocess(trace)
    if other is not None and other != hist.digest(a.history):
        raise Nondeterminism(
            "nondeterminism across processes: the same choices give another history under another "
            "PYTHONHASHSEED (node code depends on set or dict-of-hash iteration order, id(), or global state)"
        )


def digest_in_subprocess(trace: Trace) -> str | None:
    """Replay a trace in a fresh interpreter with a different hash seed; return its digest."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.json")
        trace.save(path)
        env = dict(os.environ, PYTHONHASHSEED=str((os.getpid() % 1000) + 17))
        code = (
            "import sys; from treadle.runner import replay_trace; from treadle.trace import load_trace;"
            "from treadle.system import get_system; from treadle import history as h;"
            "t=load_trace(sys.argv[1]); print(h.digest(replay_trace(get_system(t.system), t).history))"
        )
        try:
            out = subprocess.run(
                [sys.executable, "-c", code, path],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        return out.stdout.strip() or None


def check_determinism(path_or_trace: str | Trace) -> str | None:
    """Replay a trace twice (and once in another process); None if identical, else the divergence."""
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
