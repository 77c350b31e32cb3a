"""Strategies pick among the world's choices. One interface, every system.

A strategy is asked ``choose(kind, n, options)`` for every nondeterministic decision of a run:

* ``event``: which enabled event happens next; ``options`` are the events (deliveries and timers
  earliest first, then faults). Index 0 is always the most "natural" event.
* ``fate``: 0 deliver, 1 drop, 2 duplicate.
* ``latency``, ``drift``, ``random`` (a node's draw), ``partition`` (which split), ``torn``.

Exhaustive strategies (dfs, bfs, dpor) live in :mod:`treadle.exhaustive`; they drive the world
directly rather than one run at a time.
"""

from __future__ import annotations

import random
from typing import Any

from treadle import condcov
from treadle.coverage import Corpus, RunCoverage
from treadle.world import Chooser, Fault

FAULT_RATE_KEYS = ("crash_rate", "restart_rate", "partition_rate", "heal_rate")


class Strategy(Chooser):
    name = "strategy"

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        """Called before each run with that run's seed."""

    def describe_run(self) -> dict[str, Any]:
        """What this run drew (for reports), e.g. a swarm run's fault mix."""
        return {}

    #: strategies that learn from runs (guided, mixed) set this. They learn in *generations*
    #: (:mod:`treadle.generations`): every run of a generation uses the corpus as it was at the
    #: generation's start, so the runs are the same in one process or on many workers
    learns = False

    def bind_system(self, system: Any) -> None:
        """The system being explored (its declared coverage abstraction)."""

    def observer(self, made: list[int]) -> Any:
        """The callback run after every step of the run (``made``: the run's choices so far)."""
        observe = self.observe

        def on_step(world: Any) -> None:
            observe(world, len(made))

        return on_step

    def observe(self, world: Any, position: int) -> None:
        """After every step of the run."""

    def run_features(self) -> dict[Any, int]:
        """The run's coverage: feature -> choice position of its first hit."""
        return {}

    def snapshot(self) -> Any:
        """What a worker needs to run a generation (the corpus)."""
        return None

    def load_corpus(self, corpus: Any) -> None:
        """Use a generation's corpus (from :meth:`snapshot`)."""

    def run_meta(self) -> Any:
        """What the strategy keeps of a run besides its choices and features (its fault mix and
        system options)."""
        return None

    def run_options(
        self, seed: int, config: dict[str, Any], options: dict[str, tuple[Any, ...]]
    ) -> dict[str, Any]:
        """A learning strategy may run ``seed`` under other values of the system options
        (``options``: key -> values; ``config`` has the seed's own draw): a guided child runs
        under its parent's. Called before :meth:`begin_run`."""
        return config

    def learn(self, choices: list[int], features: dict[Any, int], meta: Any = None) -> None:
        """After a run (in seed order, between generations)."""


def split_faults(options: list[Any]) -> tuple[int, dict[str, list[int]]]:
    """The world lists a step's enabled events first and the faults it may inject last: how
    many normal events there are, and the faults' positions after them, by kind."""
    n_normal = len(options)
    while n_normal and type(options[n_normal - 1]) is Fault:
        n_normal -= 1
    faults: dict[str, list[int]] = {}
    for i in range(n_normal, len(options)):
        faults.setdefault(options[i].kind, []).append(i - n_normal)
    return n_normal, faults


class RandomWalk(Strategy):
    """Uniform among enabled events; faults at the configured rates."""

    name = "random"

    def __init__(self) -> None:
        self.rng = random.Random(0)
        self.rates: dict[str, float] = {}

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        self.rng = random.Random(seed)
        self.rates = {k[:-5]: float(config[k]) for k in FAULT_RATE_KEYS}
        self.drop = float(config["drop_rate"])
        self.duplicate = float(config["duplicate_rate"])

    def mix(self) -> tuple[tuple[str, float], ...]:
        """This run's fault rates, as data (a swarm run's own mix, else the configured one)."""
        return (
            *sorted(self.rates.items()),
            ("drop", self.drop),
            ("duplicate", self.duplicate),
        )

    def use_mix(self, mix: tuple[tuple[str, float], ...]) -> None:
        rates = dict(mix)
        self.drop = rates.pop("drop")
        self.duplicate = rates.pop("duplicate")
        self.rates = rates

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        rng = self.rng
        if kind == "fate":
            r = rng.random()
            if r < self.drop:
                return 1
            if r < self.drop + self.duplicate:
                return 2
            return 0
        if kind == "event" and options is not None:
            return self.choose_event(options, *split_faults(options))
        return int(rng.random() * n)

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        """Maybe inject a fault (each kind at its rate), else pick a normal event with
        :meth:`pick_normal`."""
        if faults:
            rng = self.rng
            rates = self.rates
            for kind, offsets in faults.items():
                if rng.random() < rates.get(kind, 0.0):
                    return n_normal + offsets[int(rng.random() * len(offsets))]
            if n_normal == 0:
                return int(rng.random() * len(events))
        return self.pick_normal(events, n_normal)

    def pick_normal(self, options: list[Any], n: int) -> int:
        return int(self.rng.random() * n)


class PCT(RandomWalk):
    """Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS
    2010), adapted to message passing: each node (the receiver of an event) gets a random
    priority; the enabled event of the highest-priority node goes next; at d-1 random change
    points the node that just ran drops to the lowest priorities. A bug of depth d is found with
    probability at least 1/(n k^(d-1)) per run."""

    name = "pct"

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.depth = depth

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        super().begin_run(seed, config, max_steps)
        self.depth = int(config.get("pct_depth", self.depth))
        self.priority: dict[str, float] = {}
        self.k = max(1, max_steps)
        self.change_points = sorted(
            self.rng.randrange(1, self.k + 1) for _ in range(self.depth - 1)
        )
        self.step = 0
        self.lowered = 0

    def _prio(self, node: str) -> float:
        p = self.priority.get(node)
        if p is None:
            p = self.priority[node] = self.depth + self.rng.random()
        return p

    def pick_normal(self, options: list[Any], n: int) -> int:
        self.step += 1
        best, best_p = 0, -1.0
        for i in range(n):
            p = self._prio(options[i].node)
            if p > best_p:
                best, best_p = i, p
        while self.change_points and self.change_points[0] <= self.step:
            self.change_points.pop(0)
            self.lowered += 1
            # d - i: lower than every initial priority, later change points lower still
            self.priority[options[best].node] = float(self.depth - self.lowered)
        return best


class Swarm(RandomWalk):
    """Swarm testing (Groce et al., ISSTA 2012), as FoundationDB's simulator and TigerBeetle's VOPR
    do: every run draws its own fault mix (which faults are on, and how often), so runs differ in
    kind, not just in luck. Only faults the configuration allows can be drawn."""

    name = "swarm"

    SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        super().begin_run(seed, config, max_steps)
        self.draw_mix(self.rng)

    def draw_mix(self, rng: random.Random) -> None:
        """Replace the configured rates by a mix drawn with ``rng`` (only faults the
        configuration allows: a rate of 0 stays 0)."""
        mix: dict[str, float] = {}
        for kind in ("crash", "partition"):
            base = self.rates.get(kind, 0.0)
            mix[kind] = (
                min(0.5, base * rng.choice(self.SCALES)) if base > 0 and rng.random() < 0.6 else 0.0
            )
        for kind in ("restart", "heal"):
            base = self.rates.get(kind, 0.0)
            mix[kind] = min(0.9, base * rng.choice(self.SCALES)) if base > 0 else 0.0
        self.rates = mix
        self.drop = (
            min(0.5, self.drop * rng.choice(self.SCALES))
            if self.drop > 0 and rng.random() < 0.6
            else 0.0
        )
        self.duplicate = (
            min(0.5, self.duplicate * rng.choice(self.SCALES))
            if self.duplicate > 0 and rng.random() < 0.6
            else 0.0
        )

    def describe_run(self) -> dict[str, Any]:
        return {
            **{f"{k}_rate": v for k, v in self.rates.items()},
            "drop_rate": self.drop,
            "duplicate_rate": self.duplicate,
        }


class Guided(Strategy):
    """Coverage-guided exploration (AFL / libFuzzer over choice lists, as moonpool and Antithesis
    guide their search): a corpus keeps the runs that reached new coverage (protocol events and
    their per-node sequences, hit-count buckets, sometimes-assertions, the system's abstract
    states: :mod:`treadle.coverage`); most runs take a parent, with energy to the rarest
    features, and mutate its choice list (resume just after the point where it reached its
    rarest or another new feature, truncate, flip, splice, insert, delete), then continue as a
    random walk under the parent's fault mix or one of their own (swarm). Deterministic given the
    seed: run k depends only on runs 0..k-1 of the same exploration."""

    name = "guided"
    learns = True
    #: share of runs that start from scratch (no prefix) once the corpus has entries
    FRESH = 0.1
    #: a child runs under its parent's fault mix this often (else a mix of its own)
    KEEP_MIX = 0.8
    #: a run with a mix of its own draws a swarm mix this often (else the configured rates)
    SWARM = 0.5
    #: condition coverage of the node code (which way each comparison went) among the features
    CONDITIONS = True

    def __init__(self) -> None:
        self.tail = Swarm()
        self.corpus = Corpus()
        self.abstraction: Any = None
        self.system: Any = None
        self.prefix: list[int] = []
        self.pos = 0
        self.how = "fresh"
        self.cov = RunCoverage()
        self.option_keys: tuple[str, ...] = ()
        self.options: tuple[tuple[str, Any], ...] = ()
        self._plan: tuple[Any, ...] | None = None

    def bind_system(self, system: Any) -> None:
        self.abstraction = getattr(system, "coverage", None)
        self.system = system

    def snapshot(self) -> Any:
        return self.corpus.frozen()

    def load_corpus(self, corpus: Any) -> None:
        self.corpus = corpus

    def run_features(self) -> dict[Any, int]:
        return self.cov.first

    def run_meta(self) -> Any:
        return (self.tail.mix(), self.options)

    def learn(self, choices: list[int], features: dict[Any, int], meta: Any = None) -> None:
        mix, options = meta if meta is not None else (None, ())
        self.corpus.add_run(choices, features, mix, options)

    def plan(self, seed: int) -> tuple[Any, ...]:
        """(seed, prefix, how, parent, keep the parent's mix and options, rng): what run
        ``seed`` does, from the seed and the generation's corpus alone."""
        if self._plan is not None and self._plan[0] == seed:
            return self._plan
        rng = random.Random(seed * 7919 + 17)
        parent = None
        if not self.corpus.entries or rng.random() < self.FRESH:
            prefix, how = [], "fresh"
        else:
            prefix, how, parent = self.corpus.mutate(rng)
        keep = parent is not None and rng.random() < self.KEEP_MIX
        self._plan = (seed, prefix, how, parent, keep, rng)
        return self._plan

    def run_options(
        self, seed: int, config: dict[str, Any], options: dict[str, tuple[Any, ...]]
    ) -> dict[str, Any]:
        self.option_keys = tuple(sorted(options))
        parent, keep = self.plan(seed)[3:5]
        if keep and parent.options:
            mine = {k: v for k, v in parent.options if k in options and v in options[k]}
            return {**config, **mine}
        return config

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        self.instrument(config)
        tail = self.tail
        RandomWalk.begin_run(tail, seed, config, max_steps)  # the configured rates
        _, self.prefix, self.how, parent, keep, rng = self.plan(seed)
        self._plan = None
        # the fault mix and the system options are part of what a run found: a child keeps its
        # parent's (what reached the state it resumes from), and new mixes are tried as swarm
        # testing does
        if keep and parent.mix is not None:
            tail.use_mix(parent.mix)
        elif rng.random() < self.SWARM:
            tail.draw_mix(rng)
        self.options = tuple((k, config[k]) for k in self.option_keys if k in config)
        self.option_keys = ()
        self.pos = 0
        self.new_coverage()

    def instrument(self, config: dict[str, Any]) -> None:
        """Before every run, in whichever process it runs: the node code records which way its
        conditions went (:mod:`treadle.condcov`)."""
        if self.CONDITIONS and self.system is not None:
            condcov.enable(condcov.modules_of(self.system))

    def new_coverage(self, conditions: bool = True) -> None:
        on = conditions and self.CONDITIONS and self.system is not None
        self.cov = RunCoverage(self.abstraction, condcov.reset() if on else None)

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < len(self.prefix):
            v = self.prefix[pos]
            return v if v < n else v % n
        return self.tail.choose(kind, n, options)

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < len(self.prefix):
            v = self.prefix[pos]
            return v if v < len(events) else v % len(events)
        return self.tail.choose_event(events, n_normal, faults)

    def observe(self, world: Any, position: int) -> None:
        self.cov.observe(world, position)

    def observer(self, made: list[int]) -> Any:
        # bound to this run's coverage (begin_run made it): one call per step, not three
        observe = self.cov.observe

        def on_step(world: Any) -> None:
            observe(world, len(made))

        return on_step

    def describe_run(self) -> dict[str, Any]:
        return {
            "mutation": self.how,
            "prefix": len(self.prefix),
            **self.tail.describe_run(),
            **self.corpus.describe(),
        }


class Mixed(Strategy):
    """The default: runs rotate among random walk, PCT, swarm and guided, so one exploration gets
    the strengths of each (random: broad; PCT: deep orderings; swarm: unusual fault mixes;
    guided: states not reached yet). The guided member learns from every run, not only its own."""

    name = "mixed"
    learns = True

    def __init__(self) -> None:
        self.guided = Guided()
        self.members: list[Strategy] = [RandomWalk(), PCT(), Swarm(), self.guided]
        self.current: Strategy = self.members[0]
        self.option_keys: tuple[str, ...] = ()
        self.options: tuple[tuple[str, Any], ...] = ()

    def bind_system(self, system: Any) -> None:
        self.guided.bind_system(system)

    def observe(self, world: Any, position: int) -> None:
        self.guided.cov.observe(world, position)

    def observer(self, made: list[int]) -> Any:
        return self.guided.observer(made)

    def run_features(self) -> dict[Any, int]:
        return self.guided.cov.first

    def snapshot(self) -> Any:
        return self.guided.snapshot()

    def load_corpus(self, corpus: Any) -> None:
        self.guided.load_corpus(corpus)

    def run_meta(self) -> Any:
        cur = self.current
        if cur is self.guided:
            return self.guided.run_meta()
        return (cur.mix() if isinstance(cur, RandomWalk) else None, self.options)

    def run_options(
        self, seed: int, config: dict[str, Any], options: dict[str, tuple[Any, ...]]
    ) -> dict[str, Any]:
        self.option_keys = tuple(sorted(options))
        if self.members[seed % len(self.members)] is self.guided:
            return self.guided.run_options(seed, config, options)
        return config

    def learn(self, choices: list[int], features: dict[Any, int], meta: Any = None) -> None:
        self.guided.learn(choices, features, meta)

    def begin_run(self, seed: int, config: dict[str, Any], max_steps: int) -> None:
        self.current = self.members[seed % len(self.members)]
        self.options = tuple((k, config[k]) for k in self.option_keys if k in config)
        self.option_keys = ()
        if self.current is not self.guided:
            # the other members' runs feed the corpus every feature but the conditions: the
            # probes cost up to 2x per step, which the default strategy should not pay in three
            # runs of four (a learning run holds condcov.RUN_LOCK: switching is safe)
            condcov.disable()
        self.current.begin_run(seed, config, max_steps)
        if self.current is not self.guided:
            self.guided.new_coverage(conditions=False)
        # delegate without an extra call per choice (the hot path)
        self.choose = self.current.choose  # type: ignore[method-assign]
        self.choose_event = self.current.choose_event  # type: ignore[method-assign]

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        return self.current.choose(kind, n, options)

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        return self.current.choose_event(events, n_normal, faults)

    def describe_run(self) -> dict[str, Any]:
        return {"member": self.current.name, **self.current.describe_run()}


class Replay(Chooser):
    """Feeds back a recorded choice list. A value out of range is reduced modulo n; once the list
    is exhausted every choice is 0 (the most natural one), as Hypothesis does with its choice
    sequences: this is what lets shrinking delete and lower choices freely."""

    def __init__(self, choices: list[int]):
        self.choices = choices
        self.pos = 0

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        pos = self.pos
        self.pos = pos + 1
        if pos < len(self.choices):
            v = self.choices[pos]
            return v if v < n else v % n
        return 0

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        return self.choose("event", len(events))

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.choices)


class Recorder(Chooser):
    """Wraps a strategy and records every choice it makes (the run's choice list)."""

    def __init__(self, inner: Chooser):
        self.inner = inner
        self.choices: list[int] = []

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        v = self.inner.choose(kind, n, options)
        self.choices.append(v)
        return v

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        v = self.inner.choose_event(events, n_normal, faults)
        self.choices.append(v)
        return v


STRATEGIES: dict[str, type[Strategy]] = {
    "mixed": Mixed,
    "random": RandomWalk,
    "pct": PCT,
    "swarm": Swarm,
    "guided": Guided,
}
EXHAUSTIVE = ("dfs", "bfs", "dpor")


def make_strategy(name: str) -> Strategy:
    from treadle.errors import TreadleError

    cls = STRATEGIES.get(name)
    if cls is None:
        known = ", ".join(list(STRATEGIES) + list(EXHAUSTIVE))
        raise TreadleError(f"unknown strategy {name!r}; known: {known}")
    return cls()
