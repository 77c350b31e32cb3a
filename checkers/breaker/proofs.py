"""Bounded model checking of the circuit breaker with z3.

The breaker's step function (:mod:`models.breaker`) is encoded over ``k`` symbolic steps: every
input is a symbolic (kind, time) pair, so one query covers *all* input sequences of length up
to ``k`` (with non-decreasing times, and outcomes only for calls admitted and not yet
completed). A monitor keeps ghost variables computed from the observable behaviour alone
(decisions, outcomes, the breaker's reported mode) and states the properties over them:

* **Closed Admits**: a Closed breaker admits every call.
* **Open Rejects Until Reset Timeout**: a call arriving while Open, before the reset timeout
  has passed since the breaker opened, is rejected.
* **Trial After Reset Timeout**: a call arriving while Open once the reset timeout has passed
  is admitted (as a trial): the breaker does not stay Open forever.
* **HalfOpen Trial Limit**: at most K calls are admitted during one HalfOpen period.
* **Closes Only After S Successes**: HalfOpen -> Closed only once S trial calls succeeded.
* **Trial Failure Reopens**: a failed trial call moves HalfOpen to Open.
* **Opens Only On Failures**: Closed -> Open only when the last N outcomes were failures, or
  the window of the last W outcomes holds at least ``min_calls`` with the failure rate reached.

Outcomes of calls admitted before the last transition are stale and ignored by the breaker
(see :mod:`models.breaker`); they change nothing, so the encoding leaves them out. The same
query runs against each seeded breaker variant of the mesh (``--bug``), encoded here the way
``impl/mesh/breaker.py`` has it, and prints the shortest input sequence that breaks a property.

``treadle prove breaker [--k 12] [--bug NAME | --all] [--failures N] [--window W] [--rate R]
[--min-calls M] [--reset T] [--half-open K] [--successes S] [--json]``. Exit 0: every property
holds for every input sequence up to length k; 1: a counterexample (printed); 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import z3
from treadle.models.breaker import BreakerConfig

from treadle.errors import one_line_parser

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
MODE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half-open"}
REQUEST, SUCCESS, FAILURE = 0, 1, 2
KIND_NAMES = {REQUEST: "request", SUCCESS: "success", FAILURE: "failure"}

VARIANTS = ("seed-breaker", "unlimited-half-open", "open-forever")

#: a small configuration, so that every path of the specification fits in a short sequence
PROOF_CONFIG = BreakerConfig(
    failure_threshold=2,
    window_size=4,
    failure_rate=75,
    min_calls=4,
    reset_timeout=5,
    half_open_max=2,
    success_threshold=2,
)

PROPERTIES = (
    "Closed Admits",
    "Open Rejects Until Reset Timeout",
    "Trial After Reset Timeout",
    "HalfOpen Trial Limit",
    "Closes Only After S Successes",
    "Trial Failure Reopens",
    "Opens Only On Failures",
)


@dataclass
class State:
    """Symbolic breaker state (the implementation's variables) plus the monitor's ghosts."""

    mode: Any
    failures: Any
    window: list[Any]  # W bools, oldest first; slots past wlen are False
    wlen: Any
    opened_at: Any
    trials: Any
    successes: Any
    pending: Any  # environment: calls admitted in this period, not yet completed
    # ghosts, from observable behaviour only
    g_opened: Any  # when the breaker last became Open
    g_admits: Any  # calls admitted in this HalfOpen period
    g_successes: Any  # trial successes in this HalfOpen period
    g_consecutive: Any  # consecutive failures in this Closed period
    g_window: list[Any]
    g_wlen: Any


def _initial(cfg: BreakerConfig) -> State:
    zero = z3.IntVal(0)
    w = [z3.BoolVal(False)] * cfg.window_size
    return State(
        z3.IntVal(CLOSED), zero, list(w), zero, z3.IntVal(-1), zero, zero, zero,
        z3.IntVal(-1), zero, zero, zero, list(w), zero,
    )  # fmt: skip


def _push(cfg: BreakerConfig, window: list[Any], wlen: Any, failed: Any) -> tuple[list[Any], Any]:
    size = cfg.window_size
    if not size:
        return window, wlen
    full = wlen >= size
    new = []
    for j in range(size):
        shifted = failed if j == size - 1 else window[j + 1]
        new.append(z3.If(full, shifted, z3.If(wlen == j, failed, window[j])))
    return new, z3.If(full, wlen, wlen + 1)


def _trips(cfg: BreakerConfig, consecutive: Any, window: list[Any], wlen: Any) -> Any:
    rules = []
    if cfg.failure_threshold:
        rules.append(consecutive >= cfg.failure_threshold)
    if cfg.window_size:
        count = z3.Sum([z3.If(b, 1, 0) for b in window])
        rules.append(z3.And(wlen >= cfg.min_calls, count * 100 >= cfg.failure_rate * wlen))
    return z3.Or(rules) if rules else z3.BoolVal(False)


def _step(
    cfg: BreakerConfig, bug: str | None, s: State, kind: Any, now: Any
) -> tuple[State, Any, Any]:
    """One symbolic step: (new state, admitted?, the environment's precondition)."""
    F = z3.BoolVal(False)
    is_req, is_fail = kind == REQUEST, kind == FAILURE
    is_out = z3.Not(is_req)
    T = cfg.reset_timeout

    # ---- the breaker (the implementation's variables, bugs included)
    unlimited = bug in ("unlimited-half-open", "seed-breaker")
    timeout_in_allow = bug != "open-forever"
    to_half = z3.And(is_req, s.mode == OPEN, now >= s.opened_at + T) if timeout_in_allow else F
    admit_half = z3.BoolVal(True) if unlimited else s.trials < cfg.half_open_max
    admit = z3.And(
        is_req,
        z3.Or(s.mode == CLOSED, to_half, z3.And(s.mode == HALF_OPEN, admit_half)),
    )
    # outcomes in Closed
    window, wlen = _push(cfg, s.window, s.wlen, is_fail)
    if bug == "seed-breaker":
        failures = z3.If(is_fail, s.failures + 1, s.failures)
    else:
        failures = z3.If(is_fail, s.failures + 1, 0)
    closed_trip = z3.And(is_out, s.mode == CLOSED, _trips(cfg, failures, window, wlen))
    closed_stay = z3.And(is_out, s.mode == CLOSED, z3.Not(closed_trip))
    # outcomes in HalfOpen
    needed = 1 if bug == "seed-breaker" else cfg.success_threshold
    half_fail = z3.And(is_fail, s.mode == HALF_OPEN)
    half_succ = z3.And(kind == SUCCESS, s.mode == HALF_OPEN)
    half_close = z3.And(half_succ, s.successes + 1 >= needed)
    # outcomes in Open (only the seeded bug looks here; no current call is ever outstanding)
    open_late = (
        z3.And(is_out, s.mode == OPEN, now >= s.opened_at + T) if bug == "open-forever" else F
    )
    to_open = z3.Or(closed_trip, half_fail)
    changed = z3.Or(to_open, half_close, to_half, open_late)
    mode = z3.If(
        to_open,
        OPEN,
        z3.If(half_close, CLOSED, z3.If(z3.Or(to_half, open_late), HALF_OPEN, s.mode)),
    )
    window2 = [z3.If(changed, F, z3.If(closed_stay, w, o)) for w, o in zip(window, s.window)]
    new = State(
        mode=mode,
        failures=z3.If(changed, 0, z3.If(closed_stay, failures, s.failures)),
        window=window2,
        wlen=z3.If(changed, 0, z3.If(closed_stay, wlen, s.wlen)),
        opened_at=z3.If(to_open, now, s.opened_at),
        trials=z3.If(
            changed,
            z3.If(to_half, 1, 0),
            z3.If(z3.And(admit, s.mode == HALF_OPEN), s.trials + 1, s.trials),
        ),
        successes=z3.If(changed, 0, z3.If(half_succ, s.successes + 1, s.successes)),
        pending=z3.If(
            changed,
            z3.If(admit, 1, 0),
            s.pending + z3.If(admit, 1, 0) - z3.If(is_out, 1, 0),
        ),
        g_opened=s.g_opened,
        g_admits=s.g_admits,
        g_successes=s.g_successes,
        g_consecutive=s.g_consecutive,
        g_window=s.g_window,
        g_wlen=s.g_wlen,
    )
    # ---- the monitor: ghosts from observable behaviour (decisions, outcomes, modes)
    entered = new.mode != s.mode
    new.g_opened = z3.If(z3.And(entered, new.mode == OPEN), now, s.g_opened)
    new.g_admits = z3.If(
        entered,
        z3.If(z3.And(new.mode == HALF_OPEN, admit), 1, 0),
        z3.If(z3.And(new.mode == HALF_OPEN, admit), s.g_admits + 1, s.g_admits),
    )
    new.g_successes = z3.If(
        entered,
        0,
        z3.If(z3.And(s.mode == HALF_OPEN, kind == SUCCESS), s.g_successes + 1, s.g_successes),
    )
    in_closed_out = z3.And(is_out, s.mode == CLOSED)
    g_cons = z3.If(is_fail, s.g_consecutive + 1, 0)
    g_window, g_wlen = _push(cfg, s.g_window, s.g_wlen, is_fail)
    new.g_consecutive = z3.If(entered, 0, z3.If(in_closed_out, g_cons, s.g_consecutive))
    new.g_window = [
        z3.If(entered, F, z3.If(in_closed_out, w, o)) for w, o in zip(g_window, s.g_window)
    ]
    new.g_wlen = z3.If(entered, 0, z3.If(in_closed_out, g_wlen, s.g_wlen))
    # ---- the environment: an outcome needs an admitted call of this period still in flight
    pre = z3.And(kind >= 0, kind <= 2, z3.Implies(is_out, s.pending > 0))
    # ---- the properties, for this step
    trial_successes = s.g_successes + z3.If(half_succ, 1, 0)
    props = {
        "Closed Admits": z3.Implies(z3.And(is_req, s.mode == CLOSED), admit),
        "Open Rejects Until Reset Timeout": z3.Implies(
            z3.And(is_req, s.mode == OPEN, now < s.g_opened + T), z3.Not(admit)
        ),
        "Trial After Reset Timeout": z3.Implies(
            z3.And(is_req, s.mode == OPEN, now >= s.g_opened + T), admit
        ),
        "HalfOpen Trial Limit": new.g_admits <= cfg.half_open_max,
        "Closes Only After S Successes": z3.Implies(
            z3.And(s.mode == HALF_OPEN, new.mode == CLOSED),
            trial_successes >= cfg.success_threshold,
        ),
        "Trial Failure Reopens": z3.Implies(half_fail, new.mode == OPEN),
        "Opens Only On Failures": z3.Implies(
            z3.And(s.mode == CLOSED, new.mode == OPEN),
            z3.And(in_closed_out, _trips(cfg, g_cons, g_window, g_wlen)),
        ),
    }
    return new, admit, (pre, props)


@dataclass
class Counterexample:
    property: str
    steps: list[dict[str, Any]]

    def text(self, cfg: BreakerConfig) -> str:
        lines = [f"counterexample to {self.property} ({len(self.steps)} inputs):"]
        for i, st in enumerate(self.steps, start=1):
            dec = f" -> {st['decision']}" if st["event"] == "request" else ""
            lines.append(
                f"  {i:2}. t={st['time']:<4} {st['event']:<8}{dec:<10} "
                f"{st['before']} -> {st['after']}"
            )
        return "\n".join(lines)


@dataclass
class BMCResult:
    bug: str | None
    k: int
    holds: bool
    counterexample: Counterexample | None
    seconds_per_k: list[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "bug": self.bug,
            "k": self.k,
            "holds": self.holds,
            "property": self.counterexample.property if self.counterexample else None,
            "inputs": self.counterexample.steps if self.counterexample else None,
            "seconds_per_k": [round(s, 4) for s in self.seconds_per_k],
        }


def bmc(cfg: BreakerConfig = PROOF_CONFIG, bug: str | None = None, k: int = 12) -> BMCResult:
    """Check every property for every input sequence of length <= k; the shortest
    counterexample if one exists."""
    problems = cfg.problems()
    if problems:
        raise ValueError("; ".join(problems))
    solver = z3.Solver()
    s = _initial(cfg)
    kinds, times, states, admits = [], [], [s], []
    per_k: list[float] = []
    for i in range(k):
        started = time.perf_counter()
        kind, now = z3.Int(f"kind_{i}"), z3.Int(f"time_{i}")
        solver.add(now >= 0 if i == 0 else now >= times[-1])
        new, admit, (pre, props) = _step(cfg, bug, s, kind, now)
        solver.add(pre)
        kinds.append(kind)
        times.append(now)
        admits.append(admit)
        states.append(new)
        solver.push()
        solver.add(z3.Or([z3.Not(p) for p in props.values()]))
        verdict = solver.check()
        if verdict == z3.sat:
            model = solver.model()
            broken = next(name for name, p in props.items() if z3.is_false(model.eval(p, True)))
            per_k.append(time.perf_counter() - started)
            steps = []
            for j in range(i + 1):
                kd = model.eval(kinds[j], True).as_long()
                steps.append(
                    {
                        "time": model.eval(times[j], True).as_long(),
                        "event": KIND_NAMES[kd],
                        "decision": (
                            ("admit" if z3.is_true(model.eval(admits[j], True)) else "reject")
                            if kd == REQUEST
                            else None
                        ),
                        "before": MODE_NAMES[model.eval(states[j].mode, True).as_long()],
                        "after": MODE_NAMES[model.eval(states[j + 1].mode, True).as_long()],
                    }
                )
            return BMCResult(bug, i + 1, False, Counterexample(broken, steps), per_k)
        if verdict != z3.unsat:
            raise RuntimeError(f"z3 answered {verdict} at step {i + 1}")
        solver.pop()
        solver.add(z3.And(list(props.values())))  # holds at step i for every sequence
        s = new
        per_k.append(time.perf_counter() - started)
    return BMCResult(bug, k, True, None, per_k)


def concrete_run(
    cfg: BreakerConfig, bug: str | None, inputs: list[tuple[int, str]]
) -> list[tuple[str | None, str]]:
    """Evaluate the symbolic step function on concrete inputs: (decision, mode after) per
    input. Lets tests cross-check the encoding against the Python specification."""
    s = _initial(cfg)
    out = []
    code = {"request": REQUEST, "success": SUCCESS, "failure": FAILURE}
    for now, event in inputs:
        s, admit, _ = _step(cfg, bug, s, z3.IntVal(code[event]), z3.IntVal(now))
        s = State(*(z3.simplify(v) if not isinstance(v, list) else [z3.simplify(x) for x in v]
                    for v in vars(s).values()))  # fmt: skip
        mode = MODE_NAMES[z3.simplify(s.mode).as_long()]
        decision = None
        if event == "request":
            decision = "admit" if z3.is_true(z3.simplify(admit)) else "reject"
        out.append((decision, mode))
    return out


def _parser() -> argparse.ArgumentParser:
    p = one_line_parser(
        "treadle prove breaker",
        description="bounded model checking of the circuit breaker specification with z3",
    )
    p.add_argument("--k", type=int, default=12, help="sequence length bound (default 12)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bug", choices=VARIANTS, help="check a seeded breaker variant of the mesh")
    g.add_argument(
        "--all",
        action="store_true",
        help="check the specification and every seeded variant: exit 0 iff the specification "
        "holds and every variant is refuted",
    )
    d = PROOF_CONFIG
    p.add_argument("--failures", type=int, default=d.failure_threshold, help="N")
    p.add_argument("--window", type=int, default=d.window_size, help="W")
    p.add_argument("--rate", type=int, default=d.failure_rate, help="percent")
    p.add_argument("--min-calls", type=int, default=d.min_calls)
    p.add_argument("--reset", type=int, default=d.reset_timeout, help="reset timeout T")
    p.add_argument("--half-open", type=int, default=d.half_open_max, help="K")
    p.add_argument("--successes", type=int, default=d.success_threshold, help="S")
    p.add_argument("--json", action="store_true")
    return p


def _report(r: BMCResult, cfg: BreakerConfig, as_json: bool) -> None:
    if as_json:
        return
    name = f"variant {r.bug}" if r.bug else "the specification"
    total = sum(r.seconds_per_k)
    if r.holds:
        print(
            f"{name}: all {len(PROPERTIES)} properties hold for every input sequence of length "
            f"<= {r.k} ({total:.2f} s)"
        )
    else:
        assert r.counterexample is not None
        print(f"{name}: {r.counterexample.text(cfg)}")
        print(f"  (found at k={r.k} in {total:.2f} s)")


def run(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    cfg = BreakerConfig(
        failure_threshold=args.failures,
        window_size=args.window,
        failure_rate=args.rate,
        min_calls=args.min_calls,
        reset_timeout=args.reset,
        half_open_max=args.half_open,
        success_threshold=args.successes,
    )
    problems = cfg.problems()
    if problems or args.k < 1:
        print("error: " + "; ".join(problems or ["--k must be at least 1"]), file=sys.stderr)
        return 2
    targets: list[str | None] = [None, *VARIANTS] if args.all else [args.bug]
    results = [bmc(cfg, bug, args.k) for bug in targets]
    for r in results:
        _report(r, cfg, args.json)
    spec_ok = results[0].holds
    refuted = all(not r.holds for r in results[1:])
    passed = spec_ok and refuted if args.all else spec_ok
    if args.json:
        # verdict: "proved" = the exit code 0 (with --all: the specification holds and every
        # seeded variant is refuted), "counterexample" = exit 1
        verdict = "proved" if passed else "counterexample"
        out = {"verdict": verdict, "target": "breaker", "config": cfg.to_json()}
        print(json.dumps({**out, "results": [r.to_json() for r in results]}))
    if args.all:
        if not args.json:
            print(
                "summary: specification "
                + ("holds" if spec_ok else "REFUTED")
                + "; "
                + ", ".join(
                    f"{r.bug} {'refuted' if not r.holds else 'NOT refuted'}" for r in results[1:]
                )
            )
        return 0 if passed else 1
    return 0 if passed else 1
