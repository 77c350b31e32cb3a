"""Binding of the event store: store + projector servers, command clients, checks, seeded bugs."""

from __future__ import annotations

import weakref
from typing import Any

from treadle.checkers.eventstore import Monitor, check_final
from treadle.checkers.eventstore.domain import norm
from treadle.checkers.eventstore.progress import check_progress, command_bound, round_trip
from treadle.checkers.result import CheckResult
from treadle.impl.eventstore import aggregates
from treadle.impl.eventstore.client import Client
from treadle.impl.eventstore.projector import Projector
from treadle.impl.eventstore.store import Store

from treadle.config import Rule, comma_list, flag, integer, text
from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World

STORE, PROJECTOR = "n1", "p1"
#: fault-free steps after a run before the final checks (then the tail commands, if any)
SETTLE_STEPS = 200


def streams(config: dict[str, Any]) -> tuple[str, ...]:
    accounts = [f"account-{chr(ord('A') + i)}" for i in range(int(config["accounts"]))]
    users = [f"user-{i + 1}" for i in range(int(config["users"]))]
    return tuple(accounts + users)


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    names = streams(config)
    ops = int(config["ops_per_client"])
    for command in (c.strip() for c in str(config["script"]).split(",") if c.strip()):
        kind = "account" if command in aggregates.ACCOUNT_COMMANDS else "user"
        if command not in aggregates.ACCOUNT_COMMANDS + aggregates.USER_COMMANDS:
            raise ValueError(f"config script: unknown command {command!r}")
        if not any(aggregates.kind(s) == kind for s in names):
            raise ValueError(f"config script: {command!r} needs a {kind} stream")
    clients = {
        f"c{i}": (lambda: Client(ops, names, config)) for i in range(1, config["clients"] + 1)
    }
    return Cluster(servers={STORE: Store, PROJECTOR: Projector}, clients=clients)


# one incremental monitor per world: each step feeds only the new events
_monitors: weakref.WeakKeyDictionary[World, Monitor] = weakref.WeakKeyDictionary()


def monitor_of(world: World) -> Monitor:
    m = _monitors.get(world)
    if m is None:
        m = _monitors[world] = Monitor()
    return m


def store_invariants(world: World) -> CheckResult | None:
    """Every event-store invariant, on the events recorded since the last step."""
    return monitor_of(world).feed_all(world.history)


def settled_log_and_projection(world: World) -> CheckResult | None:
    """After the faults stop: the store's log is the log its history implies (nothing
    acknowledged was lost), and the projection caught up equals a fold over the log."""
    m = monitor_of(world)
    if m.feed_all(world.history) is not None:
        return m.violation
    store = world.nodes.get(STORE)
    projector = world.nodes.get(PROJECTOR)
    assert isinstance(store, Store) and isinstance(projector, Projector)
    store_log = [(e.position, e.stream, e.version, e.event_id) for e in store.log]
    projection = None
    limit = int(world.config["poll_limit"])
    if limit > 0 and projector.polls >= limit and projector.position < store.durable:
        # bounded polling (exhaustive runs) promises no convergence: a store restart forgets
        # its subscribers, and a projector out of polls never subscribes again. What it did
        # apply is still checked, event by event, by the monitor ("projected").
        pass
    elif store.durable == len(store.log):
        projection = (projector.position, dict(projector.views))
    return check_final(m, store_log, projection)


def snapshot_replay(world: World) -> CheckResult | None:
    """For every aggregate: loading it from its latest snapshot plus the tail gives the same
    state as replaying its whole stream (with the aggregate's own code), and as the spec."""
    store = world.nodes.get(STORE)
    assert isinstance(store, Store)
    m = monitor_of(world)
    zero = world.bug == "replay-from-zero"
    for name in sorted(store.streams):
        events = [store.log[p - 1] for p in store.streams[name]]
        full, version = aggregates.fold(name, None, 0, events)
        snap = store.snapshots.get(name)
        if snap is None:
            continue
        tail, _ = aggregates.fold(name, snap[1], snap[0], events, zero)
        if tail != full:
            known, spec = m.spec_state(name, version)
            return CheckResult.violation(
                "Replay Equivalence",
                f"Loading {name} from its snapshot at version {snap[0]} ({norm(snap[1])!r}) plus "
                f"the tail gives {norm(tail)!r}, but replaying its {version} events from the "
                f"start gives {norm(full)!r}"
                + (f" (the specification agrees with {norm(spec)!r})." if known else "."),
                stream=name,
                snapshot_version=snap[0],
            )
    return None


def linearizable(world: World) -> CheckResult:
    """The store's appends and reads, as the clients saw them, against the stream's sequential
    specification (``models/stream.py``), per stream. A malformed client history (a completion
    without its invocation) is refused here, which makes it a "well-formed history" violation."""
    from treadle.checkers.linearizability import check_history

    return check_history(world.history, "stream", timeout=10.0)


# ---------------------------------------------------------------------------- the quiet tail
# per world: the tick by which the tail's work must be done, and whether the tail was cut short
# by its step budget before that (then it is not judged)
_tails: weakref.WeakKeyDictionary[World, tuple[int, bool]] = weakref.WeakKeyDictionary()


def _clients(world: World) -> list[tuple[str, Client]]:
    nodes = ((c, world.nodes.get(c)) for c in world.client_ids)
    return [(c, n) for c, n in nodes if isinstance(n, Client)]


def _done(world: World) -> bool:
    return all(n.command is None and n.ops_left <= 0 for _, n in _clients(world))


def quiet_tail(world: World) -> None:
    """Settle (``SETTLE_STEPS`` fault-free steps); with ``tail_commands``, give each client that
    many more commands once the faults stop, and run on until every client is done or the
    bound passes (the projector polls forever: the tail ends by time or when done). Scripted
    workloads (exhaustive runs) and clients without a timeout get no tail."""
    config = world.config
    if (
        int(config["tail_commands"]) <= 0
        or int(config["client_timeout"]) <= 0
        or str(config["script"]).strip()
    ):
        world.settle(SETTLE_STEPS)
        return

    def more_work(w: World) -> None:
        left = max((n.ops_left + (n.command is not None) for _, n in _clients(w)), default=0)
        commands = left + int(w.config["tail_commands"])
        _tails[w] = (w.now + commands * command_bound(w.config), False)
        for cid, _ in _clients(w):
            w.set_timer(cid, "tail", 1)

    world.settle(SETTLE_STEPS, on_quiet=more_work)
    deadline, _ = _tails[world]
    budget = 50 * (deadline - world.now) + 1000  # a safety bound
    while world.now < deadline and not _done(world):
        if budget <= 0:
            _tails[world] = (deadline, True)
            break
        if not world.step():
            break  # nothing can happen any more
        budget -= 1


def progress(world: World) -> CheckResult | None:
    """Progress after faults stop (None when the run had no tail, or it was cut short)."""
    tail = _tails.get(world)
    if tail is None or tail[1] or world.settled_at is None:
        return None
    work = {
        cid: (
            n.command[1] if n.command else None,
            n.command[0] if n.command else None,
            n.ops_left,
        )
        for cid, n in _clients(world)
    }
    timeout = int(world.config["client_timeout"])
    return check_progress(
        world.history,
        world.settled_at,
        world.now,
        timeout if timeout >= round_trip(world.config) else None,
        work,
        command_bound(world.config),
    )


def _node_summary(nid: str, node: Any) -> tuple[Any, ...] | None:
    if isinstance(node, Store):
        snaps = node.snapshots
        streams = tuple(
            sorted(
                (name, len(positions), snaps[name][0] if name in snaps else -1)
                for name, positions in node.streams.items()
            )
        )
        return ("store", streams, len(node.log), node.durable, bool(node.outbox))
    if isinstance(node, Projector):
        return ("projector", node.position)
    if isinstance(node, Client):
        if node.command is None:
            return ("client", None, None, -1, 0, 0)
        stream = node.command[0]
        cached = node.cache.get(stream)
        return (
            "client",
            type(node.op).__name__ if node.op is not None else None,
            stream,
            cached[0] if cached is not None else -1,
            node.conflicts,
            node.tries,
        )
    return None


def _stream_relations(summaries: dict[str, Any], world: World) -> list[Any]:
    """Per stream: how far its snapshot is behind its version (none, level, behind by less than
    ``snapshot_every``, or more); the store: unsynced events or not, replies held for the
    group commit; the projection's lag behind the durable log (0, 1, 2+, or the projector
    down); per client with a command: its step, its cached version of the stream against the
    store's (none, stale, level), conflicts and retries so far. Relations, not numbers."""
    store = summaries.get(STORE)
    out: list[Any] = []
    versions: dict[str, int] = {}
    every = int(world.config["snapshot_every"])
    if store is not None:
        _, streams, log_len, durable, held = store
        for name, version, snap in streams:
            versions[name] = version
            if snap < 0:
                rel = "none"
            elif snap >= version:
                rel = "level"
            else:
                rel = "behind" if version - snap < every else "lagging"
            out.append(("stream", rel, min(version, 3) if snap < 0 else None))
        out.append(("store", log_len > durable, held))
        proj = summaries.get(PROJECTOR)
        lag = None if proj is None else min(max(durable - proj[1], -1), 2)
        out.append(("projection", lag))
    else:
        out.append(("store", "down"))
    for nid in world.client_ids:
        c = summaries.get(nid)
        if c is None or c[1] is None and c[2] is None:
            continue
        _, step, stream, cached, conflicts, tries = c
        have = versions.get(stream, 0) if store is not None else None
        if cached < 0:
            rel = "none"
        elif have is None:
            rel = "store down"
        else:
            rel = "level" if cached == have else ("stale" if cached < have else "ahead")
        out.append(("client", step, rel, min(conflicts, 2), min(tries, 3)))
    return list(dict.fromkeys(out))


system = System(
    name="eventstore",
    description=(
        "event store with optimistic concurrency, idempotent appends, a group-committed WAL, "
        "aggregates with snapshots, and a projection fed by a subscription"
    ),
    build=build,
    bugs={
        "non-atomic-version-check": (
            "the store checks the expected version in one step and writes in a later one: two "
            "appends with the same expected version both win (breaks Optimistic Concurrency: a "
            "lost update)"
        ),
        "snapshot-off-by-one": (
            "an aggregate's snapshot of version v holds the state after version v-1 (breaks "
            "Snapshot Consistency / Replay Equivalence)"
        ),
        "no-fsync": (
            "the store acknowledges an append before the group commit makes it durable; a crash "
            "loses it (breaks Durability)"
        ),
        "replay-from-zero": (
            "loading an aggregate from a snapshot or cache re-applies all events from version 1 "
            "on top of it (breaks Replay Equivalence)"
        ),
    },
    config_keys=[
        integer("clients", 3, "clients"),
        integer("ops_per_client", 5, "commands per client"),
        integer("accounts", 2, "account streams", maximum=26),
        integer("users", 1, "user streams"),
        integer("snapshot_every", 3, "a snapshot every this many versions", minimum=1),
        integer("think_max", 3, "a client pauses up to this many ticks"),
        # workload narrowing (exhaustive runs): fixed commands per client, in order
        # ("deposit,withdraw"), and think=False starts each command at once (no think timer)
        text(
            "script",
            "",
            "fixed commands per client",
            comma_list(*aggregates.ACCOUNT_COMMANDS, *aggregates.USER_COMMANDS),
        ),
        flag("think", True, "clients pause before each command"),
        integer("max_amount", 5, "largest deposit or withdrawal", minimum=1),
        integer("client_timeout", 20, "ticks a client waits, 0 = wait for the reply"),
        integer("retries", 2, "client retries after a timeout"),
        integer("conflict_retries", 3, "client retries after a version conflict"),
        integer("group_commit_delay", 2, "ticks the store gathers appends before a flush", 1),
        integer("poll_interval", 10, "ticks between the projector's polls", minimum=1),
        integer("poll_limit", 0, "the projector's polls, 0 = unbounded"),
        # traces saved before the key existed had no tail commands (legacy 0): they replay as
        # they were recorded
        integer(
            "tail_commands",
            1,
            "commands per client once the faults stop, judged for progress, 0 = none",
            legacy=0,
        ),
    ],
    config_rules=[
        Rule(
            ("accounts", "users"),
            lambda c: c["accounts"] + c["users"] >= 1,
            "accounts + users >= 1",
        )
    ],
    defaults={
        "max_down": 1,
        "crash_rate": 0.01,
        "restart_rate": 0.1,
        "drop_rate": 0.02,
        "duplicate_rate": 0.02,
        "torn_writes": True,
        # the store and the projector may be cut apart for a while: the projector re-subscribes
        # periodically, which repairs what a partition lost (like message loss, but for longer)
        "partition_rate": 0.01,
        "heal_rate": 0.05,
    },
    invariants=[store_invariants],
    final_checks=[settled_log_and_projection, snapshot_replay, progress],
    history_checks=[linearizable],
    sometimes=declared_sometimes("treadle.impl.eventstore.store"),
    coverage=PerNode(_node_summary, _stream_relations),
    settle_steps=SETTLE_STEPS,
    settle=quiet_tail,
    steps=300,
    # the shrinker may try fewer clients, operations, accounts and users
    shrink_config={"clients": 1, "ops_per_client": 1, "accounts": 1, "users": 0},
    version="2",
    # The smallest workload that reaches the single-client bugs: one client deposits once
    # (two events, a snapshot at version 2), at most one crash. Asynchronous world (every
    # pending event enabled, no due times in states, DPOR applies); no client timeouts (a
    # reliable network); the projector polls once. non-atomic-version-check needs two
    # concurrent appends: add --config clients=2 --config crash_rate=0.
    exhaustive={
        "clients": 1,
        "script": "deposit",
        "think": False,
        "client_timeout": 0,
        "accounts": 1,
        "users": 0,
        "snapshot_every": 2,
        "max_amount": 1,
        "poll_limit": 1,
        "tail_commands": 0,
        "crash_rate": 0.01,
        "max_crashes": 1,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "partition_rate": 0.0,  # the random default allows partitions; this small search does not
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
    },
    symmetric=[["c1", "c2", "c3"]],
)
