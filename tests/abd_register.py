"""A user's own system, written the way a newcomer would: an ABD register (Attiya, Bar-Noy and
Dolev, "Sharing memory robustly in message-passing systems", JACM 1995), with seeded bugs that
the harness must find, save, replay and (for nondeterminism) refuse to trust.

Servers hold (timestamp, value). A write asks a majority for their timestamps, picks a larger one
(counter + 1, client id) and stores it at a majority; a read asks a majority for their pairs,
takes the largest and writes it back to a majority before returning (the write-back is what makes
reads linearizable).

Bugs:
* ``one-ack-write``: a write returns after one server stored it, not a majority: a later read
  from a majority that misses that server returns an older value. Only the linearizability check
  on the history catches it.
* ``raise-in-handler``: a server raises once it has stored ``raise_after_puts`` values (a bug
  in the node's code, reported as the "handler exception" property).
* ``set-order``: clients send to servers in the iteration order of a ``set`` of their names,
  which depends on the interpreter's hash seed: the same choices give another run in another
  process (nondeterminism, which ``--check-determinism`` must catch).

Also here: ``ticker``, one node whose timer fires every tick and whose handler raises at the
``raise_at``-th firing: the exception happens at exactly that step.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.linearizability import check_history
from treadle.checkers.result import CheckResult

from treadle.config import at_most, integer
from treadle.node import Context, Node
from treadle.system import Cluster, System
from treadle.world import World


class Server(Node):
    def __init__(self, raise_after_puts: int | None) -> None:
        self.ts: tuple[int, str] = (0, "")
        self.value: Any = None
        self.puts = 0
        self.raise_after_puts = raise_after_puts

    def state(self) -> Any:
        return (self.ts, self.value, self.puts)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind, op = msg[0], msg[1]
        if kind == "get":
            ctx.send(src, ("got", op, self.ts, self.value))
        elif kind == "put":
            _, _, ts, value = msg
            if ts > self.ts:
                self.ts, self.value = ts, value
            self.puts += 1
            if self.raise_after_puts is not None and self.puts >= self.raise_after_puts:
                raise RuntimeError(f"store full after {self.puts} puts")
            ctx.send(src, ("put-ok", op))


class Client(Node):
    def __init__(
        self, me: str, servers: tuple[str, ...], ops: int, write_quorum: int, set_order: bool
    ):
        self.me = me
        self.servers = servers
        self.ops_left = ops
        self.n_ops = ops
        self.write_quorum = write_quorum
        self.set_order = set_order
        self.op = 0
        self.phase = "idle"  # idle | query | store
        self.f = ""
        self.arg: Any = None
        self.replies: dict[str, Any] = {}
        self.result: Any = None

    def state(self) -> Any:
        return (
            self.ops_left,
            self.op,
            self.phase,
            self.f,
            self.arg,
            tuple(sorted(self.replies.items())),
            self.result,
        )

    def majority(self) -> int:
        return len(self.servers) // 2 + 1

    def send_all(self, ctx: Context, msg: Any) -> None:
        targets = set(self.servers) if self.set_order else self.servers  # the bug: set order
        for s in targets:
            ctx.send(s, msg)

    def on_start(self, ctx: Context) -> None:
        self.next_op(ctx)

    def next_op(self, ctx: Context) -> None:
        if self.ops_left == 0:
            self.phase = "idle"
            return
        self.ops_left -= 1
        self.op += 1
        k = self.n_ops - self.ops_left
        self.f = "write" if k % 2 == 1 else "read"
        self.arg = int(self.me[1:]) * 10 + k if self.f == "write" else None
        ctx.invoke(self.f, self.arg)
        self.phase, self.replies = "query", {}
        self.send_all(ctx, ("get", self.op))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg[1] != self.op:
            return  # a late reply to an earlier phase or operation
        if self.phase == "query" and msg[0] == "got":
            self.replies[src] = (msg[2], msg[3])
            if len(self.replies) < self.majority():
                return
            ts, value = max(self.replies.values())
            if self.f == "write":
                ts, value = (ts[0] + 1, self.me), self.arg
            self.result = value
            self.phase, self.replies = "store", {}
            self.send_all(ctx, ("put", self.op, ts, value))
        elif self.phase == "store" and msg[0] == "put-ok":
            self.replies[src] = True
            need = self.write_quorum if self.f == "write" else self.majority()
            if len(self.replies) < need:
                return
            ctx.ok(self.f, self.arg if self.f == "write" else self.result)
            self.next_op(ctx)


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers = tuple(f"n{i}" for i in range(1, config["servers"] + 1))
    raise_after = config["raise_after_puts"] if bug == "raise-in-handler" else None
    quorum = 1 if bug == "one-ack-write" else len(servers) // 2 + 1
    set_order = bug == "set-order"
    clients = {
        f"c{i}": (
            lambda me=f"c{i}": Client(me, servers, config["ops"], quorum, set_order)  # type: ignore[misc]
        )
        for i in range(1, config["clients"] + 1)
    }
    return Cluster(
        servers={s: (lambda: Server(raise_after)) for s in servers},
        clients=clients,
    )


def linearizable(world: World) -> CheckResult:
    return check_history(world.history, "register", timeout=10.0)


system = System(
    name="abd",
    description="an ABD register, as a user would write it (tests)",
    build=build,
    bugs={
        "one-ack-write": "writes return after one store, not a majority (breaks linearizability)",
        "raise-in-handler": "a server raises after raise_after_puts stores",
        "set-order": "clients send in set iteration order (depends on the hash seed)",
    },
    # a user system declares its keys as the project's do: type, range, default
    config_keys=[
        integer("servers", 3, "servers", minimum=1, maximum=9),
        integer("clients", 2, "clients", minimum=1, maximum=9),
        integer("ops", 8, "operations per client (write, read, write, ...)"),
        integer("raise_after_puts", 3, "raise-in-handler: stores before it raises", minimum=1),
        integer("min_ops", 0, "(a cross-key rule's example) fewest operations per client"),
    ],
    config_rules=[at_most("min_ops", "ops")],
    # a slow, reordering network: latencies 1..6 ticks, events within 5 ticks in any order
    defaults={"latency_max": 6, "window": 5},
    history_checks=[linearizable],
    steps=200,
    exhaustive={
        "clients": 1,
        "ops": 2,
        "raise_after_puts": 2,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
    },
    symmetric=[["n1", "n2", "n3"]],
)


class Ticker(Node):
    def __init__(self, raise_at: int) -> None:
        self.ticks = 0
        self.raise_at = raise_at

    def state(self) -> Any:
        return self.ticks

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.ticks += 1
        ctx.record("tick", n=self.ticks)
        if self.ticks == self.raise_at:
            self.explode()
        ctx.set_timer("tick", 1)

    def explode(self) -> None:
        raise ZeroDivisionError(f"tick {self.ticks} divided by zero")


ticker = System(
    name="ticker",
    description="one node whose timer handler raises at tick raise_at (tests)",
    build=lambda c, b: Cluster(servers={"n1": lambda: Ticker(c["raise_at"])}),
    defaults={"timer_drift": 0},
    config_keys=[integer("raise_at", 12, "the tick whose handler raises", minimum=1)],
    steps=100,
)
