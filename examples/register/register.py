"""A replicated register: the system of treadle's tutorial (docs/tutorial.md).

Three replicas each hold a (version, value) pair; versions are (counter, writer) pairs, ordered
first by counter. Clients read and write through majority quorums, as in Attiya, Bar-Noy and
Dolev's algorithm (JACM 1995):

* write(v): ask a majority for their versions, pick (highest counter + 1, me), store (version,
  v) at a majority, then return;
* read(): ask a majority for their pairs, take the highest, store it back at a majority (the
  write-back), then return its value.

The write-back is what makes reads linearizable: once a read returns a value, a majority holds
it, so every later read sees it (or something newer).

Seeded bug ``read-one``: to save round trips, a read asks only the client's home replica and
returns its value. A write that a majority stored but the home replica has not seen yet is
missed: a read that starts after the write returned gives the older value, which the
linearizability check on the client history catches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle import CheckResult, Cluster, Context, Node, System, World, check_history, integer

Version = tuple[int, str]  # (counter, writer): compared counter first


# ---------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Query:
    op: int


@dataclass(frozen=True)
class QueryReply:
    op: int
    version: Version
    value: Any


@dataclass(frozen=True)
class Store:
    op: int
    version: Version
    value: Any


@dataclass(frozen=True)
class StoreAck:
    op: int


# ---------------------------------------------------------------------------------------- replica
class Replica(Node):
    """Holds one (version, value) pair, durably: it survives a crash."""

    def on_start(self, ctx: Context) -> None:
        self.version: Version = ctx.storage.get("version", (0, ""))
        self.value: Any = ctx.storage.get("value")

    def state(self) -> Any:  # what exhaustive search tells states apart by
        return (self.version, self.value)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Query):
            ctx.send(src, QueryReply(msg.op, self.version, self.value))
        elif isinstance(msg, Store):
            if msg.version > self.version:
                self.version, self.value = msg.version, msg.value
                ctx.storage.put("version", self.version)
                ctx.storage.put("value", self.value)
            ctx.send(src, StoreAck(msg.op))


# ---------------------------------------------------------------------------------------- client
class Client(Node):
    """Runs ``ops`` operations, one at a time: write, read, write, read, ... Each phase resends
    its message every ``resend`` ticks until a majority answered (messages may be lost)."""

    def __init__(self, me: str, ops: int, read_one: bool) -> None:
        self.me = me
        self.ops_left = ops
        self.read_one = read_one
        self.op = 0
        self.phase = "idle"  # idle | query | store
        self.f = ""
        self.arg: Any = None
        self.replies: dict[str, Any] = {}
        self.stored: tuple[Version, Any] = ((0, ""), None)

    def state(self) -> Any:
        return (self.ops_left, self.op, self.phase, tuple(sorted(self.replies.items())))

    def on_start(self, ctx: Context) -> None:
        self.majority = len(ctx.servers) // 2 + 1
        self.home = ctx.servers[int(self.me[1:]) % len(ctx.servers)]
        self.next_op(ctx)

    def next_op(self, ctx: Context) -> None:
        if self.ops_left == 0:
            self.phase = "idle"
            ctx.cancel_timer("resend")
            return
        self.ops_left -= 1
        self.op += 1
        self.f = "write" if self.op % 2 == 1 else "read"
        self.arg = int(self.me[1:]) * 100 + self.op if self.f == "write" else None
        ctx.invoke(self.f, self.arg)
        self.start_phase(ctx, "query")

    def start_phase(self, ctx: Context, phase: str) -> None:
        self.phase, self.replies = phase, {}
        self.send_phase(ctx)

    def targets(self, ctx: Context) -> tuple[str, ...]:
        if self.read_one and self.f == "read":
            return (self.home,)  # the seeded bug: no quorum
        return ctx.servers

    def send_phase(self, ctx: Context) -> None:
        for replica in self.targets(ctx):
            if replica not in self.replies:
                if self.phase == "query":
                    ctx.send(replica, Query(self.op))
                else:
                    ctx.send(replica, Store(self.op, *self.stored))
        ctx.set_timer("resend", ctx.config["resend"])

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.phase != "idle":
            self.send_phase(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg.op != self.op:
            return  # a late reply to an earlier operation
        if self.phase == "query" and isinstance(msg, QueryReply):
            self.replies[src] = (msg.version, msg.value)
            if len(self.replies) < min(self.majority, len(self.targets(ctx))):
                return
            version, value = max(self.replies.values())
            if self.f == "write":
                self.stored = ((version[0] + 1, self.me), self.arg)
            else:
                self.stored = (version, value)
                if self.read_one:  # the seeded bug: one answer is enough, no write-back
                    self.finish(ctx)
                    return
            self.start_phase(ctx, "store")
        elif self.phase == "store" and isinstance(msg, StoreAck):
            self.replies[src] = True
            if len(self.replies) >= self.majority:
                self.finish(ctx)

    def finish(self, ctx: Context) -> None:
        ctx.ok(self.f, self.arg if self.f == "write" else self.stored[1])
        self.next_op(ctx)


# ---------------------------------------------------------------------------------------- system
def build(config: dict[str, Any], bug: str | None) -> Cluster:
    replicas = {f"n{i}": Replica for i in range(1, config["replicas"] + 1)}
    read_one = bug == "read-one"
    clients = {
        f"c{i}": (lambda me=f"c{i}": Client(me, config["ops"], read_one))
        for i in range(1, config["clients"] + 1)
    }
    return Cluster(servers=replicas, clients=clients)


def linearizable(world: World) -> CheckResult:
    """The clients' history must be linearizable against a register that starts empty."""
    return check_history(world.history, "register", timeout=10.0)


system = System(
    name="register",
    description="a majority-quorum replicated register (the tutorial's system)",
    build=build,
    bugs={"read-one": "reads ask only the client's home replica: a read can miss a finished write"},
    config_keys=[
        integer("replicas", 3, "replicas", minimum=1, maximum=9),
        integer("clients", 2, "clients", minimum=1, maximum=9),
        integer("ops", 4, "operations per client: write, read, write, ...", minimum=1),
        integer("resend", 20, "ticks a client waits before resending a phase", minimum=1),
    ],
    # messages take 1 to 5 ticks and events due within 4 ticks happen in any order; a few
    # messages are lost or duplicated, replicas crash and restart
    defaults={
        "latency_max": 5,
        "window": 4,
        "drop_rate": 0.02,
        "duplicate_rate": 0.02,
        "crash_rate": 0.01,
    },
    final_checks=[linearizable],
    steps=300,
    # the shrinker may try fewer clients and operations
    shrink_config={"clients": 1, "ops": 1},
    # exhaustive search: every interleaving of one client's write and read, no faults, an
    # asynchronous network (every pending event enabled)
    exhaustive={
        "clients": 1,
        "ops": 2,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "crash_rate": 0.0,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "max_timer_fires": 0,
    },
    symmetric=[["n1", "n2", "n3"]],
)
