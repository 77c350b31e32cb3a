"""The circuit breaker specification: a pure step function.

A breaker guards calls to one upstream. Its input is a sequence of ``(time, event)`` where the
event is a *call request* (answered ``admit`` or ``reject``) or the *outcome* (``success`` or
``failure``) of a call it admitted earlier. Time is logical and never goes backwards.

* **Closed**: every call is admitted. A failure counts towards ``failure_threshold`` consecutive
  failures (a success resets the count) and goes into a sliding window of the last
  ``window_size`` outcomes; the breaker opens when the count reaches the threshold, or when the
  window holds at least ``min_calls`` outcomes of which at least ``failure_rate`` percent are
  failures. Either rule is off when its size is 0.
* **Open**: every call is rejected at once until ``reset_timeout`` ticks have passed since it
  opened; the first call request after that moves it to HalfOpen and is admitted as a trial.
* **HalfOpen**: at most ``half_open_max`` (K) trial calls are admitted, the rest rejected.
  ``success_threshold`` (S <= K) trial successes close it; one trial failure reopens it.

Outcomes of calls admitted before the last transition are *stale* and ignored: a call admitted
while Closed that fails after the breaker opened says nothing about the trial calls. To tell
them apart every state carries a generation number that each transition bumps; a call belongs
to the generation it was admitted in (the ``gen`` of the state after its admission).

The same specification is encoded in z3 by ``checkers/breaker/proofs.py`` and replayed against
recorded histories by ``checkers/breaker``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"
MODES = (CLOSED, OPEN, HALF_OPEN)

REQUEST = "request"
SUCCESS = "success"
FAILURE = "failure"
EVENTS = (REQUEST, SUCCESS, FAILURE)

ADMIT = "admit"
REJECT = "reject"


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 3  # N consecutive failures open it (0: rule off)
    window_size: int = 6  # sliding window of the last W outcomes while Closed (0: rule off)
    failure_rate: int = 50  # percent of failures in the window that opens it
    min_calls: int = 6  # the rate is judged once the window holds this many outcomes
    reset_timeout: int = 20  # ticks Open rejects before a trial is allowed
    half_open_max: int = 2  # K: trial calls admitted while HalfOpen
    success_threshold: int = 2  # S: trial successes that close it

    def problems(self) -> list[str]:
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                out.append(f"{f.name} must be a non-negative integer, got {v!r}")
        if out:
            return out
        if self.half_open_max < 1:
            out.append("half_open_max (K) must be at least 1")
        if not 1 <= self.success_threshold <= self.half_open_max:
            out.append(
                f"success_threshold (S={self.success_threshold}) must be between 1 and "
                f"half_open_max (K={self.half_open_max}), or HalfOpen could never close"
            )
        if not 0 < self.failure_rate <= 100:
            out.append(f"failure_rate is a percentage in 1..100, got {self.failure_rate}")
        if self.window_size and not 1 <= self.min_calls <= self.window_size:
            out.append(f"min_calls must be in 1..window_size ({self.window_size})")
        return out

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BreakerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class BreakerState(NamedTuple):
    mode: str = CLOSED
    gen: int = 0  # bumped by every transition
    failures: int = 0  # consecutive failures while Closed
    window: tuple[bool, ...] = ()  # last outcomes while Closed, True = failure (oldest first)
    opened_at: int = -1  # when it last opened
    since: int = 0  # when the current mode began
    trials: int = 0  # trial calls admitted in this HalfOpen
    successes: int = 0  # trial successes in this HalfOpen


class Input(NamedTuple):
    time: int
    event: str  # request | success | failure
    gen: int | None = None  # for outcomes: the generation the call was admitted in


def init() -> BreakerState:
    return BreakerState()


def _to(s: BreakerState, mode: str, now: int) -> BreakerState:
    return BreakerState(
        mode=mode,
        gen=s.gen + 1,
        opened_at=now if mode == OPEN else s.opened_at,
        since=now,
    )


def window_trips(cfg: BreakerConfig, window: tuple[bool, ...]) -> bool:
    if not cfg.window_size or len(window) < cfg.min_calls:
        return False
    return sum(window) * 100 >= cfg.failure_rate * len(window)


def step(cfg: BreakerConfig, s: BreakerState, inp: Input) -> tuple[str | None, BreakerState]:
    """One input. Returns (decision, new state): ``admit``/``reject`` for a request (an admitted
    call belongs to generation ``new_state.gen``), None for an outcome."""
    now = inp.time
    if inp.event == REQUEST:
        if s.mode == CLOSED:
            return ADMIT, s
        if s.mode == OPEN:
            if now >= s.opened_at + cfg.reset_timeout:
                h = _to(s, HALF_OPEN, now)
                return ADMIT, h._replace(trials=1)
            return REJECT, s
        if s.trials < cfg.half_open_max:
            return ADMIT, s._replace(trials=s.trials + 1)
        return REJECT, s
    if inp.event not in (SUCCESS, FAILURE):
        raise ValueError(f"unknown breaker event {inp.event!r}")
    if inp.gen != s.gen:
        return None, s  # stale: the call was admitted before the last transition
    failed = inp.event == FAILURE
    if s.mode == CLOSED:
        window = s.window
        if cfg.window_size:
            window = (window + (failed,))[-cfg.window_size :]
        failures = s.failures + 1 if failed else 0
        if (cfg.failure_threshold and failures >= cfg.failure_threshold) or window_trips(
            cfg, window
        ):
            return None, _to(s, OPEN, now)
        return None, s._replace(failures=failures, window=window)
    if s.mode == HALF_OPEN:
        if failed:
            return None, _to(s, OPEN, now)
        successes = s.successes + 1
        if successes >= cfg.success_threshold:
            return None, _to(s, CLOSED, now)
        return None, s._replace(successes=successes)
    return None, s  # Open admits nothing, so no current-generation outcome can arrive


def describe(cfg: BreakerConfig, s: BreakerState) -> str:
    """The state in words, for counterexamples."""
    if s.mode == CLOSED:
        text = f"Closed since t={s.since}, {s.failures} consecutive failure(s)"
        if cfg.failure_threshold:
            text += f" (opens at {cfg.failure_threshold})"
        if cfg.window_size:
            text += (
                f", window {sum(s.window)}/{len(s.window)} failures "
                f"(opens at {cfg.failure_rate}% over at least {cfg.min_calls} calls)"
            )
        return text
    if s.mode == OPEN:
        return (
            f"Open since t={s.opened_at} (reset timeout {cfg.reset_timeout}: trials from "
            f"t={s.opened_at + cfg.reset_timeout})"
        )
    return (
        f"HalfOpen since t={s.since}, {s.trials} of at most {cfg.half_open_max} trial(s) "
        f"admitted, {s.successes} of {cfg.success_threshold} success(es) needed"
    )
