"""The proxy's circuit breaker, one per upstream cluster.

This is the mesh's own implementation of the specification in ``models/breaker.py`` (the spec
is what the checker replays; this is what the proxy runs, seeded bugs included). A call is
admitted by :meth:`Breaker.allow`, and its outcome reported by :meth:`Breaker.record` with the
generation it was admitted in: every transition bumps the generation, so the outcome of a call
admitted before the breaker last changed state is stale and ignored.
"""

from __future__ import annotations

from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class Breaker:
    __slots__ = (
        "cfg",
        "bug",
        "mode",
        "gen",
        "failures",
        "window",
        "opened_at",
        "since",
        "trials",
        "successes",
    )

    def __init__(self, cfg: dict[str, int], bug: str | None) -> None:
        self.cfg = cfg
        self.bug = bug
        self.mode = CLOSED
        self.gen = 0
        self.failures = 0
        self.window: list[bool] = []
        self.opened_at = -1
        self.since = 0
        self.trials = 0
        self.successes = 0

    def state(self) -> tuple[Any, ...]:
        return (
            self.mode,
            self.gen,
            self.failures,
            tuple(self.window),
            self.opened_at,
            self.since,
            self.trials,
            self.successes,
        )

    def _to(self, mode: str, now: int) -> tuple[str, str]:
        old = self.mode
        self.mode = mode
        self.gen += 1
        self.since = now
        if mode == OPEN:
            self.opened_at = now
        self.failures = 0
        self.window = []
        self.trials = 0
        self.successes = 0
        return old, mode

    def allow(self, now: int) -> tuple[bool, tuple[str, str] | None]:
        """Admit or reject a call now; also returns the transition it caused, if any."""
        if self.mode == CLOSED:
            return True, None
        if self.mode == OPEN:
            if self.bug == "open-forever":
                return False, None  # the reset timeout is looked at in record() instead
            if now >= self.opened_at + self.cfg["reset_timeout"]:
                change = self._to(HALF_OPEN, now)
                self.trials = 1
                return True, change
            return False, None
        unlimited = self.bug in ("unlimited-half-open", "seed-breaker")
        if unlimited or self.trials < self.cfg["half_open_max"]:
            self.trials += 1
            return True, None
        return False, None

    def record(self, now: int, gen: int, failed: bool) -> tuple[str, str] | None:
        """The outcome of a call admitted in generation ``gen``; returns the transition, if any."""
        if gen != self.gen:
            return None  # stale: admitted before the last transition
        cfg = self.cfg
        if self.mode == CLOSED:
            if cfg["window_size"]:
                self.window.append(failed)
                if len(self.window) > cfg["window_size"]:
                    del self.window[0]
            if failed:
                self.failures += 1
            elif self.bug != "seed-breaker":
                self.failures = 0
            n = len(self.window)
            if (cfg["failure_threshold"] and self.failures >= cfg["failure_threshold"]) or (
                cfg["window_size"]
                and n >= cfg["min_calls"]
                and sum(self.window) * 100 >= cfg["failure_rate"] * n
            ):
                return self._to(OPEN, now)
            return None
        if self.mode == HALF_OPEN:
            if failed:
                return self._to(OPEN, now)
            self.successes += 1
            needed = 1 if self.bug == "seed-breaker" else cfg["success_threshold"]
            if self.successes >= needed:
                return self._to(CLOSED, now)
            return None
        # Open admits no call, so no outcome of the current generation ever reaches this line:
        # the seeded bug open-forever checks the reset timeout here, where it is never taken.
        if self.bug == "open-forever" and now >= self.opened_at + cfg["reset_timeout"]:
            return self._to(HALF_OPEN, now)
        return None
