"""Exhaustive exploration: BFS/DFS over canonical state fingerprints, and stateless DPOR.

Every nondeterministic decision of the world is a choice (:meth:`World.choose`): which enabled
event, and inside the step a node's random draw, a latency, a message's fate, a partition split.
A *transition* is one step: the event choice followed by the step's inner choices. The explorers
enumerate every transition of a state by re-running the step on a copy of the state with a
scripted choice list, walking the inner choices like an odometer. The choice list of a path is
exactly what :class:`treadle.strategies.Replay` feeds back, so a counterexample is a normal trace.

Time. In a world whose ``window`` is at least :data:`ASYNC_WINDOW` every pending event is always
enabled (the fully asynchronous network of Stateright and TLA+): due times then decide nothing
but the order of the enabled list, so fingerprints leave them out, and events at different nodes
commute (which DPOR needs). With a smaller window, enabledness depends on due times and
``now`` moves with the schedule: fingerprints keep due times *relative to now* (future behaviour
is invariant under a shift of all times, provided nodes do not act on absolute ``ctx.now`` without
keeping it in ``state()``), and DPOR treats every pair of events as dependent.

The fingerprint of a state: every node's ``state()`` (or "down"), its durable storage, the
multiset of pending messages (src, dst, message) and timers (node, name), the partition, the fault
and timer budgets used so far, which liveness predicates have held on the path, and, unless the
system says its checks do not read it (``checks_read_history = False``), the recorded history
without its time stamps (history-based checks such as linearizability depend on it).

Symmetry (``System.symmetric``): states are canonicalized by renaming the ids of each group of
interchangeable nodes, sorted by an id-free signature (ties resolved by trying their orders).

DPOR: source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, "Optimal dynamic partial
order reduction", POPL 2014, Algorithm 1), the successor of Flanagan and Godefroid (POPL 2005).
Each pending message or timer is a "process" with a single event; two events are dependent iff
they run at the same node, or one is a fault, or both append to a history the checks read;
happens-before also includes "the event that sent a message precedes its delivery".
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from checkers.result import CheckResult
from treadle import history as hist
from treadle.config import ConfigError, Schema, integer
from treadle.errors import TreadleError
from treadle.node import Context, Storage
from treadle.system import System
from treadle.trace import Trace
from treadle.workdir import DEFAULT_TRACES
from treadle.world import Chooser, Pending, World

#: a window at least this large makes every pending event enabled: the asynchronous model
ASYNC_WINDOW = 1_000_000

UNBOUNDED = {-1: "unbounded"}

#: explorer bounds that may appear in ``System.exhaustive`` or ``--config`` (not world keys)
EXPLORER_SCHEMA = Schema(
    [
        integer("max_depth", 200, "steps per path", minimum=1),
        integer("max_states", 2_000_000, "distinct states (dfs/bfs) or executions (dpor)", 1),
        integer("max_crashes", -1, "crashes per path (max_down still applies)", 0, None, UNBOUNDED),
        integer("max_partitions", -1, "partitions per path", 0, None, UNBOUNDED),
        integer("max_timer_fires", -1, "timer firings per node per path", 0, None, UNBOUNDED),
    ]
)
EXPLORER_DEFAULTS: dict[str, Any] = EXPLORER_SCHEMA.defaults()

_DOWN = ("<down>",)


class _Stop(Exception):
    """Unwinds the search (violation found, or a bound)."""


# ------------------------------------------------------------------------------ canonical data
def _freeze(x: Any) -> Any:
    """Hashable, order-free canonical form of plain data (lists, dicts, sets, dataclasses)."""
    t = type(x)
    if t in (str, int, float, bool, type(None), bytes):
        return x
    if t is tuple or t is list:
        return tuple(_freeze(v) for v in x)
    if t is dict:
        return ("<dict>", frozenset((_freeze(k), _freeze(v)) for k, v in x.items()))
    if t is set or t is frozenset:
        return frozenset(_freeze(v) for v in x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (t.__qualname__,) + tuple(_freeze(getattr(x, f.name)) for f in dataclasses.fields(x))
    try:
        hash(x)
        return x
    except TypeError:
        return ("<obj>", repr(x))


def _canon(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return _freeze(x)


def _rename(x: Any, m: dict[str, str]) -> Any:
    """Replace node ids (strings) anywhere in frozen data."""
    t = type(x)
    if t is str:
        return m.get(x, x)
    if t is tuple:
        return tuple([_rename(v, m) if type(v) in _NESTED else v for v in x])
    if t is frozenset:
        return frozenset([_rename(v, m) if type(v) in _NESTED else v for v in x])
    return x


_NESTED = (str, tuple, frozenset)


# ------------------------------------------------------------------------------ copying worlds
_WORLD_FIELDS = {
    "config", "bug", "server_ids", "client_ids", "factories", "chooser", "now", "step_count",
    "history", "log_steps", "steps_log", "nodes", "storages", "contexts", "down", "partition",
    "crashes", "_pending", "_timers", "_dead", "_seq", "_link_due", "_settle_rng", "fifo",
    "latency_min", "latency_span", "window", "drift", "fates", "fault_kinds", "max_down",
    "_splits", "_current", "_fault_cache", "_partitions", "sometimes_seen", "sometimes_order",
}  # fmt: skip

_ATOMS = (str, int, float, bool, type(None), bytes, frozenset)


def _copy_value(v: Any, memo: dict[int, Any]) -> Any:
    t = type(v)
    if t in _ATOMS:
        return v
    if t is list:
        return [_copy_value(x, memo) for x in v]
    if t is dict:
        return {k: _copy_value(x, memo) for k, x in v.items()}
    if t is set:
        return set(v)  # set members are hashable, hence immutable by contract
    if t is tuple:
        items = [_copy_value(x, memo) for x in v]
        return v if all(a is b for a, b in zip(items, v)) else tuple(items)
    params = getattr(t, "__dataclass_params__", None)
    if params is not None and params.frozen:
        return v  # messages and values are immutable by contract
    return copy.deepcopy(v, memo)


def _copy_node(node: Any, memo: dict[int, Any]) -> Any:
    d = getattr(node, "__dict__", None)
    if d is None or hasattr(type(node), "__slots__"):
        return copy.deepcopy(node, memo)
    new = object.__new__(type(node))
    new.__dict__.update({k: _copy_value(v, memo) for k, v in d.items()})
    return new


_ALL: Any = object()


def clone_world(w: World, touch: Any = _ALL) -> World:
    """An independent copy of a world between steps (much cheaper than ``copy.deepcopy``).

    ``touch``: the only node the next step may run (an id), or None for none (partition,
    heal): the other nodes' objects and storages are then shared with ``w``, copy-on-write as
    in Stateright. Sound because a world kept for later is never stepped itself: it is only
    cloned, and a node is copied before the step that runs it."""
    fields = w.__dict__.keys()
    if not (fields >= _WORLD_FIELDS) or w._current is not None:
        # the World lost fields this copier knows: stay correct, if slower
        memo = {id(w.config): w.config, id(w.factories): w.factories, id(w.chooser): w.chooser}
        return copy.deepcopy(w, memo)
    n = object.__new__(World)
    n.__dict__.update(w.__dict__)
    n.history = list(w.history)
    n.steps_log = list(w.steps_log)
    n.down = set(w.down)
    n.partition = dict(w.partition) if w.partition is not None else None
    n._link_due = dict(w._link_due)
    memo: dict[int, Any] = {id(w): n}
    ids = w.storages if touch is _ALL else ((touch,) if touch is not None else ())
    storages = dict(w.storages)
    contexts = dict(w.contexts)
    nodes = dict(w.nodes)
    for nid in ids:
        s = w.storages[nid]
        s2 = Storage.__new__(Storage)
        s2.data = dict(s.data)
        s2.durable = s2.data if s.durable is s.data else dict(s.durable)
        s2.unsynced = list(s.unsynced)
        s2.manual = s.manual
        storages[nid] = s2
        memo[id(s)] = s2
        c = w.contexts[nid]
        c2 = Context(n, nid, s2)
        contexts[nid] = c2
        memo[id(c)] = c2
        memo[id(c.random)] = c2.random
    for nid in ids:
        node = w.nodes[nid]
        nodes[nid] = _copy_node(node, memo) if node is not None else None
    n.storages = storages
    n.contexts = contexts
    n.nodes = nodes
    if len(fields) != len(_WORLD_FIELDS):
        # attributes set on the world by others (per-run checker state, a new World field):
        # deep-copied, with references to the world and to nodes mapped to the copy's
        for nid, node in w.nodes.items():
            if node is not None:
                memo.setdefault(id(node), nodes[nid])
        for key in list(fields):
            if key not in _WORLD_FIELDS:
                setattr(n, key, copy.deepcopy(getattr(w, key), memo))
    pending = []
    by_seq: dict[int, Pending] = {}
    for due, seq, it in w._pending:
        if it.alive:
            p = Pending(due, seq, it.kind, it.node, it.src, it.msg, it.name)
            pending.append((due, seq, p))
            by_seq[seq] = p
    n._pending = pending
    n._dead = 0
    n._timers = {k: by_seq[it.seq] for k, it in w._timers.items() if it.alive}
    return n


# ------------------------------------------------------------------------------ choices
class _Script(Chooser):
    """Answers from a script, then 0; remembers every (answer, n) it was asked."""

    __slots__ = ("script", "pos", "asked")

    def __init__(self) -> None:
        self.script: list[int] = []
        self.pos = 0
        self.asked: list[tuple[int, int]] = []

    def reset(self, script: list[int]) -> None:
        self.script = script
        self.pos = 0
        self.asked = []

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        p = self.pos
        self.pos = p + 1
        v = self.script[p] if p < len(self.script) else 0
        self.asked.append((v, n))
        return v


def _next_prefix(inner: list[tuple[int, int]]) -> list[int] | None:
    """The odometer: the next inner-choice script after ``inner``, or None when exhausted."""
    j = len(inner) - 1
    while j >= 0 and inner[j][0] + 1 >= inner[j][1]:
        j -= 1
    if j < 0:
        return None
    return [v for v, _ in inner[:j]] + [inner[j][0] + 1]


# ------------------------------------------------------------------------------ results
@dataclasses.dataclass
class Stats:
    strategy: str
    states: int = 0
    transitions: int = 0
    executions: int = 0  # dpor: complete executions explored
    blocked: int = 0  # dpor: executions cut by sleep sets
    depth: int = 0
    complete: bool = True
    bounds_hit: set[str] = dataclasses.field(default_factory=set)
    paths: int | None = None  # maximal paths of the state graph = plain DFS executions
    history_checks: int = 0  # states whose history gained a completed operation, checked
    unknown: int = 0  # checks that could not decide (a timeout): the search cannot say "ok"
    unknown_message: str = ""
    liveness: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Found:
    violation: CheckResult
    choices: list[int]
    steps: int


class Explorer:
    """Shared machinery: bounds, fingerprints, transitions, checks. One per exploration."""

    def __init__(
        self,
        system: System,
        config: dict[str, Any],
        bug: str | None,
        bounds: dict[str, Any],
        symmetry: bool = True,
        time_limit: float | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.system = system
        self.cfg = config
        self.bug = bug
        self.bounds = bounds
        self.stats = Stats("")  # replaced by each search
        self.max_depth = int(bounds["max_depth"])
        self.max_states = int(bounds["max_states"])
        self.max_crashes = int(bounds["max_crashes"])
        self.max_partitions = int(bounds["max_partitions"])
        self.max_timer_fires = int(bounds["max_timer_fires"])
        self.asynchronous = int(config["window"]) >= ASYNC_WINDOW
        self.read_history = bool(getattr(system, "checks_read_history", True))
        self.history_checks = list(getattr(system, "history_checks", []) or [])
        #: a system whose checks keep per-path memory (on the world) but do not read the history
        #: itself says what that memory is: hashable data, order-free across nodes, put in the
        #: fingerprint so that merging states stays sound (a TLA+ spec's history variables)
        self.ghost: Callable[[World], Any] | None = getattr(system, "fingerprint_ghost", None)
        self.liveness: list[tuple[str, Callable[[World], bool]]] = list(
            getattr(system, "liveness", []) or []
        )
        self.deadline = time.monotonic() + time_limit if time_limit else None
        self.progress = progress
        self._last_progress = time.monotonic()
        self.script = _Script()
        cluster = system.build(config, bug)
        self.servers, self.clients = cluster.servers, cluster.clients
        self.ids = tuple(sorted(self.servers)) + tuple(sorted(self.clients))
        self.index = {nid: i for i, nid in enumerate(self.ids)}
        groups = []
        if symmetry:
            for g in system.symmetric:
                present = sorted(x for x in g if x in self.index)
                if len(present) > 1:
                    groups.append(present)
        self.groups = groups
        self._hist_memo: dict[int, tuple[Any, Any]] = {}
        self._rename_cache: dict[Any, Any] = {}
        #: refine symmetric ties by references from the rest of the state (always sound)
        self._refs_ids = True

    # -------------------------------------------------------------- worlds
    def roots(self) -> Iterator[tuple[World, list[int], CheckResult | None]]:
        """Every initial state (start handlers may draw random choices)."""
        prefix: list[int] | None = []
        while prefix is not None:
            self.script.reset(prefix)
            w = World(self.cfg, self.bug, self.servers, self.clients, self.script)
            viol = None
            try:
                w.start()
            except Exception as e:
                if w._current is None:
                    raise
                viol = _handler_exception(w, e)
            if viol is None and self.history_checks and _completes(w.history, 0):
                viol = self.check_history(w)
            asked = self.script.asked
            yield w, [v for v, _ in asked], viol
            prefix = _next_prefix(asked)

    def event_key(self, w: World, ev: Any) -> Any:
        """What makes two enabled events the same event (identical copies are explored once)."""
        if type(ev) is Pending:
            due = None if self.asynchronous else ev.due - w.now
            if ev.kind == "timer":
                return ("timer", ev.node, ev.name, due)
            return ("deliver", ev.node, ev.src, _canon(ev.msg), due)
        return ("fault", ev.kind, ev.node)

    def allowed(self, ev: Any, meta: tuple[Any, ...]) -> bool:
        """Fault and timer budgets (part of the model, like "at most one crash")."""
        if type(ev) is Pending:
            if ev.kind == "timer" and self.max_timer_fires >= 0:
                return meta[0][self.index[ev.node]] < self.max_timer_fires
            return True
        if ev.kind == "crash" and self.max_crashes >= 0:
            return meta[1] < self.max_crashes
        if ev.kind == "partition" and self.max_partitions >= 0:
            return meta[2] < self.max_partitions
        return True

    def choices_of(self, w: World, meta: tuple[Any, ...]) -> list[tuple[int, Any, Any]]:
        """(index, event, key) of the distinct allowed events; ``budget_cut`` when some were not."""
        events = w.enabled()
        if self.asynchronous:
            alive = sum(1 for _, _, it in w._pending if it.alive)
            normal = sum(1 for ev in events if type(ev) is Pending)
            if normal != alive and not w.fifo:
                raise TreadleError(
                    f"window {self.cfg['window']} is too small for the asynchronous model: "
                    "some pending events are not enabled; raise window"
                )
        out = []
        seen = set()
        self.budget_cut = False
        for i, ev in enumerate(events):
            k = self.event_key(w, ev)
            if k in seen:
                continue
            seen.add(k)
            if not self.allowed(ev, meta):
                self.budget_cut = True
                continue
            out.append((i, ev, k))
        self.n_events = len(events)
        return out

    def next_meta(self, meta: tuple[Any, ...], ev: Any) -> tuple[Any, ...]:
        fires, crashes, parts, live = meta
        if type(ev) is Pending:
            if ev.kind == "timer" and self.max_timer_fires >= 0:
                f = list(fires)
                f[self.index[ev.node]] += 1
                fires = tuple(f)
        elif ev.kind == "crash":
            crashes += 1
        elif ev.kind == "partition":
            parts += 1
        return (fires, crashes, parts, live)

    def root_meta(self) -> tuple[Any, ...]:
        return (tuple(0 for _ in self.ids), 0, 0, frozenset())

    def update_live(self, w: World, meta: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.liveness:
            return meta
        live = meta[3]
        new = [name for name, pred in self.liveness if name not in live and pred(w)]
        if new:
            meta = meta[:3] + (live | frozenset(new),)
        return meta

    def transitions(
        self, w: World, i: int, ev: Any, n_events: int
    ) -> Iterator[tuple[World, list[int], CheckResult | None]]:
        """Every outcome of taking enabled event ``i``: (new world, step choices, violation)."""
        prefix: list[int] | None = []
        head = [i] if n_events > 1 else []
        touch = ev.node  # the receiver of a message or timer, the node of a crash or restart
        base = len(w.history)
        while prefix is not None:
            w2 = clone_world(w, touch)
            self.script.reset(head + prefix)
            w2.chooser = self.script
            viol = None
            try:
                w2.step()
            except Exception as e:
                if w2._current is None:
                    raise  # the harness itself failed, not the node
                viol = _handler_exception(w2, e)
            else:
                viol = self.check_invariants(w2)
                if viol is None and self.history_checks and _completes(w2.history, base):
                    viol = self.check_history(w2)
            asked = self.script.asked
            yield w2, [v for v, _ in asked], viol
            prefix = _next_prefix(asked[len(head) :])

    def check_invariants(self, w: World) -> CheckResult | None:
        for inv in self.system.invariants:
            r = _run_check(inv, w)
            if r is not None and r.verdict == "violation":
                return r
        return None

    def check_history(self, w: World) -> CheckResult | None:
        """The prefix-closed history checks on this state's history."""
        self.stats.history_checks += 1
        for check in self.history_checks:
            r = _run_check(check, w)
            if r is None:
                continue
            if r.verdict == "violation":
                return r
            if r.verdict == "unknown":
                self.note_unknown(r)
        return None

    def note_unknown(self, r: CheckResult) -> None:
        self.stats.unknown += 1
        if not self.stats.unknown_message:
            self.stats.unknown_message = f"{r.property}: {r.message}"

    def check_final(self, w: World) -> CheckResult | None:
        """What ``run_once`` checks when a run ends here."""
        if self.system.settle_steps:
            w = clone_world(w)
            w.chooser = self.script
            try:
                w.settle(self.system.settle_steps)
            except Exception as e:
                if w._current is None:
                    raise
                return _handler_exception(w, e)
        for check in (*self.system.final_checks, *self.history_checks):
            r = _run_check(check, w)
            if r is None:
                continue
            if r.verdict == "violation":
                return r
            if r.verdict == "unknown":
                self.note_unknown(r)
        return None

    def liveness_findings(
        self, w: World, meta: tuple[Any, ...], kind: str, choices: list[int], depth: int
    ) -> None:
        for name, pred in self.liveness:
            if name in meta[3] or pred(w):
                continue
            if any(f["property"] == name and f["kind"] == kind for f in self.stats.liveness):
                continue
            self.stats.liveness.append(
                {
                    "property": name,
                    "kind": kind,
                    "steps": depth,
                    "choices": list(choices),
                    "message": (
                        f"{name} never held on a path of {depth} steps that ends "
                        + (
                            "with nothing left to happen (quiescent)"
                            if kind == "terminal"
                            else "at an exploration bound or budget"
                        )
                    ),
                }
            )

    # -------------------------------------------------------------- fingerprints
    def _history_fp(self, w: World) -> Any:
        memo = self._hist_memo
        out = []
        for ev in w.history:
            got = memo.get(id(ev))
            if got is None or got[0] is not ev:
                fz = _freeze({k: v for k, v in ev.items() if k not in ("time", "index")})
                got = memo[id(ev)] = (ev, fz)
            out.append(got[1])
        return tuple(out)

    def fingerprint(self, w: World, meta: tuple[Any, ...]) -> Any:
        frozen = bool(self.groups)
        conv = _freeze if frozen else _canon
        nodes = []
        for nid in self.ids:
            node = w.nodes.get(nid)
            st = w.storages[nid]
            sfp: Any = conv(st.data) if st.data else ()
            if st.manual and (st.unsynced or st.durable is not st.data):
                sfp = (sfp, conv(st.durable))
            nodes.append((_DOWN if node is None else conv(node.state()), sfp))
        asyn = self.asynchronous
        now = w.now
        if w.fifo:
            links: dict[Any, list[Any]] = {}
            timers = []
            for due, _, it in w._pending:
                if not it.alive:
                    continue
                d = None if asyn else due - now
                if it.kind == "timer":
                    timers.append((it.node, it.name, d))
                else:
                    links.setdefault((it.src, it.node), []).append((conv(it.msg), d))
            pend: Any = (
                frozenset((k, tuple(v)) for k, v in links.items()),
                frozenset(Counter(timers).items()),
            )
            link_due = frozenset((k, v - now) for k, v in w._link_due.items() if v > now)
        else:
            items = []
            for due, _, it in w._pending:
                if it.alive:
                    d = None if asyn else due - now
                    if it.kind == "timer":
                        items.append(("t", it.node, it.name, d))
                    else:
                        items.append(("m", it.node, it.src, conv(it.msg), d))
            pend = frozenset(Counter(items).items())
            link_due = None
        part = (
            frozenset(frozenset(n for n, s in w.partition.items() if s == side) for side in (0, 1))
            if w.partition is not None
            else None
        )
        fires, crashes, parts, live = meta
        budget = (
            fires if self.max_timer_fires >= 0 else None,
            crashes if self.max_crashes >= 0 else None,
            parts if self.max_partitions >= 0 else None,
        )
        histfp = self._history_fp(w) if self.read_history else None
        if self.ghost is not None:
            live = (live, _freeze(self.ghost(w)))  # renamed with the rest under symmetry
        if not self.groups:
            return (tuple(nodes), pend, link_due, part, budget, live, histfp)
        return self._symmetric_fp(nodes, pend, link_due, part, budget, live, histfp)

    def _symmetric_fp(self, nodes, pend, link_due, part, budget, live, histfp) -> Any:
        """Canonical representative under renaming of each symmetric group.

        Members are ordered by an id-free signature (their state, and what is pending to and
        from them, with every member id blanked); members still tied are refined by how the
        whole state refers to them; remaining ties are resolved by trying their orders (up to
        120) and keeping the renaming with the smallest hash. Every candidate is a real
        renaming, so merging is always sound; ties beyond the cap only cost reduction."""
        fires = budget[0]
        per_id = {
            nid: (nodes[i], fires[i] if fires is not None else None)
            for i, nid in enumerate(self.ids)
        }
        rest = (pend, link_due, part, budget[1:], live)
        hcache = self._rename_cache
        if len(hcache) > 200_000:
            hcache.clear()

        def rename_all(m: dict[str, str], mkey: Any, blanked: frozenset[str] = frozenset()) -> Any:
            h = None
            if histfp is not None:
                out = []
                for ev in histfp:
                    k = (id(ev), mkey)
                    got = hcache.get(k)
                    if got is None:
                        got = hcache[k] = _rename(ev, m)
                    out.append(got)
                h = tuple(out)
            if blanked:  # an id-free view: blanked members as a multiset, not by position
                nodes_fp: Any = (
                    tuple(_rename(per_id[nid], m) for nid in self.ids if nid not in blanked),
                    frozenset(Counter(_rename(per_id[nid], m) for nid in blanked).items()),
                )
            else:
                inv = {v: k for k, v in m.items()}
                nodes_fp = tuple(_rename(per_id[inv.get(nid, nid)], m) for nid in self.ids)
            return (nodes_fp, _rename(rest, m), h)

        pend_items = [x for x, _ in pend] if type(pend) is frozenset else []
        candidates_per_group = []
        identity = None
        for g in self.groups:
            blank = {x: "#" for x in g}
            gset = frozenset(g)
            sig: dict[str, Any] = {}
            for x in g:
                mine: Counter[Any] = Counter()
                for item in pend_items:
                    if item[1] == x:
                        mine[("to",) + _rename(item[2:], blank)] += 1
                    elif item[0] == "m" and item[2] == x:
                        mine[("from", item[1]) + _rename(item[3:], blank)] += 1
                sig[x] = (hash((_rename(per_id[x], blank), frozenset(mine.items()))), 0)
            order = sorted(g, key=lambda x: sig[x])
            classes = [list(grp) for _, grp in itertools.groupby(order, key=lambda x: sig[x])]
            if any(len(c) > 1 for c in classes) and (histfp or self._refs_ids):
                # refine ties by how the rest of the state refers to each member
                for c in classes:
                    if len(c) > 1:
                        for x in c:
                            m = {y: "#" for y in g}
                            m[x] = "@"
                            sig[x] = (sig[x][0], hash(rename_all(m, ("@", x), gset)))
                order = sorted(g, key=lambda x: sig[x])
                classes = [list(grp) for _, grp in itertools.groupby(order, key=lambda x: sig[x])]
            # a tie class whose members the state cannot tell apart (every transposition
            # (c0 ci) leaves it unchanged, so every permutation of the class does: they
            # generate the symmetric group) needs one order, not all of them
            for c in classes:
                if len(c) > 1:
                    if identity is None:
                        identity = rename_all({}, ())
                    if all(
                        rename_all({c[0]: y, y: c[0]}, ("swap", c[0], y)) == identity for y in c[1:]
                    ):
                        c[:] = [tuple(c)]  # type: ignore[list-item]
            n_orders = 1
            for c in classes:
                n_orders *= _fact(len(c))
            if n_orders > 120:
                candidates_per_group.append([order])
            else:
                options = [list(itertools.permutations(c)) for c in classes]
                candidates_per_group.append(
                    [_flatten(combo) for combo in itertools.product(*options)]
                )
        best = None
        best_h = None
        for combo in itertools.product(*candidates_per_group):
            m: dict[str, str] = {}
            for g, order in zip(self.groups, combo):
                for target, src in zip(g, order):
                    m[src] = target
            mkey = tuple(sorted(m.items()))
            fp = rename_all(m, mkey)
            h = hash(fp)
            if best is None or h < best_h or (h == best_h and repr(fp) < repr(best)):
                best, best_h = fp, h
        return best

    # -------------------------------------------------------------- misc
    def tick(self, what: str) -> None:
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            self.stats.bounds_hit.add("time")
            self.stats.complete = False
            raise _Stop
        if self.progress and now - self._last_progress > 2.0:
            self._last_progress = now
            self.progress(what)


def _flatten(combo: Any) -> list[str]:
    out: list[str] = []
    for perm in combo:
        for x in perm:
            out.extend(x) if type(x) is tuple else out.append(x)
    return out


def _fact(n: int) -> int:
    out = 1
    for i in range(2, n + 1):
        out *= i
    return out


_COMPLETIONS = frozenset({"ok", "fail", "info"})


def _completes(history: list[dict[str, Any]], base: int) -> bool:
    """Did the events recorded since index ``base`` complete a client operation?"""
    for i in range(base, len(history)):
        ev = history[i]
        if "process" in ev and ev.get("type") in _COMPLETIONS:
            return True
    return False


def _handler_exception(world: World, e: Exception) -> CheckResult:
    from treadle.run import _handler_exception as h

    return h(world, e)


def _run_check(check: Callable[[World], CheckResult | None], w: World) -> CheckResult | None:
    from treadle.run import _run_check as rc

    return rc(check, w)


# ------------------------------------------------------------------------------ BFS / DFS
def search(ex: Explorer, strategy: str, stop_at_first: bool = True) -> Found | None:
    """Stateful BFS or DFS over fingerprints. Fills ``ex.stats``; returns the first violation."""
    st = ex.stats = Stats(strategy)
    visited: dict[Any, int] = {}
    parent: list[tuple[int, tuple[int, ...]]] = []
    succ: list[list[int] | None] = []  # edges, for counting maximal paths
    depth_of: list[int] = []
    cut: list[bool] = []

    def path(idx: int) -> list[int]:
        out: list[tuple[int, ...]] = []
        while idx >= 0:
            p, ch = parent[idx]
            out.append(ch)
            idx = p
        return [c for ch in reversed(out) for c in ch]

    def add(w: World, meta: tuple[Any, ...], par: int, ch: list[int], depth: int) -> int | None:
        fp = ex.fingerprint(w, meta)
        got = visited.get(fp)
        if got is not None:
            return -got - 1  # already known: negative marks "seen"
        idx = len(parent)
        visited[fp] = idx
        parent.append((par, tuple(ch)))
        succ.append(None)
        depth_of.append(depth)
        cut.append(False)
        st.states += 1
        if depth > st.depth:
            st.depth = depth
        return idx

    frontier: deque[tuple[int, World, tuple[Any, ...]]] = deque()
    roots: list[int] = []
    found: Found | None = None
    try:
        for w, ch, viol in ex.roots():
            meta = ex.update_live(w, ex.root_meta())
            idx = add(w, meta, -1, ch, 0)
            if viol is not None:
                return Found(viol, ch, 0)
            assert idx is not None
            roots.append(idx if idx >= 0 else -idx - 1)
            if idx >= 0:
                frontier.append((idx, w, meta))
        pop = frontier.popleft if strategy == "bfs" else frontier.pop
        while frontier:
            idx, w, meta = pop()
            depth = depth_of[idx]
            ex.tick(f"{strategy}: {st.states} states, depth {depth}, {len(frontier)} queued")
            choices = ex.choices_of(w, meta)
            if not choices:
                kind = "budget" if ex.budget_cut else "terminal"
                v = ex.check_final(w)
                if v is not None:
                    return Found(v, path(idx), depth)
                ex.liveness_findings(w, meta, kind, path(idx), depth)
                succ[idx] = []
                continue
            if depth >= ex.max_depth:
                st.bounds_hit.add("depth")
                st.complete = False
                cut[idx] = True
                v = ex.check_final(w)
                if v is not None:
                    return Found(v, path(idx), depth)
                ex.liveness_findings(w, meta, "bound", path(idx), depth)
                continue
            edges: list[int] = []
            fresh = []
            for i, ev, _ in choices:
                meta1 = ex.next_meta(meta, ev)
                for w2, ch, viol in ex.transitions(w, i, ev, ex.n_events):
                    st.transitions += 1
                    if viol is not None:
                        found = Found(viol, path(idx) + ch, depth + 1)
                        return found
                    meta2 = ex.update_live(w2, meta1)
                    got = add(w2, meta2, idx, ch, depth + 1)
                    assert got is not None
                    if got >= 0:
                        edges.append(got)
                        fresh.append((got, w2, meta2))
                    else:
                        edges.append(-got - 1)
            succ[idx] = edges
            if strategy == "dfs":
                fresh.reverse()  # explore event 0 first
            frontier.extend(fresh)
            if st.states >= ex.max_states:
                st.bounds_hit.add("states")
                st.complete = False
                break
    except _Stop:
        pass
    if st.complete:
        st.paths = _count_paths(succ, roots)
    return found


def _count_paths(succ: list[list[int] | None], roots: list[int]) -> int | None:
    """Maximal paths of an acyclic graph from each initial state (one entry per initial choice
    list, repeats included): what a stateless DFS without reduction would execute. None on a
    cycle."""
    n = len(succ)
    memo: list[int | None] = [None] * n
    on_stack = [False] * n
    total = 0
    for r in roots:
        if memo[r] is not None:
            total += memo[r]  # type: ignore[operator]
            continue
        stack = [(r, 0)]
        on_stack[r] = True
        while stack:
            v, k = stack[-1]
            edges = succ[v] or []
            if k < len(edges):
                stack[-1] = (v, k + 1)
                t = edges[k]
                if memo[t] is None:
                    if on_stack[t]:
                        return None
                    on_stack[t] = True
                    stack.append((t, 0))
                continue
            memo[v] = 1 if not edges else sum(memo[t] for t in edges)  # type: ignore[misc]
            on_stack[v] = False
            stack.pop()
        total += memo[r]  # type: ignore[operator]
    return total


# ------------------------------------------------------------------------------ DPOR
class _Entry:
    __slots__ = ("key", "node", "fault", "hist", "hb", "seq_lo", "seq_hi", "choices")

    def __init__(self, key, node, fault, hist_, hb, seq_lo, seq_hi, choices):
        self.key = key
        self.node = node
        self.fault = fault
        self.hist = hist_
        self.hb = hb
        self.seq_lo = seq_lo
        self.seq_hi = seq_hi
        self.choices = choices


def _dependent(a_node, a_fault, a_hist, b_node, b_fault, b_hist, asyn: bool) -> bool:
    # faults are dependent with each other (budgets, max_down); a crash or restart of node X
    # touches only X (its state, storage and timers; messages to X are lost when delivered to a
    # down X, at X), so it is dependent with X's events only; partition and heal (no node) with all
    if not asyn or (a_fault and b_fault):
        return True
    if (a_fault and a_node is None) or (b_fault and b_node is None):
        return True
    return a_node == b_node or (a_hist and b_hist)


class _Frame:
    __slots__ = ("keys", "backtrack", "done", "sleep")

    def __init__(self, keys: dict[Any, int], first: Any, sleep: dict[Any, tuple]):
        self.keys = keys
        self.backtrack: dict[Any, None] = {first: None}
        self.done: set[Any] = set()
        self.sleep = sleep


def dpor(
    ex: Explorer,
    reduce: bool = True,
    on_execution: Callable[[list[_Entry]], None] | None = None,
) -> Found | None:
    """Stateless DFS with source-DPOR and sleep sets; ``reduce=False`` explores every
    interleaving (the plain DFS DPOR is measured against)."""
    st = ex.stats = Stats("dpor" if reduce else "tree")
    st.paths = None
    asyn = ex.asynchronous
    E: list[_Entry] = []
    frames: list[_Frame] = []
    path_choices: list[list[int]] = []
    found: list[Found] = []

    def creator_of(seq: int) -> int | None:
        lo, hi = 0, len(E) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            e = E[mid]
            if seq <= e.seq_lo:
                hi = mid - 1
            elif seq > e.seq_hi:
                lo = mid + 1
            else:
                return mid
        return None

    def races(n_node, n_fault, n_hist, key, hb_n: int, creator: int | None) -> None:
        via = 0
        bits = hb_n
        while bits:
            low = bits & -bits
            k = low.bit_length() - 1
            via |= E[k].hb
            bits ^= low
        n = len(E)
        for j in range(n):
            e = E[j]
            if j == creator or e.key == key or (via >> j) & 1:
                continue
            if not _dependent(e.node, e.fault, e.hist, n_node, n_fault, n_hist, asyn):
                continue
            # v = events after j that do not happen after j, then the new event
            vmask = 0
            v = []
            for k in range(j + 1, n):
                if not (E[k].hb >> j) & 1:
                    v.append(k)
                    vmask |= 1 << k
            initials = [E[k].key for k in v if not (E[k].hb & vmask)]
            if not (hb_n & vmask):
                initials.append(key)
            fr = frames[j]
            if any(q in fr.backtrack for q in initials):
                continue
            pick = key if key in initials else initials[0]
            if pick in fr.keys:
                fr.backtrack[pick] = None
            else:  # cannot happen if the theory holds; stay sound
                for q in fr.keys:
                    fr.backtrack[q] = None

    def explore(w: World, meta: tuple[Any, ...], sleep: dict[Any, tuple]) -> None:
        depth = len(E)
        ex.tick(f"dpor: {st.executions} executions, depth {depth}")
        choices = ex.choices_of(w, meta)
        if not choices:
            st.executions += 1
            if on_execution is not None:
                on_execution(E)
            flat = [c for ch in path_choices for c in ch]
            v = ex.check_final(w)
            if v is not None:
                found.append(Found(v, flat, depth))
                raise _Stop
            ex.liveness_findings(w, meta, "budget" if ex.budget_cut else "terminal", flat, depth)
            if st.executions >= ex.max_states:
                st.bounds_hit.add("states")
                st.complete = False
                raise _Stop
            return
        if depth >= ex.max_depth:
            st.bounds_hit.add("depth")
            st.complete = False
            st.executions += 1
            return
        n_events = ex.n_events
        keys = {k: (i, ev) for i, ev, k in choices}
        avail = [k for k in keys if k not in sleep]
        if not avail:
            st.blocked += 1
            return
        fr = _Frame(keys, avail[0], dict(sleep))  # type: ignore[arg-type]
        if not reduce:
            for k in keys:
                fr.backtrack[k] = None
        frames.append(fr)
        try:
            while True:
                p = next((k for k in fr.backtrack if k not in fr.done and k not in fr.sleep), None)
                if p is None:
                    break
                fr.done.add(p)
                i, ev = keys[p]
                meta1 = ex.next_meta(meta, ev)
                is_pending = type(ev) is Pending
                node = ev.node  # None for partition and heal
                fault = not is_pending
                creator = creator_of(ev.seq) if is_pending else None
                union_hist = False
                seq_lo = w._seq
                hist_len = len(w.history)
                for w2, ch, viol in ex.transitions(w, i, ev, n_events):
                    st.transitions += 1
                    wrote = ex.read_history and len(w2.history) > hist_len
                    union_hist = union_hist or wrote
                    if viol is not None:
                        flat = [c for chs in path_choices for c in chs] + ch
                        found.append(Found(viol, flat, depth + 1))
                        raise _Stop
                    hb = 0
                    for j, e in enumerate(E):
                        if _dependent(e.node, e.fault, e.hist, node, fault, wrote, asyn):
                            hb |= (1 << j) | e.hb
                    if creator is not None:
                        hb |= (1 << creator) | E[creator].hb
                    if reduce:
                        races(node, fault, wrote, p, hb, creator)
                        # p may disable co-enabled events (a handler cancels its own timer, a
                        # crash drops a node's timers, the last event ends crash faults): those
                        # never execute after p, so no race reveals them; explore them here
                        after = {ex.event_key(w2, e2) for e2 in w2.enabled()}
                        for q in keys:
                            if q != p and q not in after and q not in fr.sleep:
                                fr.backtrack[q] = None
                    inner = tuple(ch[1:] if n_events > 1 else ch)
                    E.append(_Entry(p, node, fault, wrote, hb, seq_lo, w2._seq, inner))
                    path_choices.append(ch)
                    if depth + 1 > st.depth:
                        st.depth = depth + 1
                    child_sleep = {
                        q: f
                        for q, f in fr.sleep.items()
                        if not _dependent(f[0], f[1], f[2], node, fault, wrote, asyn)
                    }
                    meta2 = ex.update_live(w2, meta1)
                    explore(w2, meta2, child_sleep)
                    E.pop()
                    path_choices.pop()
                if reduce:
                    fr.sleep[p] = (node, fault, union_hist)
        finally:
            frames.pop()

    try:
        for w, ch, viol in ex.roots():
            if viol is not None:
                return Found(viol, ch, 0)
            path_choices.append(ch)
            try:
                explore(w, ex.update_live(w, ex.root_meta()), {})
            finally:
                path_choices.pop()
    except _Stop:
        pass
    except RecursionError:
        raise TreadleError("dpor: path too deep for the recursion limit; lower max_depth") from None
    return found[0] if found else None


def count_traces(ex: Explorer) -> tuple[int, int]:
    """(executions, Mazurkiewicz traces) of the full execution tree, by brute force: every
    interleaving is executed and reduced to its lexicographic normal form under the same
    dependence DPOR uses. Exponential: for checking DPOR on small configurations."""
    forms: set[tuple[Any, ...]] = set()

    def normal_form(E: list[_Entry]) -> tuple[Any, ...]:
        labels = [repr((e.key, e.choices)) for e in E]
        done = 0
        out = []
        for _ in range(len(E)):
            best = -1
            for k, e in enumerate(E):
                if (done >> k) & 1 or (e.hb & ~done):
                    continue
                if best < 0 or labels[k] < labels[best]:
                    best = k
            done |= 1 << best
            out.append(labels[best])
        return tuple(out)

    root: list[Any] = [None]
    roots = ex.roots

    def tag_roots() -> Iterator[tuple[World, list[int], CheckResult | None]]:
        for w, ch, viol in roots():
            root[0] = tuple(ch)  # runs from different initial draws are different traces
            yield w, ch, viol

    ex.roots = tag_roots  # type: ignore[method-assign]
    dpor(ex, reduce=False, on_execution=lambda E: forms.add((root[0], normal_form(E))))
    if not ex.stats.complete:
        raise TreadleError("count_traces: a bound was hit; the counts would be partial")
    return ex.stats.executions, len(forms)


# ------------------------------------------------------------------------------ entry point
def split_config(
    system: System, overrides: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resolved world+system config, explorer bounds) for an exhaustive run: the system's
    ``exhaustive`` overrides, then the user's."""
    merged = dict(system.exhaustive)
    merged.update(overrides or {})
    bounds_given = {k: v for k, v in merged.items() if k in EXPLORER_SCHEMA}
    world_over = {k: v for k, v in merged.items() if k not in EXPLORER_SCHEMA}
    bounds = EXPLORER_SCHEMA.resolve([bounds_given], lambda k: ConfigError(k))  # keys known
    return system.resolve_config(world_over), bounds


def make_explorer(
    system: System,
    bug: str | None = None,
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    symmetry: bool = True,
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Explorer:
    cfg, bounds = split_config(system, config)
    if steps is not None:
        bounds["max_depth"] = steps
    return Explorer(system, cfg, bug, bounds, symmetry, time_limit, progress)


def explore_exhaustive(
    system: System,
    bug: str | None = None,
    strategy: str = "dfs",
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    time_limit: float | None = None,
    out: str | None = DEFAULT_TRACES,
    progress: Callable[[str], None] | None = None,
    symmetry: bool = True,
    compare: bool = True,
) -> Any:
    """Exhaustive exploration (``dfs``, ``bfs`` or ``dpor``) of the system's small exhaustive
    config. Returns a :class:`treadle.outcome.ExploreResult`; ``extra`` holds ``complete``,
    ``states``, ``executions``, ``depth`` and, for dpor, the reduction against plain DFS."""
    from treadle.outcome import ExploreResult, replay_command, save_new_trace, trace_filename
    from treadle.run import run_once
    from treadle.strategies import Replay

    if strategy not in ("dfs", "bfs", "dpor"):
        raise TreadleError(f"unknown exhaustive strategy {strategy!r}; known: dfs, bfs, dpor")
    start = time.monotonic()
    ex = make_explorer(
        system, bug, config, steps, symmetry and strategy != "dpor", time_limit, progress
    )
    interrupted = False
    try:
        if strategy == "dpor":
            found = dpor(ex)
        else:
            found = search(ex, strategy)
    except KeyboardInterrupt:
        found, interrupted = None, True
        ex.stats.complete = False
    st = ex.stats
    extra: dict[str, Any] = {
        "complete": bool(st.complete and found is None and not interrupted),
        "states": st.states if strategy != "dpor" else None,
        # executions actually run (dpor) apart from maximal paths only counted (dfs/bfs: what a
        # stateless DFS without reduction would run, counted on the state graph, not run)
        "executions_run": st.executions if strategy == "dpor" else None,
        "paths_counted": st.paths if strategy != "dpor" else None,
        "transitions": st.transitions,
        "history_checks": st.history_checks,
        "unknown_checks": st.unknown,
        "depth": st.depth,
        "bounds_hit": sorted(st.bounds_hit),
        "model": "asynchronous" if ex.asynchronous else f"timed (window {ex.cfg['window']})",
        "symmetry": [list(g) for g in ex.groups],
        "budgets": {k: v for k, v in ex.bounds.items() if k.startswith("max_") and v != -1},
        "liveness": st.liveness,
    }
    elapsed_search = time.monotonic() - start
    if strategy != "dpor":
        extra["states_per_s"] = round(st.states / elapsed_search, 1) if elapsed_search else None
    else:
        extra["sleep_blocked"] = st.blocked
        extra["states"] = None
        if compare and found is None and st.complete:
            remaining = None
            if time_limit is not None:
                remaining = max(1.0, time_limit - elapsed_search)
            ex2 = make_explorer(system, bug, config, steps, False, remaining, None)
            search(ex2, "dfs")
            extra["dfs_states"] = ex2.stats.states
            extra["dfs_paths_counted"] = ex2.stats.paths
            if ex2.stats.paths and st.executions:
                extra["reduction"] = round(ex2.stats.paths / st.executions, 2)
    # "runs": executions actually run (dpor); a stateful search is one run over the graph
    executions = (st.executions if strategy == "dpor" else 1) or 0
    if found is not None:
        # the shortest counterexample: BFS up to the depth where it was found
        if strategy != "bfs":
            ex_b = make_explorer(system, bug, config, found.steps, symmetry, None, progress)
            ex_b.max_depth = found.steps
            shorter = search(ex_b, "bfs")
            if shorter is not None:
                found = shorter
        # check it replays as a normal trace
        r = run_once(system, ex.cfg, bug, Replay(list(found.choices)), found.steps)
        if r.violation is None or r.violation.property != found.violation.property:
            raise TreadleError(
                "internal error: the exhaustive counterexample does not replay "
                f"(expected {found.violation.property}, got "
                f"{r.violation.property if r.violation else 'no violation'}); node code is "
                "probably nondeterministic (try treadle explore --check-determinism)"
            )
        v = r.violation
        trace = Trace(
            system=system.name,
            system_version=system.version,
            bug=bug,
            config=ex.cfg,
            seed=0,
            strategy=strategy,
            steps=found.steps,
            choices=list(found.choices),
            violation=v.to_json(),
            history_sha256=hist.digest(r.history),
            events=len(r.history),
            extra={"exhaustive": {"shortest": True, "depth": found.steps}},
        )
        path = None
        if out is not None:
            name = trace_filename(system.name, bug, v.property, 0)
            path = save_new_trace(trace, out, name.replace("-seed0.json", f"-{strategy}.json"))
        extra["counterexample_steps"] = found.steps
        extra["summary"] = (
            f"violation of {v.property} found by {strategy} after {st.states or st.executions} "
            f"{'states' if strategy != 'dpor' else 'executions'}; shortest counterexample: "
            f"{found.steps} steps"
        )
        return ExploreResult(
            "violation",
            system.name,
            bug,
            strategy,
            0,
            executions,
            st.transitions,
            found.steps,
            time.monotonic() - start,
            (0, 0),
            violation=v,
            trace=path,
            replay=replay_command(path) if path else None,
            history_sha256=trace.history_sha256,
            interrupted=interrupted,
            extra=extra,
        )
    if strategy == "dpor":
        what = f"{st.executions} executions ({st.blocked} cut by sleep sets)"
    else:
        paths = (
            f"{st.paths} maximal paths counted on the state graph (not run)"
            if st.paths is not None
            else "paths not counted (incomplete or cyclic state graph)"
        )
        what = f"{st.states} distinct states, {st.transitions} transitions; {paths}"
    if extra["complete"]:
        verb = "ran" if strategy == "dpor" else "explored"
        extra["summary"] = f"{verb} all {what}, up to depth {st.depth}"
    else:
        verb = "ran " if strategy == "dpor" else ""
        extra["summary"] = (
            f"bound hit ({', '.join(sorted(st.bounds_hit)) or 'interrupted'}): {verb}{what}, "
            f"depth {st.depth}"
        )
    verdict = "ok"
    note = None
    if interrupted:
        verdict = "interrupted"
    elif st.unknown:
        verdict = "unknown"
        note = f"{st.unknown} check(s) could not decide, e.g. {st.unknown_message}"
        extra["summary"] += f"; {note}"
    if st.liveness:
        extra["summary"] += f"; {len(st.liveness)} liveness finding(s)"
    return ExploreResult(
        verdict,
        system.name,
        bug,
        strategy,
        0,
        executions,
        st.transitions,
        st.depth,
        time.monotonic() - start,
        None,
        interrupted=interrupted,
        extra=extra,
        note=note,
    )
