"""Exhaustive search: the Explorer, which enumerates the transitions of a state by re-running a
step on a copy with scripted choices, and fingerprints states."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.errors import TreadleError
from treadle.exhaustive.bounds import _DOWN, ASYNC_WINDOW, _Stop
from treadle.exhaustive.canon import _canon, _freeze, _rename, clone_world
from treadle.system import System
from treadle.world import Chooser, Pending, World


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
#: paths an exhaustive search keeps for --check-determinism (the first ones to end)
SAMPLE_PATHS = 20


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
        self.sample_paths: list[list[int]] = []
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
        return self.first_violation(self.history_checks, w)

    def first_violation(self, checks: Any, w: World) -> CheckResult | None:
        """The first of ``checks`` that ``w`` violates; an undecided one is counted as unknown."""
        for check in checks:
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
        if self.system.settles(w.config):
            w = clone_world(w)
            w.chooser = self.script
            try:
                self.system.settle_world(w)
            except Exception as e:
                if w._current is None:
                    raise
                return _handler_exception(w, e)
        return self.first_violation((*self.system.final_checks, *self.history_checks), w)

    def liveness_findings(
        self, w: World, meta: tuple[Any, ...], kind: str, choices: list[int], depth: int
    ) -> None:
        self.path_ended(self.never_held(w, meta), kind, choices, depth)

    def never_held(self, w: World, meta: tuple[Any, ...]) -> list[str]:
        """The liveness predicates that never held on the path ending at ``w``."""
        return [name for name, pred in self.liveness if name not in meta[3] and not pred(w)]

    def path_ended(self, never: list[str], kind: str, choices: list[int], depth: int) -> None:
        """A path ended (quiescent, or cut by a bound or budget): record its findings for the
        predicates in ``never`` (the first path per predicate and kind)."""
        # keep the first few paths for the determinism check (--check-determinism replays them
        # in other processes)
        if len(self.sample_paths) < SAMPLE_PATHS:
            self.sample_paths.append(list(choices))
        for name in never:
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
