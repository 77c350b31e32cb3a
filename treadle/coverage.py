"""Coverage of a run, and the corpus of runs that reached new coverage (for the guided strategy).

A run's coverage is a set of *features*, each a small hashable value:

* ``("ev", node_kind, type)``: a protocol event type was recorded (by a server or a client);
* ``("seq", type_a, type_b)``: one node recorded ``type_b`` right after ``type_a`` (event-type
  bigrams per node: "truncated, then became leader" is a different story from the reverse);
* ``("count", type, bucket)``: how many times a type was recorded, in AFL's hit-count buckets
  (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+);
* ``("sometimes", name)``: a sometimes-assertion was hit;
* ``("abs", value)``: a value of the system's abstraction of the world (``System.coverage``,
  e.g. Raft: role x term relation x log relation of every server), sampled after every step
  (cheaply: :class:`PerNode` looks again only at the node the step acted on).

Every feature remembers the position in the run's choice list where it was first reached, so a
run that reached something new can be *resumed* from just after that point with fresh choices
(as Antithesis and moonpool branch from interesting states), besides being mutated AFL-style.

Determinism: features live in sets and dicts, but no decision depends on the iteration order of a
set (only on membership, counts and minimums), so the same seed gives the same runs in any
process, whatever the hash seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from typing import Any

#: AFL's hit-count buckets
_BUCKETS = (0, 1, 2, 3, 4, 4, 4, 4, 8)
#: the counts at which a bucket starts (bucket(n) == n exactly there)
_BUCKET_EDGES = frozenset((1, 2, 3, 4, 8, 16, 32, 128))


def bucket(n: int) -> int:
    if n < len(_BUCKETS):
        return _BUCKETS[n]
    if n < 16:
        return 8
    if n < 32:
        return 16
    return 32 if n < 128 else 128


Abstraction = Callable[[Any], Iterable[Hashable]]


class PerNode:
    """A coverage abstraction built from a *summary* per node and a *combine* over all of them,
    that costs one summary per step: a step acts on one node (``World.last_node``: its handler
    ran, it crashed or restarted), so only that node's summary is computed again, and
    ``combine`` runs only when it changed. Most steps (a heartbeat answered, a duplicate
    ignored) change no summary and cost one call and one comparison.

    ``summary(nid, node)`` returns plain hashable data about one node (raw values are fine:
    terms, lengths), or None for a node the abstraction ignores; it is not called for a node
    that is down. ``combine(summaries, world)`` turns ``{nid: summary or None}`` into the
    features: *relations* between nodes (behind or level with the newest), small enough to
    saturate; it may also read how many servers are down and whether a partition is on. The
    value is cached on the world; a world that was not observed at the step before (a fresh
    one, a copy) is summarised in full."""

    __slots__ = ("summary", "combine")

    def __init__(
        self,
        summary: Callable[[str, Any], Hashable],
        combine: Callable[[dict[str, Any], Any], Iterable[Hashable]],
    ) -> None:
        self.summary = summary
        self.combine = combine

    def __call__(self, world: Any) -> tuple[Hashable, ...]:
        d = world.__dict__
        st = d.get("_coverage_per_node")
        step = world.step_count
        # what combine may read of the world besides the summaries: servers down, a partition
        outside = (len(world.down), world.partition is None)
        if st is None or st[0] is not self or st[1] != step - 1:
            summary = self.summary
            summaries = {
                nid: (None if node is None else summary(nid, node))
                for nid, node in world.nodes.items()
            }
            value = tuple(self.combine(summaries, world))
            d["_coverage_per_node"] = [self, step, summaries, value, outside]
            return value
        st[1] = step
        nid = world.last_node
        if nid is not None:
            node = world.nodes.get(nid)
            s = None if node is None else self.summary(nid, node)
            summaries = st[2]
            if s != summaries.get(nid) or outside != st[4]:
                summaries[nid] = s
                st[3] = tuple(self.combine(summaries, world))
                st[4] = outside
        elif outside != st[4]:
            st[3] = tuple(self.combine(st[2], world))
            st[4] = outside
        return st[3]

    def __repr__(self) -> str:
        return f"PerNode({getattr(self.summary, '__qualname__', self.summary)!r})"


class RunCoverage:
    """The features of one run, observed step by step (``observe`` after every step)."""

    __slots__ = (
        "first",
        "abstraction",
        "_hist",
        "_some",
        "_last",
        "_counts",
        "_value",
        "_cond",
        "_seen",
    )

    def __init__(
        self, abstraction: Abstraction | None = None, conditions: list[Hashable] | None = None
    ) -> None:
        #: feature -> position in the choice list where it was first reached
        self.first: dict[Hashable, int] = {}
        self.abstraction = abstraction
        self._hist = 0
        self._some = 0
        self._last: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._value: Any = None  # the abstraction's last value (most steps leave it unchanged)
        #: the condition features the probes record for this run (:mod:`treadle.condcov`)
        self._cond: list[Hashable] = [] if conditions is None else conditions
        self._seen = 0

    def observe(self, world: Any, position: int) -> None:
        history = world.history
        if len(history) > self._hist:
            self._events(history, position)
        order = world.sometimes_order
        if len(order) > self._some:
            first = self.first
            for name in order[self._some :]:
                first.setdefault(("sometimes", name), position)
            self._some = len(order)
        cond = self._cond
        if len(cond) > self._seen:
            first = self.first
            for k in cond[self._seen :]:
                first.setdefault(("cond", k), position)
            self._seen = len(cond)
        abstraction = self.abstraction
        if abstraction is not None:
            try:
                values = abstraction(world)
                if values is self._value:  # a cached value: nothing new to look at
                    return
                self._value = values
                values = list(values)
            except Exception:
                # coverage is a heuristic: node state the abstraction cannot read (a buggy node
                # lost a field) must not turn the run into a harness error; the checks judge it
                self.abstraction = None
                return
            first = self.first
            for value in values:
                f = ("abs", value)
                if f not in first:
                    first[f] = position

    def _events(self, history: list[dict[str, Any]], position: int) -> None:
        first, last, counts = self.first, self._last, self._counts
        for ev in history[self._hist :]:
            kind = ev["type"]
            who = ev.get("node")
            if who is None:  # a client operation: its type and f
                who = ev.get("process", "?")
                kind = f"{kind}:{ev.get('f')}"
                f: Hashable = ("ev", "client", kind)
            else:
                f = ("ev", "node", kind)
            if f not in first:
                first[f] = position
            prev = last.get(who)
            if prev is not None:
                f = ("seq", prev, kind)
                if f not in first:
                    first[f] = position
            last[who] = kind
            n = counts.get(kind, 0) + 1
            counts[kind] = n
            if n in _BUCKET_EDGES:  # the count entered a new bucket
                f = ("count", kind, n)
                if f not in first:
                    first[f] = position
        self._hist = len(history)


class Entry:
    """A run in the corpus: its choices, the new features it reached and where (``cuts[i]``:
    the choice position where ``features[i]`` was first reached), and the fault mix it ran
    under (None: the configured one)."""

    __slots__ = ("choices", "features", "cuts", "mix", "options")

    def __init__(
        self,
        choices: list[int],
        features: list[Hashable],
        cuts: list[int],
        mix: Any = None,
        options: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.choices = choices
        self.features = features
        self.cuts = cuts
        self.mix = mix
        #: the system options it ran under (those drawn per run: treadle.options)
        self.options = options


class Corpus:
    """Runs that reached new coverage, with how often every feature was reached so far; picks a
    parent with energy to rare features and mutates its choice list."""

    def __init__(self, max_entries: int = 256) -> None:
        self.entries: list[Entry] = []
        self.counts: dict[Hashable, int] = {}
        self.max_entries = max_entries
        self.runs = 0

    def add_run(
        self,
        choices: list[int],
        first: dict[Hashable, int],
        mix: Any = None,
        options: tuple[tuple[str, Any], ...] = (),
    ) -> bool:
        """Count the run's features (feature -> choice position of its first hit); keep the run
        (with its fault mix and system options) if it reached one never reached before."""
        self.runs += 1
        counts = self.counts
        new: list[Hashable] = []
        cuts: list[int] = []
        for f, pos in first.items():
            n = counts.get(f)
            if n is None:
                new.append(f)
                cuts.append(pos)
                counts[f] = 1
            else:
                counts[f] = n + 1
        if not new:
            return False
        entry = Entry(list(choices), new, cuts, mix, options)
        if len(self.entries) >= self.max_entries:
            # replace the entry whose rarest feature is the most common (the least interesting)
            worst = max(range(len(self.entries)), key=lambda i: (self.rarity(i), -i))
            self.entries[worst] = entry
        else:
            self.entries.append(entry)
        return True

    def frozen(self) -> Corpus:
        """A copy that later :meth:`add_run` calls do not change (entries are never mutated)."""
        c = Corpus(self.max_entries)
        c.entries = list(self.entries)
        c.counts = dict(self.counts)
        c.runs = self.runs
        return c

    def rarity(self, i: int) -> int:
        """How often the rarest feature entry ``i`` introduced has been reached (low: rare)."""
        counts = self.counts
        return min(counts[f] for f in self.entries[i].features)

    def pick(self, rng: random.Random) -> Entry:
        """A parent, with probability proportional to 1 / (runs that reached its rarest
        feature): energy goes to rare states."""
        weights = [1.0 / self.rarity(i) for i in range(len(self.entries))]
        return rng.choices(self.entries, weights)[0]

    def mutate(self, rng: random.Random) -> tuple[list[int], str, Entry]:
        """A new choice prefix from a parent (the run then continues with fresh choices), and
        the parent."""
        parent = self.pick(rng)
        ch = parent.choices
        m = len(ch)
        r = rng.random()
        if r < 0.45 or m == 0:
            # resume just after a point where the parent reached something new: half the time
            # its rarest feature (energy to the rare state itself), else any of them
            cuts = parent.cuts
            if not cuts:
                cut = m
            elif rng.random() < 0.5:
                counts = self.counts
                i = min(range(len(cuts)), key=lambda j: (counts[parent.features[j]], cuts[j]))
                cut = cuts[i]
            else:
                cut = rng.choice(cuts)
            if rng.random() < 0.5:  # or a little later, keeping a few of the parent's choices
                cut += rng.randrange(1, 8)
            return ch[:cut], "resume", parent
        if r < 0.6:
            return ch[: rng.randrange(m + 1)], "truncate", parent
        if r < 0.75:
            out = list(ch)
            for _ in range(1 + rng.randrange(4)):
                out[rng.randrange(m)] = rng.randrange(8)
            return out, "flip", parent
        if r < 0.85:
            other = rng.choice(self.entries).choices
            k = rng.randrange(m + 1)
            j = rng.randrange(len(other) + 1)
            return ch[:k] + other[j:], "splice", parent
        k = rng.randrange(m + 1)
        if r < 0.93:
            return (
                ch[:k] + [rng.randrange(8) for _ in range(1 + rng.randrange(4))] + ch[k:],
                ("insert"),
                parent,
            )
        return ch[:k] + ch[k + 1 + rng.randrange(8) :], "delete", parent

    def describe(self) -> dict[str, Any]:
        return {"corpus": len(self.entries), "features": len(self.counts)}


class DeclaredSometimes:
    """The names of the sometimes-assertions in the source of some modules (calls
    ``<anything>.sometimes("literal name", ...)``), read on first use (parsing at import would
    slow every command down). Give one to ``System.sometimes``."""

    def __init__(self, modules: tuple[str, ...]) -> None:
        self.modules = modules
        self._names: list[str] | None = None

    def __call__(self) -> list[str]:
        if self._names is None:
            self._names = _names_in(self.modules)
        return list(self._names)

    def __repr__(self) -> str:
        return f"declared_sometimes{self.modules!r}"


def declared_sometimes(*modules: str) -> DeclaredSometimes:
    """For ``System.sometimes``: the names read from the code itself, so the list cannot drift
    from it, and one in a branch no run takes is still reported as never reached."""
    return DeclaredSometimes(modules)


def _names_in(modules: tuple[str, ...]) -> list[str]:
    import ast
    import importlib.util

    names: list[str] = []
    for mod in modules:
        spec = importlib.util.find_spec(mod)
        if spec is None or spec.origin is None:
            raise ValueError(f"declared_sometimes: no module {mod!r}")
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sometimes"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value not in names
            ):
                names.append(node.args[0].value)
    return names
