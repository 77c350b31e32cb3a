"""The simulated world: nodes, network, timers, disks and faults.

Time is logical. Every message and timer is *pending* with a due time. An event is enabled when it
is due within ``window`` ticks of the earliest pending one: events that close together may happen
in any order, which is where interleavings come from; a larger window is a more asynchronous
network. Taking an event advances ``now`` to its due time (never backwards).

Every nondeterministic decision (which enabled event, a message's latency and fate, a timer's
drift, a node's random draw, which partition) is a *choice* asked of the chooser (a strategy, or a
replayer). Same configuration + same choices => same history, byte for byte.
"""

from __future__ import annotations

import random as _random
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from typing import Any

from treadle.config import Rule, Schema, at_most, choice, flag, integer, rate
from treadle.node import Context, Node, Storage

#: World configuration keys: type, range, default. A system's defaults override these, and the
#: user's ``--config KEY=VALUE`` overrides both.
WORLD_SCHEMA = Schema(
    [
        choice("ordering", "unordered", ("unordered", "fifo"), "message order per link"),
        integer("latency_min", 1, "message latency in ticks, drawn per message in [min, max]"),
        integer("latency_max", 3, "largest message latency in ticks"),
        integer("window", 2, "events due within this many ticks of the earliest are enabled"),
        integer("timer_drift", 1, "a timer fires up to this many ticks early or late"),
        rate("drop_rate", 0.0, "probability a delivered message is lost instead"),
        rate("duplicate_rate", 0.0, "probability it is delivered and also sent again"),
        rate("crash_rate", 0.0, "probability per step of crashing a server"),
        rate("restart_rate", 0.05, "probability per step of restarting a crashed server"),
        integer("max_down", -1, "servers down at once", special={-1: "a minority"}),
        rate("partition_rate", 0.0, "probability per step of splitting the servers in two"),
        rate("heal_rate", 0.05, "probability per step of healing a partition"),
        flag("torn_writes", False, "a crash may keep a prefix of unsynced writes"),
    ],
    [
        at_most("latency_min", "latency_max"),
        Rule(
            ("drop_rate", "duplicate_rate"),
            lambda c: c["drop_rate"] + c["duplicate_rate"] <= 1.0,
            "drop_rate + duplicate_rate <= 1",
        ),
    ],
)

#: Strategy keys (random walk, PCT, swarm read them from the same configuration).
STRATEGY_SCHEMA = Schema(
    [integer("pct_depth", 3, "the PCT strategy's bug depth d", minimum=1)],
)

#: World and strategy keys with their defaults.
WORLD_DEFAULTS: dict[str, Any] = (WORLD_SCHEMA + STRATEGY_SCHEMA).defaults()

FAULT_KINDS = ("crash", "restart", "partition", "heal")
_RESERVED = frozenset({"index", "time", "node", "type"})


class Pending:
    """A message in flight or a timer."""

    __slots__ = ("due", "seq", "kind", "node", "src", "msg", "name", "alive")

    def __init__(
        self, due: int, seq: int, kind: str, node: str, src: str | None, msg: Any, name: str | None
    ):
        self.due = due
        self.seq = seq
        self.kind = kind  # "deliver" or "timer"
        self.node = node  # the receiver
        self.src = src
        self.msg = msg
        self.name = name
        self.alive = True

    def describe(self) -> str:
        if self.kind == "timer":
            return f"timer {self.name!r} fires at {self.node}"
        return f"{self.src} -> {self.node}: {summarize(self.msg)}"

    def __repr__(self) -> str:
        return f"<{self.describe()} due {self.due}>"


class Fault:
    """A fault the strategy may pick instead of a normal event."""

    __slots__ = ("kind", "node")

    def __init__(self, kind: str, node: str | None = None):
        self.kind = kind
        self.node = node

    def describe(self) -> str:
        return f"{self.kind} {self.node}" if self.node else self.kind

    def __repr__(self) -> str:
        return f"<fault {self.describe()}>"


def summarize(msg: Any, limit: int = 160) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_event(ev: dict[str, Any]) -> str:
    skip = ("index", "time", "node", "process", "type")
    rest = " ".join(f"{k}={v!r}" for k, v in ev.items() if k not in skip)
    return f"{ev['type']} {rest}".rstrip()


class Chooser:
    """Where a world's choices come from (a strategy during exploration, a list during replay)."""

    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        raise NotImplementedError

    def choose_event(
        self, events: list[Any], n_normal: int, faults: dict[str, list[int]] | None
    ) -> int:
        """Which enabled event happens next: ``events[:n_normal]`` are deliveries and timers,
        earliest first; the rest are faults, whose indexes (relative to ``n_normal``) are grouped
        by kind in ``faults``. Same as ``choose("event", len(events), events)`` unless a
        strategy uses the extra structure."""
        return self.choose("event", len(events), events)


class World:
    def __init__(
        self,
        config: dict[str, Any],
        bug: str | None,
        servers: dict[str, Callable[[], Node]],
        clients: dict[str, Callable[[], Node]],
        chooser: Chooser,
        log_steps: bool = False,
    ):
        self.config = config
        self.bug = bug
        self.server_ids: tuple[str, ...] = tuple(sorted(servers))
        self.client_ids: tuple[str, ...] = tuple(sorted(clients))
        self.factories: dict[str, Callable[[], Node]] = {**servers, **clients}
        self.chooser = chooser
        self.now = 0
        self.step_count = 0
        self.history: list[dict[str, Any]] = []
        self.log_steps = log_steps
        self.steps_log: list[tuple[int, int, str, str, str]] = []
        self.nodes: dict[str, Node | None] = {}
        self.storages: dict[str, Storage] = {nid: Storage() for nid in self.factories}
        self.contexts: dict[str, Context] = {
            nid: Context(self, nid, self.storages[nid]) for nid in self.factories
        }
        self.down: set[str] = set()
        self.partition: dict[str, int] | None = None  # server -> side, while partitioned
        self.crashes = 0
        self._pending: list[tuple[int, int, Pending]] = []
        self._timers: dict[tuple[str, str], Pending] = {}
        self._dead = 0
        self._seq = 0
        self._link_due: dict[tuple[str, str], int] = {}
        self._settle_rng: _random.Random | None = None
        #: the time the faults stopped (``settle``), None while they may still happen
        self.settled_at: int | None = None
        c = config
        self.fifo = c["ordering"] == "fifo"
        self.latency_min = int(c["latency_min"])
        self.latency_span = int(c["latency_max"]) - self.latency_min + 1
        self.window = int(c["window"])
        self.drift = int(c["timer_drift"])
        self.fates = c["drop_rate"] > 0 or c["duplicate_rate"] > 0
        # a fate the configuration does not allow is a delivery: a strategy that mutates choice
        # lists (guided, the shrinker) may put any value in a fate choice, and a system whose
        # drop_rate is 0 claims nothing under loss (the mesh's routing bound assumes no lost
        # registry push), so a flipped choice must not lose its message
        self.may_drop = c["drop_rate"] > 0
        self.may_duplicate = c["duplicate_rate"] > 0
        self.fault_kinds = tuple(k for k in FAULT_KINDS if c[f"{k}_rate"] > 0)
        if "crash" not in self.fault_kinds:
            self.fault_kinds = tuple(k for k in self.fault_kinds if k != "restart")
        if "partition" not in self.fault_kinds:
            self.fault_kinds = tuple(k for k in self.fault_kinds if k != "heal")
        max_down = int(c["max_down"])
        self.max_down = (len(self.server_ids) - 1) // 2 if max_down < 0 else max_down
        self._splits: list[tuple[frozenset[str], frozenset[str]]] | None = None
        self._current: str | None = None  # node whose handler is running
        #: the node the last step acted on (its handler ran, it crashed or restarted; None for a
        #: partition or heal): the only node whose state that step can have changed, so a
        #: coverage abstraction need look again only at it (treadle.coverage.PerNode)
        self.last_node: str | None = None
        self._fault_cache: tuple[Any, list[Fault], dict[str, list[int]]] | None = None
        self._partitions = 0  # partitions so far (a cache key for the fault list)
        #: sometimes-assertions evaluated in this run: name -> step of the first hit (None:
        #: evaluated, never true). Kept outside the history, so traces' digests do not change.
        self.sometimes_seen: dict[str, int | None] = {}
        #: their names in the order of their first hit (a cheap "anything new?" for the guided
        #: strategy)
        self.sometimes_order: list[str] = []

    # ------------------------------------------------------------------ choices
    def choose(self, kind: str, n: int, options: list[Any] | None = None) -> int:
        if n <= 1:
            return 0
        if self._settle_rng is not None:
            return self._settle_rng.randrange(n)
        return self.chooser.choose(kind, n, options)

    # ------------------------------------------------------------------ node API backends
    def send(self, src: str, dst: str, msg: Any) -> None:
        if dst not in self.factories:
            raise ValueError(f"{src} sent to unknown node {dst!r}: {summarize(msg)}")
        self._enqueue_message(src, dst, msg)

    def _enqueue_message(self, src: str, dst: str, msg: Any) -> None:
        latency = self.latency_min
        if self.latency_span > 1 and self._settle_rng is None:
            latency += self.choose("latency", self.latency_span)
        due = self.now + latency
        if self.fifo:
            link = (src, dst)
            last = self._link_due.get(link, 0)
            if due < last:
                due = last
            self._link_due[link] = due
        self._seq += 1
        item = Pending(due, self._seq, "deliver", dst, src, msg, None)
        insort(self._pending, (due, self._seq, item))

    def set_timer(self, node: str, name: str, delay: int) -> None:
        key = (node, name)
        old = self._timers.get(key)
        if old is not None and old.alive:
            old.alive = False
            self._dead += 1
        if self.drift and self._settle_rng is None:
            delay += self.choose("drift", 2 * self.drift + 1) - self.drift
        if delay < 1:
            delay = 1
        due = self.now + delay
        self._seq += 1
        item = Pending(due, self._seq, "timer", node, None, None, name)
        self._timers[key] = item
        insort(self._pending, (due, self._seq, item))

    def cancel_timer(self, node: str, name: str) -> None:
        item = self._timers.pop((node, name), None)
        if item is not None and item.alive:
            item.alive = False
            self._dead += 1

    def timer_pending(self, node: str, name: str) -> bool:
        item = self._timers.get((node, name))
        return item is not None and item.alive

    def record_node_event(self, node: str, kind: str, fields: dict[str, Any]) -> None:
        if not _RESERVED.isdisjoint(fields):
            clash = ", ".join(sorted(_RESERVED.intersection(fields)))
            raise ValueError(
                f"ctx.record({kind!r}, ...): the field(s) {clash} would overwrite the event's own; "
                "rename them (e.g. log_index, event_type)"
            )
        ev = {"index": len(self.history), "time": self.now, "node": node, "type": kind}
        ev.update(fields)
        self.history.append(ev)
        if self.log_steps:
            self._log("event", node, _describe_event(ev))

    def sometimes(self, name: str, cond: Any = True) -> bool:
        """Note a sometimes-assertion (node code via ``ctx.sometimes``, checks directly)."""
        hit = bool(cond)
        seen = self.sometimes_seen
        if hit:
            if seen.get(name) is None:
                seen[name] = self.step_count
                self.sometimes_order.append(name)
        elif name not in seen:
            seen[name] = None
        return hit

    def record_client(
        self, process: str, type_: str, f: str, value: Any, fields: dict[str, Any]
    ) -> None:
        ev = {
            "index": len(self.history),
            "time": self.now,
            "process": process,
            "type": type_,
            "f": f,
            "value": value,
        }
        if fields:
            ev.update(fields)
        self.history.append(ev)
        if self.log_steps:
            self._log("event", process, _describe_event(ev))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for nid in self.server_ids + self.client_ids:
            node = self.factories[nid]()
            self.storages[nid]._set_manual(node.manual_sync)
            self.nodes[nid] = node
            self._current = nid
            node.on_start(self.contexts[nid])
        self._current = None
        if self.log_steps:
            self.steps_log.append(
                (0, 0, "start", "*", ", ".join(self.server_ids + self.client_ids))
            )

    def up(self, nid: str) -> bool:
        return nid not in self.down

    def crash(self, nid: str) -> None:
        storage = self.storages[nid]
        keep = 0
        if self.config["torn_writes"] and storage.unsynced:
            keep = self.choose("torn", len(storage.unsynced) + 1)
        storage._crash(keep)
        self.nodes[nid] = None
        self.down.add(nid)
        self.crashes += 1
        for key in [k for k in self._timers if k[0] == nid]:
            self.cancel_timer(*key)
        self.record_node_event(nid, "crash", {})

    def restart(self, nid: str) -> None:
        self.down.discard(nid)
        node = self.factories[nid]()
        self.storages[nid]._set_manual(node.manual_sync)
        self.nodes[nid] = node
        self.record_node_event(nid, "restart", {})
        self._current = nid
        node.on_restart(self.contexts[nid])
        self._current = None

    def splits(self) -> list[tuple[frozenset[str], frozenset[str]]]:
        """Every way to cut the servers in two non-empty sides (each split once)."""
        if self._splits is None:
            ids = self.server_ids
            first, rest = ids[0], ids[1:]
            out = []
            for mask in range(1 << len(rest)):
                side = {first} | {rest[i] for i in range(len(rest)) if mask >> i & 1}
                if len(side) < len(ids):
                    out.append((frozenset(side), frozenset(ids) - side))
            # smaller minority sides first: shrinking moves towards isolating one node
            out.sort(key=lambda s: (min(len(s[0]), len(s[1])), sorted(s[0])))
            self._splits = out
        return self._splits

    def split(self, a: frozenset[str], b: frozenset[str]) -> None:
        self.partition = {n: 0 for n in a} | {n: 1 for n in b}
        self._partitions += 1
        self.record_node_event("world", "partition", {"sides": [sorted(a), sorted(b)]})

    def heal(self) -> None:
        self.partition = None
        self.record_node_event("world", "heal", {})

    def connected(self, a: str, b: str) -> bool:
        p = self.partition
        if p is None:
            return True
        sa, sb = p.get(a), p.get(b)
        return sa is None or sb is None or sa == sb

    # ------------------------------------------------------------------ stepping
    def enabled(self) -> list[Any]:
        """The events that may happen next: due deliveries and timers (earliest first), then the
        faults the configuration allows."""
        events = self.enabled_normal()
        if self.fault_kinds and self._settle_rng is None:
            events.extend(self._faults(bool(events))[0])
        return events

    def enabled_normal(self) -> list[Any]:
        """The deliveries and timers that may happen next, earliest first."""
        pending = self._pending
        while pending and not pending[0][2].alive:
            pending.pop(0)
            self._dead -= 1
        if self._dead > 64 and self._dead * 2 > len(pending):
            self._pending = pending = [p for p in pending if p[2].alive]
            self._dead = 0
        events: list[Any] = []
        if pending:
            limit = pending[0][0] + self.window
            if self.fifo:
                seen: set[tuple[str | None, str]] = set()
                for due, _, item in pending:
                    if due > limit:
                        break
                    if not item.alive:
                        continue
                    if item.kind == "deliver":
                        link = (item.src, item.node)
                        if link in seen:
                            continue
                        seen.add(link)
                    events.append(item)
            else:
                for due, _, item in pending:
                    if due > limit:
                        break
                    if item.alive:
                        events.append(item)
        return events

    def _faults(self, busy: bool) -> tuple[list[Fault], dict[str, list[int]]]:
        """Faults that may happen now, and their offsets grouped by kind. Once nothing else is
        pending only recovery is offered (restart, heal), so a finished workload ends the run
        instead of crashing forever."""
        key = (busy, self.crashes, len(self.down), self.partition is None, self._partitions)
        cache = self._fault_cache
        if cache is not None and cache[0] == key:
            return cache[1], cache[2]
        out = self._compute_faults(busy)
        groups: dict[str, list[int]] = {}
        for i, f in enumerate(out):
            groups.setdefault(f.kind, []).append(i)
        self._fault_cache = (key, out, groups)
        return out, groups

    def _compute_faults(self, busy: bool) -> list[Fault]:
        out: list[Fault] = []
        kinds = self.fault_kinds
        if busy and "crash" in kinds and len(self.down) < self.max_down:
            out.extend(Fault("crash", n) for n in self.server_ids if n not in self.down)
        if "restart" in kinds and self.down:
            out.extend(Fault("restart", n) for n in sorted(self.down))
        if len(self.server_ids) > 1:
            if busy and "partition" in kinds and self.partition is None:
                out.append(Fault("partition"))
            if "heal" in kinds and self.partition is not None:
                out.append(Fault("heal"))
        return out

    def step(self) -> bool:
        """Take one event. Returns False when nothing is enabled (the world is quiescent)."""
        events = self.enabled_normal()
        n_normal = len(events)
        groups = None
        if self.fault_kinds and self._settle_rng is None:
            faults, groups = self._faults(n_normal > 0)
            if faults:
                events.extend(faults)
        n = len(events)
        if n <= 1:
            if n == 0:
                return False
            i = 0
        elif self._settle_rng is not None:
            i = self._settle_rng.randrange(n)
        else:
            i = self.chooser.choose_event(events, n_normal, groups)
        self.apply(events[i])
        return True

    def apply(self, ev: Any) -> None:
        self.step_count += 1
        self.last_node = ev.node
        if type(ev) is Pending:
            self._take(ev)
            if ev.due > self.now:
                self.now = ev.due
            if ev.kind == "timer":
                del self._timers[(ev.node, ev.name)]  # type: ignore[arg-type]
                node = self.nodes[ev.node]
                if self.log_steps:
                    self._log("timer", ev.node, str(ev.name))
                if node is not None:
                    self._current = ev.node
                    node.on_timer(self.contexts[ev.node], ev.name)  # type: ignore[arg-type]
                    self._current = None
            else:
                self._deliver(ev)
        else:
            self._apply_fault(ev)

    def _take(self, item: Pending) -> None:
        pending = self._pending
        i = bisect_left(pending, (item.due, item.seq))
        del pending[i]
        item.alive = False

    def _deliver(self, ev: Pending) -> None:
        dst, src = ev.node, ev.src
        assert src is not None
        if dst in self.down:
            if self.log_steps:
                self._log("lost", dst, f"{dst} is down; {ev.describe()}")
            return
        if not self.connected(src, dst):
            if self.log_steps:
                self._log("lost", dst, f"partitioned; {ev.describe()}")
            return
        if self.fates and self._settle_rng is None:
            fate = self.choose("fate", 3)
            if (fate == 1 and not self.may_drop) or (fate == 2 and not self.may_duplicate):
                fate = 0
            if fate == 1:
                if self.log_steps:
                    self._log("drop", dst, ev.describe())
                return
            if fate == 2:
                self._enqueue_message(src, dst, ev.msg)
                if self.log_steps:
                    self._log("duplicate", dst, ev.describe())
        if self.log_steps:
            self._log("deliver", dst, ev.describe())
        node = self.nodes[dst]
        assert node is not None
        self._current = dst
        node.on_message(self.contexts[dst], src, ev.msg)
        self._current = None

    def _apply_fault(self, f: Fault) -> None:
        if self.log_steps:
            self._log(f.kind, f.node or "world", f.describe())
        if f.kind == "crash":
            assert f.node is not None
            self.crash(f.node)
        elif f.kind == "restart":
            assert f.node is not None
            self.restart(f.node)
        elif f.kind == "partition":
            splits = self.splits()
            a, b = splits[self.choose("partition", len(splits))]
            self.split(a, b)
        elif f.kind == "heal":
            self.heal()

    def _log(self, kind: str, node: str, detail: str) -> None:
        self.steps_log.append((self.step_count, self.now, kind, node, detail))

    # ------------------------------------------------------------------ settling
    def settle(
        self,
        max_steps: int,
        seed: int = 0,
        max_ticks: int | None = None,
        on_quiet: Callable[[World], None] | None = None,
        keep_down: Iterable[str] = (),
    ) -> int:
        """Heal every partition, restart every crashed server, then run without faults (and
        without consuming choices) until quiescent, ``max_steps`` or ``max_ticks`` after the
        faults stopped. Used by systems whose properties hold "after the faults stop"
        (durability, convergence, liveness). ``on_quiet(world)`` runs once the faults stopped
        (a binding handing its clients work to do in the tail); ``settled_at`` keeps the time.
        ``keep_down``: servers that are down for the whole tail instead (crashed now if up; a
        system that promises progress with a minority down is judged with one down)."""
        self._settle_rng = _random.Random(seed)
        if self.partition is not None:
            self.heal()
        keep = set(keep_down)
        for nid in sorted(keep - self.down):
            self.crash(nid)
        for nid in sorted(self.down - keep):
            self.restart(nid)
        self.settled_at = self.now
        if on_quiet is not None:
            on_quiet(self)
        deadline = None if max_ticks is None else self.now + max_ticks
        steps = 0
        while steps < max_steps and (deadline is None or self.now < deadline) and self.step():
            steps += 1
        return steps

    def pending_messages(self) -> list[Pending]:
        return [p for _, _, p in self._pending if p.alive and p.kind == "deliver"]
