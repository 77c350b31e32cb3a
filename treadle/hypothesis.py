"""Hypothesis strategies that draw whole runs of a system, so Hypothesis finds, shrinks and
remembers counterexamples with its own machinery::

    from hypothesis import given, settings
    import treadle.hypothesis as th

    @settings(max_examples=300, deadline=None)
    @given(th.runs("raft", bug="figure8"))
    def test_raft_is_safe(run):
        th.check(run)          # AssertionError: the property, the message, the replay command

A drawn :class:`Run` is (system, bug, config, fault plan, seed, choices). Every choice the world
asks for (which enabled event happens next, a message's latency and fate, a timer's drift, a
node's random draw, which partition) is *drawn from Hypothesis* while the run executes, so
Hypothesis' shrinker works on the run's choice sequence directly: it deletes and lowers choices,
and a lower choice is a more natural run (0 is the earliest event, no fault, delivered), the
same order treadle's own shrinker and :class:`~treadle.strategies.Replay` use. The fault plan
(how often servers crash, the network partitions, drops and duplicates) is drawn too, and
shrinks towards no faults. Hypothesis' example database stores the draws, so a failure found
once replays first on the next run of the test.

Past ``max_draws`` draws (the run is long) the rest of the run's choices come from a random walk
seeded with the run's ``seed``: Hypothesis can still vary it, and the run is still a pure function
of what was drawn. :attr:`Run.choices` are the choices as the world saw them: a trace of them
replays the run byte for byte (``treadle replay``), and :func:`check` saves one under
``.treadle/traces/<system>/`` for the final, shrunk failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from treadle.run import RunResult, run_once
from treadle.strategies import (
    FAULT_RATE_KEYS,
    Mixed,
    RandomWalk,
    Recorder,
    Replay,
    Strategy,
    split_faults,
)
from treadle.system import System, get_system
from treadle.world import Chooser

__all__ = ["Run", "check", "runs"]

#: per fault kind, the factors a drawn fault plan may apply to the configured rate; the first
#: (no fault of this kind) is where Hypothesis shrinks to
FAULT_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)
#: the keys of a fault plan: the world's fault rates (restart and heal follow their faults)
FAULT_PLAN_KEYS = ("crash_rate", "partition_rate", "drop_rate", "duplicate_rate")
#: most choice bytes drawn per run (Hypothesis' buffer for one example is 8 KiB)
MAX_BYTES = 6000


@dataclass
class Run:
    """One run drawn by :func:`runs`: replayable from ``choices`` alone (with its config)."""

    system: str
    bug: str | None
    config: dict[str, Any]
    #: the drawn fault plan: fault rate keys -> rate (also in ``config``)
    faults: dict[str, float]
    seed: int
    steps: int
    #: every choice the world saw, in order (a trace's choice list)
    choices: list[int]
    result: RunResult | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        shown = self.choices if len(self.choices) <= 40 else self.choices[:40] + ["..."]
        plan = {k: v for k, v in self.faults.items() if v}
        return (
            f"Run(system={self.system!r}, bug={self.bug!r}, seed={self.seed}, faults={plan}, "
            f"steps={self.steps}, {len(self.choices)} choices={shown})"
        )

    def trace(self) -> Any:
        """This run as a :class:`~treadle.Trace` (what ``treadle replay`` reads)."""
        from treadle.trace import Trace

        r = self.execute()
        sys_obj = get_system(self.system)
        return Trace.of_run(
            self.system,
            sys_obj.version,
            self.bug,
            dict(self.config),
            self.seed,
            "hypothesis",
            r,
            list(self.choices),
            extra={"fault_plan": self.faults},
        )

    def execute(self) -> RunResult:
        """The run's result (computed when it was drawn; replayed from ``choices`` otherwise)."""
        if self.result is None:
            sys_obj = get_system(self.system)
            self.result = run_once(
                sys_obj, self.config, self.bug, Replay(list(self.choices)), self.steps
            )
        return self.result


class _Drawn(Chooser):
    """Reads every choice from bytes Hypothesis drew, faults at the fault plan's rates. A choice
    among n <= 256 options takes one byte (two above), a fault roll one byte; byte 0 is always
    the natural choice (the earliest event, no fault, delivered), so Hypothesis lowering a byte
    makes the run more natural and deleting bytes shifts the rest, as treadle's own shrinker
    does. Past the end of the bytes every choice is 0 (``tail="zeros"``, like
    :class:`~treadle.strategies.Replay`) or comes from explore's default strategy (random walk,
    PCT or swarm) seeded with the run's seed (``tail="walk"``)."""

    def __init__(self, data: bytes, config: dict[str, Any], seed: int, steps: int, tail: str):
        self.data = data
        self.pos = 0
        self.rates = {k[:-5]: float(config[k]) for k in FAULT_RATE_KEYS}
        self.drop = float(config["drop_rate"])
        self.duplicate = float(config["duplicate_rate"])
        self.walk: Strategy | None = None
        if tail == "walk":
            self.walk = Mixed()  # random walk, PCT or swarm, by the seed (as explore rotates)
            self.walk.begin_run(seed, config, steps)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def _int(self, n: int) -> int:
        """A choice in [0, n) from the next byte(s); 0 past the end."""
        if n <= 1:
            return 0
        data, pos = self.data, self.pos
        width = 1 if n <= 256 else 2
        self.pos = pos + width
        if pos + width > len(data):
            return 0
        v = data[pos] if width == 1 else (data[pos] << 8) | data[pos + 1]
        return v % n

    def _roll(self, rate: float) -> bool:
        """True with probability about ``rate`` (in 1/256 steps); byte 0 is False."""
        if rate <= 0:
            return False
        pos = self.pos
        self.pos = pos + 1
        return pos < len(self.data) and self.data[pos] >= 256 * (1.0 - min(rate, 1.0))

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        if self.walk is not None and self.exhausted:
            return self.walk.choose(kind, n, options)
        if kind == "fate":
            both = self.drop + self.duplicate
            if both <= 0 or not self._roll(both):
                return 0
            return 1 if self._int(256) < 256 * self.drop / both else 2
        if kind == "event" and options is not None:
            return self.choose_event(options, *split_faults(options))
        return self._int(n)

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        if self.walk is not None and self.exhausted:
            return self.walk.choose_event(events, n_normal, faults)
        if faults:
            kinds = sorted(faults)
            if n_normal == 0 or self._roll(sum(self.rates.get(k, 0.0) for k in kinds)):
                # which kind of fault, then which fault of that kind
                live = [k for k in kinds if self.rates.get(k, 0.0) > 0] or kinds
                offsets = faults[live[self._int(len(live))]]
                return n_normal + offsets[self._int(len(offsets))]
        return self._int(n_normal)


def _probe_size(sys_obj: System, cfg: dict[str, Any], bug: str | None, steps: int) -> int:
    """Bytes a typical run reads: one random-walk run's choices, with room for fault rolls."""
    walk = RandomWalk()
    walk.begin_run(0, cfg, steps)
    rec = Recorder(walk)
    run_once(sys_obj, cfg, bug, rec, steps)
    return len(rec.choices) * 2


def runs(
    system: str | System,
    bug: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    faults: bool = True,
    size: int | None = None,
    tail: str = "zeros",
) -> st.SearchStrategy[Run]:
    """A strategy of :class:`Run` s of ``system`` (a registered name or a System) with seeded
    ``bug`` switched on.

    ``config``: overrides of the system's config; a value may itself be a strategy
    (``{"servers": st.integers(3, 5)}``), drawn per run. ``steps``: steps per run (default the
    system's). ``faults``: draw a fault plan (each configured fault rate scaled by one of
    ``FAULT_SCALES``, shrinking to no faults); False keeps the configured rates. ``size``: the
    typical number of choice bytes drawn per run (default: twice the choices of one random
    run, at most ``MAX_BYTES``). ``tail``: what the choices past the drawn bytes are, ``"zeros"``
    (the natural choice) or ``"walk"`` (explore's default strategy, seeded with the drawn
    ``seed``: for bugs that need PCT's deep orderings; give a small ``size`` then).
    """
    if tail not in ("zeros", "walk"):
        raise ValueError(f"tail must be 'zeros' or 'walk', got {tail!r}")
    sys_obj = get_system(system) if isinstance(system, str) else system
    sys_obj.check_bug(bug)
    fixed = {k: v for k, v in (config or {}).items() if not isinstance(v, st.SearchStrategy)}
    drawn_keys = {k: v for k, v in (config or {}).items() if isinstance(v, st.SearchStrategy)}
    base = sys_obj.resolve_config(fixed)
    n_steps = steps if steps is not None else sys_obj.steps
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"steps must be a positive integer, got {n_steps!r}")
    if isinstance(system, System):
        from treadle.system import all_systems, register

        if all_systems().get(sys_obj.name) is not sys_obj:
            register(sys_obj)  # a Run names its system: replaying it must find this one
    if size is None:
        size = _probe_size(sys_obj, base, bug, n_steps)
    size = max(16, min(int(size), MAX_BYTES))

    @st.composite
    def draw_run(draw: Any) -> Run:
        cfg = dict(base)
        if drawn_keys:
            picked = {k: draw(v) for k, v in drawn_keys.items()}
            cfg = sys_obj.resolve_config({**fixed, **picked})
        plan: dict[str, float] = {}
        for key in FAULT_PLAN_KEYS:
            rate = float(cfg[key])
            if faults and rate > 0:
                rate = min(0.5, rate * draw(st.sampled_from(FAULT_SCALES)))
            plan[key] = cfg[key] = rate
        seed = draw(st.integers(0, 2**32 - 1)) if tail == "walk" else 0
        # half the typical size at least, so a run is rarely starved of choices; Hypothesis
        # may delete bytes down to it and lower every byte to 0
        data = draw(st.binary(min_size=size // 2, max_size=min(MAX_BYTES, size * 3)))
        chooser = Recorder(_Drawn(data, cfg, seed, n_steps, tail))
        result = run_once(sys_obj, cfg, bug, chooser, n_steps)
        return Run(sys_obj.name, bug, cfg, plan, seed, n_steps, chooser.choices, result)

    return draw_run()


def _is_final() -> bool:
    """Is this Hypothesis' last call of the test, the one that reports the shrunk example?"""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # outside a test, or another Hypothesis
        return True


def check(
    run: Run, *, allow_unknown: bool = False, out: str | None = None, shrink_runs: int = 1000
) -> RunResult:
    """Fail (AssertionError) if ``run`` violated a property of its system: the message names the
    property and explains it. For Hypothesis' final, shrunk example the run is also saved as a
    trace under ``out`` (default ``.treadle/traces/<system>/``), after treadle's own shrinker
    spent up to ``shrink_runs`` candidate runs on it (it can also lower the config and drop
    client operations, which Hypothesis cannot), and the message gives the command that replays
    it. An ``unknown`` verdict (a check that could not decide) fails too, unless
    ``allow_unknown``: never a false success."""
    __tracebackhide__ = True
    r = run.execute()
    if r.violation is not None:
        v = r.violation
        where = ""
        if _is_final():
            where = _save(run, v.property, out, shrink_runs)
        raise AssertionError(
            f"violation of {v.property} in {run.system} after {r.steps} steps, "
            f"{len(run.choices)} choices: {v.message}{where}"
        )
    if r.unknown is not None and not allow_unknown:
        raise AssertionError(
            f"unknown: {r.unknown.property} could not be decided: {r.unknown.message}"
        )
    return r


def _save(run: Run, prop: str, out: str | None, shrink_runs: int) -> str:
    from treadle.outcome import replay_command, save_new_trace, trace_filename
    from treadle.shrink import shrink
    from treadle.workdir import DEFAULT_TRACES

    trace = run.trace()
    small = trace
    if shrink_runs > 0:
        small = shrink(get_system(run.system), trace, runs=shrink_runs, time=60.0)
    name = "hypothesis-" + trace_filename(run.system, run.bug, prop, run.seed)
    path = save_new_trace(small, out or DEFAULT_TRACES, name)
    return (
        f"\ntrace: {path} ({small.steps} steps, {len(small.choices)} choices after treadle's "
        f"shrinker)\nreplay: {replay_command(path)}"
    )
