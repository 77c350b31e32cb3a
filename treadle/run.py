"""One run: build the system, step the world until a bound, quiescence or a violation, then the
final checks. Node code that raises is a violation (a replayable counterexample); a check that
raises is a harness error."""

from __future__ import annotations

import os
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.errors import InputError, TreadleError
from treadle.strategies import Replay
from treadle.system import System
from treadle.trace import Trace
from treadle.world import Chooser, World

#: the property an exception raised by node code violates
HANDLER_EXCEPTION = "handler exception"
#: the property a history the nodes recorded breaks when a check refuses it as malformed
WELL_FORMED_HISTORY = "well-formed history"


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
    world_cls: type[World] = World,
    on_step: Callable[[World], None] | None = None,
) -> RunResult:
    """One run: start, step until ``max_steps``, quiescence or a violation; then final checks.
    ``world_cls``: a World subclass that observes the run (the study page records sends,
    timers and node states with one). ``on_step(world)`` is called after every step (a learning
    strategy's coverage)."""
    cluster = system.build(config, bug)
    world = world_cls(config, bug, cluster.servers, cluster.clients, chooser, log_steps=log_steps)
    attach = getattr(chooser, "attach", None)
    if attach is not None:  # a shrinker's chooser watches every step, forced ones included
        attach(world)
    invariants = system.invariants
    violation: CheckResult | None = None
    steps = 0
    # bounded liveness (System.liveness: "eventually P"), as exhaustive search judges it: a run
    # that ends with nothing left to happen, P never having held, violates it
    liveness = system.liveness
    held: set[str] = set()
    quiescent = False
    try:
        world.start()
        if liveness:
            held.update(name for name, pred in liveness if pred(world))
        step = world.step
        while steps < max_steps:
            if not step():
                quiescent = True
                break
            steps += 1
            if on_step is not None:
                on_step(world)
            for inv in invariants:
                r = _run_check(inv, world)
                if r is not None and r.verdict == "violation":
                    violation = r
                    break
            if violation is not None:
                break
            if liveness and len(held) < len(liveness):
                held.update(name for name, pred in liveness if name not in held and pred(world))
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
            system.settle_world(world)
        except Exception as e:
            if world._current is None:
                raise
            violation = _handler_exception(world, e)
    if violation is None:
        for check in (*system.final_checks, *system.history_checks):
            r = _run_check(check, world)
            if r is None:
                continue
            if r.verdict == "violation":
                violation = r
                break
            if r.verdict == "unknown" and unknown is None:
                unknown = r
    if violation is None and quiescent and liveness:
        violation = _never_held(liveness, held, world, steps)
    return RunResult(world, steps, violation, unknown)


def _never_held(
    liveness: list[tuple[str, Callable[[World], bool]]], held: set[str], world: World, steps: int
) -> CheckResult | None:
    for name, pred in liveness:
        if name not in held and not pred(world):
            return CheckResult.violation(
                name,
                f"{name} never held on a run of {steps} steps that ends with nothing left to "
                "happen (quiescent): no later step can make it hold",
                steps=steps,
            )
    return None


class CheckerError(TreadleError):
    """A check raised an exception: a bug in the checker or its wiring, not in the system."""


def _run_check(check: Callable[[World], CheckResult | None], world: World) -> CheckResult | None:
    try:
        return check(world)
    except InputError as e:
        # the check refused the recorded history as malformed (a client invoking while its
        # operation is open, an unpaired completion): the nodes recorded it, so it is the
        # system's bug, a replayable counterexample, not a harness error
        return CheckResult.violation(
            WELL_FORMED_HISTORY,
            f"the recorded history is not well formed: {e.detail}",
            check=getattr(check, "__qualname__", repr(check)),
            reason=e.detail,
        )
    except Exception as e:
        name = getattr(check, "__qualname__", repr(check))
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        raise CheckerError(f"check {name} raised {type(e).__name__}: {e}{where}") from e


_HARNESS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep
#: an installed treadle holds the reference systems inside its own folder: node code, not harness
_IMPL_DIR = _HARNESS_DIR + "impl" + os.sep


def _is_harness(path: str) -> bool:
    return (path.startswith(_HARNESS_DIR) and not path.startswith(_IMPL_DIR)) or path.startswith(
        _STDLIB_DIR
    )


def node_frame(e: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback that is the node's own code (not the harness, not the
    standard library): where a person starts reading. The innermost frame if there is none."""
    tb = traceback.extract_tb(e.__traceback__)
    for fr in reversed(tb):
        if not _is_harness(os.path.abspath(fr.filename)):
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


def replay_trace(
    system: System, trace: Trace, log_steps: bool = False, world_cls: type[World] = World
) -> RunResult:
    return run_once(
        system,
        trace.config,
        trace.bug,
        Replay(trace.choices),
        trace.steps,
        log_steps=log_steps,
        world_cls=world_cls,
    )
