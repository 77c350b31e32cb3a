"""A run seen as a schedule of events, for shrinking.

A choice list is positional: the k-th integer picks the k-th decision, so deleting one choice
shifts the meaning of every later one, and a shrinker working on integers alone gets stuck on
long runs. Here a run is re-read as a *schedule*: the choices a run made before its first step
(the prelude), then one record per step, forced steps (a single enabled event) included: the
*identity* of the event it took (which message from whom to whom, which timer, which fault), the
sub-choices made during that step (latencies, fates, random draws, with their kinds), and what
the step did causally (which pending item it consumed, which it created, which history events it
recorded), from which :mod:`treadle.shrink.causal` computes happens-before.

Replaying a schedule looks each recorded event up among the enabled ones by identity, so deleting
a record leaves the others meaning what they meant (delta debugging over events, as in Zeller's
ddmin applied to schedules). When the next record's event is pending but not yet enabled (a timed
world enables only events due close to the earliest one), the earliest event goes first and the
record waits; a record whose event is not pending at all is skipped. Once the records run out
every choice is 0, the most natural one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from treadle.world import Chooser, Fault, Pending, World


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
    #: the kind of each sub-choice ("fate", "latency", "random", "partition", ...)
    kinds: list[str] = field(default_factory=list)
    #: the node whose state the step changed (receiver, timer owner, crashed node), or None
    node: str | None = None
    #: seq of the message or timer the step consumed
    consumed: int | None = None
    #: seqs of the messages and timers created during the step: (first, last], as seq numbers
    created: tuple[int, int] = (0, 0)
    #: history indexes recorded during the step: [first, last)
    history: tuple[int, int] = (0, 0)


@dataclass
class Schedule:
    prelude: list[int]
    steps: list[Step]

    def without(self, drop: set[int]) -> Schedule:
        return Schedule(self.prelude, [s for i, s in enumerate(self.steps) if i not in drop])


class _Watcher(Chooser):
    """Shared plumbing: wrap ``world.apply`` so every step (forced or chosen) is seen."""

    world: World | None = None

    def attach(self, world: World) -> None:
        self.world = world
        inner: Callable[[Any], None] = world.apply

        def apply(ev: Any) -> None:
            if world._settle_rng is not None:  # settling consumes no choices: not a step here
                inner(ev)
                return
            self._before(ev)
            inner(ev)
            self._after(ev)

        world.apply = apply  # type: ignore[method-assign]

    def _before(self, ev: Any) -> None:
        pass

    def _after(self, ev: Any) -> None:
        pass


class ScheduleRecorder(_Watcher):
    """Wraps a chooser and records the schedule of the run it drives."""

    def __init__(self, inner: Chooser):
        self.inner = inner
        self.schedule = Schedule([], [])
        self._subs: list[int] = self.schedule.prelude
        self._kinds: list[str] = []
        self._step: Step | None = None

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = self.inner.choose(kind, n, options)
        self._subs.append(v)
        self._kinds.append(kind)
        return v

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        return self.inner.choose_event(events, n_normal, faults)

    def _before(self, ev: Any) -> None:
        w = self.world
        assert w is not None
        node: str | None = ev.node if type(ev) in (Pending, Fault) else None
        if type(ev) is Pending:
            if ev.kind == "deliver" and (
                ev.node in w.down or not w.connected(ev.src or "", ev.node)
            ):
                node = None  # lost on the way: the receiver's state does not change
            elif ev.kind == "timer" and w.nodes.get(ev.node) is None:
                node = None
        step = Step(
            event_key(ev),
            node=node,
            consumed=ev.seq if type(ev) is Pending else None,
            created=(w._seq, w._seq),
            history=(len(w.history), len(w.history)),
        )
        self._step = step
        self.schedule.steps.append(step)
        self._subs = step.subs
        self._kinds = step.kinds

    def _after(self, ev: Any) -> None:
        w, step = self.world, self._step
        assert w is not None and step is not None
        step.created = (step.created[0], w._seq)
        step.history = (step.history[0], len(w.history))


class ScheduleReplay(_Watcher):
    """Drives a run from a schedule, matching events by identity, and records the plain choice
    list of the run it produced (``choices``), which replays it exactly."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self.pos = 0
        self._subs: list[int] = list(schedule.prelude)
        self._sub_pos = 0
        self._chosen = False
        self.choices: list[int] = []

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = 0
        if self._sub_pos < len(self._subs):
            v = self._subs[self._sub_pos] % n
            self._sub_pos += 1
        self.choices.append(v)
        return v

    def _pending_keys(self) -> set[tuple[Any, ...]]:
        w = self.world
        if w is None:
            return set()
        return {event_key(p) for _, _, p in w._pending if p.alive}

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        steps = self.schedule.steps
        self._chosen = True
        pending: set[tuple[Any, ...]] | None = None
        while self.pos < len(steps):
            step = steps[self.pos]
            for i, ev in enumerate(events):
                if event_key(ev) == step.key:
                    self.pos += 1
                    self._subs, self._sub_pos = step.subs, 0
                    self.choices.append(i)
                    return i
            if step.key[0] != "fault":
                if pending is None:
                    pending = self._pending_keys()
                if step.key in pending:
                    break  # due later: the earliest event goes first, the record waits
            self.pos += 1  # its event does not exist in this run: skip the record
        self._subs, self._sub_pos = [], 0
        self.choices.append(0)
        return 0

    def _before(self, ev: Any) -> None:
        if self._chosen:
            self._chosen = False
            return
        # a forced step (one event enabled): take its record if it is the next one
        steps = self.schedule.steps
        if self.pos < len(steps) and steps[self.pos].key == event_key(ev):
            self._subs, self._sub_pos = steps[self.pos].subs, 0
            self.pos += 1
        else:
            self._subs, self._sub_pos = [], 0
