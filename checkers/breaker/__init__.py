"""Circuit breaker conformance: does a recorded history of breaker decisions follow the
specification (:mod:`models.breaker`)?

The checker replays the events of each breaker through the specification's step function and
reports the first divergence in the breaker's own terms ("at t=57 the breaker for a-v1 at p1
admitted a call while Open (opened at t=40, reset timeout 30)").

Event schema (JSON Lines, one object per line; other events are ignored):

``breaker-config``
    ``{"type": "breaker-config", "upstream": "svc-b", "node": "p1", "failure_threshold": 3,
    "window_size": 6, "failure_rate": 50, "min_calls": 6, "reset_timeout": 20,
    "half_open_max": 2, "success_threshold": 2}``: the parameters of one breaker (missing keys
    take the defaults of :class:`models.breaker.BreakerConfig`). Optional when ``--config``-like
    defaults fit; must come before the breaker's first call.
``breaker-call``
    ``{"type": "breaker-call", "time": 57, "upstream": "svc-b", "node": "p1", "call": "r7.1",
    "decision": "admit" | "reject", "state": "closed" | "open" | "half-open"}``: a call
    request and the breaker's decision (``state``, optional, is the breaker's state right
    after the decision).
``breaker-outcome``
    ``{"type": "breaker-outcome", "time": 60, "upstream": "svc-b", "node": "p1", "call":
    "r7.1", "outcome": "success" | "failure", "state": ...}``: the outcome of an admitted call
    (a timeout is a failure); ``state`` as above.
``breaker-state`` (optional)
    ``{"type": "breaker-state", "upstream": "svc-b", "node": "p1", "from": "closed", "to":
    "open"}``: a transition, recorded just before the call or outcome that causes it. Once a
    breaker has recorded one, every transition of it must be recorded, and only real ones: the
    transition the specification makes at the breaker's next call or outcome.

A breaker is identified by ``(node, upstream)``; ``node`` may be omitted when one process
records the history. ``time`` is any non-decreasing integer clock.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult
from treadle.models import breaker as spec

PROPERTY = "Circuit Breaker Conformance"

_MODE_NAMES = {spec.CLOSED: "Closed", spec.OPEN: "Open", spec.HALF_OPEN: "HalfOpen"}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class _Breaker:
    __slots__ = (
        "name",
        "cfg",
        "state",
        "calls",
        "last_time",
        "opened_reason",
        "says_transitions",
        "announced",
    )

    def __init__(self, name: str, cfg: spec.BreakerConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.state = spec.init()
        self.calls: dict[str, int] = {}  # admitted call -> generation
        self.last_time: Any = None
        self.opened_reason = ""
        self.says_transitions = False  # it has recorded a breaker-state event
        self.announced: tuple[Any, Any] | None = None  # (from, to) awaiting its call/outcome


class BreakerMonitor:
    """Incremental conformance check: feed events one by one; the first divergence is kept."""

    def __init__(self, default_config: spec.BreakerConfig | None = None) -> None:
        self.default = default_config or spec.BreakerConfig()
        self.breakers: dict[tuple[Any, Any], _Breaker] = {}
        self.violation: CheckResult | None = None
        self.events = 0

    def _breaker(self, ev: dict[str, Any]) -> _Breaker:
        key = (ev.get("node"), ev.get("upstream"))
        b = self.breakers.get(key)
        if b is None:
            who = f"the breaker for {key[1]}" + (f" at {key[0]}" if key[0] is not None else "")
            b = self.breakers[key] = _Breaker(who, self.default)
        return b

    def _fail(self, message: str, ev: dict[str, Any], b: _Breaker, **details: Any) -> CheckResult:
        self.violation = CheckResult.violation(
            PROPERTY,
            message,
            event=ev,
            breaker=b.name,
            spec_state=spec.describe(b.cfg, b.state),
            **details,
        )
        return self.violation

    def feed(self, ev: dict[str, Any]) -> CheckResult | None:
        if self.violation is not None:
            return self.violation
        t = ev.get("type")
        if t not in ("breaker-call", "breaker-outcome", "breaker-config", "breaker-state"):
            return None
        b = self._breaker(ev)
        if t == "breaker-state":
            if b.announced is not None:
                return self._fail(
                    f"{b.name} recorded a transition {b.announced[0]} -> {b.announced[1]} and then "
                    f"{ev.get('from')} -> {ev.get('to')} with no call or outcome between.",
                    ev,
                    b,
                )
            b.says_transitions = True
            b.announced = (ev.get("from"), ev.get("to"))
            return None
        self.events += 1
        if t == "breaker-config":
            cfg = spec.BreakerConfig.from_json({**self.default.to_json(), **ev})
            problems = cfg.problems()
            if problems:
                return self._fail(
                    f"{b.name} has an invalid configuration: {'; '.join(problems)}.", ev, b
                )
            b.cfg = cfg
            return None
        now = ev.get("time")
        if not isinstance(now, int | float):
            return self._fail(f"event {ev.get('index')} of {b.name} has no numeric time.", ev, b)
        if b.last_time is not None and now < b.last_time:
            return self._fail(
                f"time goes backwards for {b.name}: t={now} after t={b.last_time}.", ev, b
            )
        b.last_time = now
        before = b.state
        cfg = b.cfg
        call = ev.get("call")
        if t == "breaker-call":
            decision, after = spec.step(cfg, before, spec.Input(now, spec.REQUEST))
            got = ev.get("decision")
            if got not in (spec.ADMIT, spec.REJECT):
                return self._fail(
                    f"at t={now} {b.name} recorded decision {got!r} for call {call}: "
                    "expected admit or reject.",
                    ev,
                    b,
                )
            if got != decision:
                return self._fail(self._explain_decision(b, now, got, before, after), ev, b)
            if decision == spec.ADMIT:
                b.calls[call] = after.gen
        else:
            outcome = ev.get("outcome")
            if outcome not in (spec.SUCCESS, spec.FAILURE):
                return self._fail(
                    f"at t={now} {b.name} recorded outcome {outcome!r} for call {call}: "
                    "expected success or failure.",
                    ev,
                    b,
                )
            if call not in b.calls:
                return self._fail(
                    f"at t={now} {b.name} recorded the {outcome} of call {call}, which it never "
                    "admitted (or whose outcome was already recorded).",
                    ev,
                    b,
                )
            gen = b.calls.pop(call)
            _, after = spec.step(cfg, before, spec.Input(now, outcome, gen))
            if after.mode == spec.OPEN and before.mode != spec.OPEN:
                b.opened_reason = self._why_opened(cfg, before, after, outcome)
        recorded = ev.get("state")
        if recorded is not None and recorded != after.mode:
            return self._fail(self._explain_state(b, ev, before, after, recorded), ev, b)
        said, b.announced = b.announced, None
        moved = (before.mode, after.mode) if before.mode != after.mode else None
        if b.says_transitions and said != moved:
            what = (
                f"the {ev.get('outcome')} of call {call}"
                if t == "breaker-outcome"
                else f"call {call} ({ev.get('decision')})"
            )
            done = "no transition" if moved is None else f"{moved[0]} -> {moved[1]}"
            told = "none" if said is None else f"{said[0]} -> {said[1]}"
            return self._fail(
                f"at t={now} {what} moved {b.name} by {done} according to the specification, but "
                f"the transition it recorded was {told}: a breaker that records its transitions "
                "must record each one, and only those.",
                ev,
                b,
            )
        b.state = after
        return None

    # ------------------------------------------------------------------ explanations
    def _explain_decision(
        self, b: _Breaker, now: Any, got: str, s: spec.BreakerState, after: spec.BreakerState
    ) -> str:
        cfg = b.cfg
        who = b.name
        if got == spec.ADMIT:
            if s.mode == spec.OPEN:
                return (
                    f"at t={now} {who} admitted a call while Open (opened at t={s.opened_at}"
                    f"{b.opened_reason}, reset timeout {cfg.reset_timeout}): it must reject "
                    f"every call until t={s.opened_at + cfg.reset_timeout}."
                )
            return (
                f"at t={now} {who} admitted a {ordinal(s.trials + 1)} trial call while HalfOpen "
                f"(HalfOpen since t={s.since}; at most K={cfg.half_open_max} trial calls may be "
                "admitted before the trials decide)."
            )
        if s.mode == spec.OPEN:
            return (
                f"at t={now} {who} rejected a call although it had been Open since "
                f"t={s.opened_at} and the reset timeout {cfg.reset_timeout} ran out at "
                f"t={s.opened_at + cfg.reset_timeout}: it should have moved to HalfOpen and "
                "admitted the call as a trial (the breaker stays Open forever)."
            )
        if s.mode == spec.CLOSED:
            return f"at t={now} {who} rejected a call while Closed ({spec.describe(cfg, s)})."
        return (
            f"at t={now} {who} rejected a call while HalfOpen with only {s.trials} of "
            f"K={cfg.half_open_max} trial calls admitted."
        )

    @staticmethod
    def _why_opened(
        cfg: spec.BreakerConfig, s: spec.BreakerState, after: spec.BreakerState, outcome: str
    ) -> str:
        if s.mode == spec.HALF_OPEN:
            return " after a trial call failed"
        if cfg.failure_threshold and s.failures + 1 >= cfg.failure_threshold:
            return f" after {cfg.failure_threshold} consecutive failures"
        return f" after the failure rate over the last {cfg.window_size} calls reached {cfg.failure_rate}%"

    def _explain_state(
        self,
        b: _Breaker,
        ev: dict[str, Any],
        s: spec.BreakerState,
        after: spec.BreakerState,
        recorded: str,
    ) -> str:
        cfg = b.cfg
        now = ev.get("time")
        what = (
            f"the {ev.get('outcome')} of call {ev.get('call')}"
            if ev["type"] == "breaker-outcome"
            else f"call {ev.get('call')} ({ev.get('decision')})"
        )
        rec = _MODE_NAMES.get(recorded, repr(recorded))
        exp = _MODE_NAMES[after.mode]
        base = f"at t={now} {b.name} was {rec} after {what}, but the specification says {exp}"
        if s.mode == spec.CLOSED and recorded == spec.OPEN:
            window = (s.window + (ev.get("outcome") == spec.FAILURE,))[-cfg.window_size :]
            fails = s.failures + 1 if ev.get("outcome") == spec.FAILURE else 0
            return (
                f"{base}: only {fails} consecutive failure(s) (threshold N={cfg.failure_threshold}) "
                f"and {sum(window)} failure(s) in the last {len(window)} calls (opens at "
                f"{cfg.failure_rate}% over at least {cfg.min_calls}); failures before the last "
                "success must not count."
            )
        if s.mode == spec.HALF_OPEN and recorded == spec.CLOSED:
            return (
                f"{base}: it closed after {s.successes + 1} trial success(es), but "
                f"S={cfg.success_threshold} are required."
            )
        return f"{base} (before it: {spec.describe(cfg, s)})."

    def result(self) -> CheckResult:
        if self.violation is not None:
            return self.violation
        return CheckResult.passed(
            PROPERTY,
            f"{len(self.breakers)} breaker(s), {self.events} breaker events: every decision and "
            "state follows the specification.",
            breakers=len(self.breakers),
            events=self.events,
        )


def check_history(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Conformance of a recorded history of breaker events (see the module doc for the schema).

    ``timeout`` is accepted for the CLI's uniform interface; the check is linear in the history.
    """
    mon = BreakerMonitor()
    for ev in events:
        r = mon.feed(ev)
        if r is not None:
            return r
    if not mon.events:
        return CheckResult.unknown(
            PROPERTY,
            "the history has no breaker-call or breaker-outcome events: nothing to check "
            "(see checkers/breaker for the event schema).",
        )
    return mon.result()
