"""A run seen as a schedule of events, for shrinking.

A choice list is positional: the k-th integer picks the k-th decision, so deleting one choice
shifts the meaning of every later one, and a shrinker working on integers alone gets stuck on
long runs. Here a run is re-read as a *schedule*: the choices a run made before its first step
(the prelude), then one record per step: the *identity* of the event it took (which message from
whom to whom, which timer, which fault) and the sub-choices made during that step (latencies,
fates, random draws). Replaying a schedule looks each recorded event up among the enabled ones
by identity, so deleting a step leaves the others meaning what they meant (delta debugging over
events, as in Zeller's ddmin applied to schedules). A record whose event is not enabled when its
turn comes is skipped; once the records run out every choice is 0, the most natural one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from treadle.world import Chooser, Fault, Pending


def event_key(ev: Any) -> tuple[Any, ...]:
    if type(ev) is Pending:
        if ev.kind == "timer":
            return ("timer", ev.node, ev.name)
        return ("deliver", ev.src, ev.node, repr(ev.msg))
    if type(ev) is Fault:
        return ("fault", ev.kind, ev.node)
    return ("other", repr(ev))


@dataclass
class Step:
    key: tuple[Any, ...]
    subs: list[int] = field(default_factory=list)


@dataclass
class Schedule:
    prelude: list[int]
    steps: list[Step]


class ScheduleRecorder(Chooser):
    """Wraps a chooser and records the schedule of the run it drives."""

    def __init__(self, inner: Chooser):
        self.inner = inner
        self.schedule = Schedule([], [])
        self._current: list[int] = self.schedule.prelude

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = self.inner.choose(kind, n, options)
        self._current.append(v)
        return v

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        i = self.inner.choose_event(events, n_normal, faults)
        step = Step(event_key(events[i]))
        self.schedule.steps.append(step)
        self._current = step.subs
        return i


class ScheduleReplay(Chooser):
    """Drives a run from a schedule, matching events by identity, and records the plain choice
    list of the run it produced (``choices``), which replays it exactly."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.pos = 0
        self._subs: list[int] = list(schedule.prelude)
        self._sub_pos = 0
        self.choices: list[int] = []

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = 0
        if self._sub_pos < len(self._subs):
            v = self._subs[self._sub_pos] % n
            self._sub_pos += 1
        self.choices.append(v)
        return v

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        steps = self.schedule.steps
        while self.pos < len(steps):
            step = steps[self.pos]
            self.pos += 1
            for i, ev in enumerate(events):
                if event_key(ev) == step.key:
                    self._subs, self._sub_pos = step.subs, 0
                    self.choices.append(i)
                    return i
        self._subs, self._sub_pos = [], 0
        self.choices.append(0)
        return 0
