"""A small user-style system for the scale tests (workers, campaigns, triage): clients add
amounts to one counter server, retrying when no acknowledgement comes.

Two bugs live in the *code*, switched by module constants, so a test can "fix" one the way a
developer would (the seed database must then report its failures as fixed):

* ``DEDUP = False``: the server applies every ``add`` it receives, so a retry (after a lost
  acknowledgement) or a duplicated message applies an operation twice (Exactly Once).
* ``DURABLE = False``: the total lives in memory only; a crash and restart forget it, so the
  final total misses acknowledged additions (Durability).
* ``RESTART_RAISES = True`` (off by default): a restarted server raises, as a careless fix might
  make it do: a new way to fail (a handler exception), for triage to report as new.

``kill_marker`` (config): a path; a *worker process* that builds a run while the file exists
removes it and kills itself with SIGKILL: a worker that dies mid-run, once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

from treadle.checkers.result import CheckResult

from treadle.config import integer, text
from treadle.node import Context, Node
from treadle.system import Cluster, System
from treadle.world import World

DEDUP = False
DURABLE = False
RESTART_RAISES = False


class Counter(Node):
    def __init__(self) -> None:
        self.total = 0
        self.applied: set[tuple[str, int]] = set()

    def state(self) -> Any:
        return (self.total, tuple(sorted(self.applied)))

    def on_start(self, ctx: Context) -> None:
        if DURABLE:
            self.total = ctx.storage.get("total", 0)
            self.applied = set(ctx.storage.get("applied", ()))

    def on_restart(self, ctx: Context) -> None:
        if RESTART_RAISES:
            raise RuntimeError("cannot read the saved total")
        self.on_start(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        _, op, amount = msg
        key = (src, op)
        if not (DEDUP and key in self.applied):
            self.total += amount
            self.applied.add(key)
            ctx.record("applied", client=src, op=op, amount=amount, total=self.total)
            if DURABLE:
                ctx.storage.put("total", self.total)
                ctx.storage.put("applied", tuple(sorted(self.applied)))
                ctx.storage.sync()
        ctx.send(src, ("ack", op))


class Adder(Node):
    def __init__(self, ops: int) -> None:
        self.ops_left = ops
        self.op = 0
        self.amount = 0
        self.waiting = False

    def state(self) -> Any:
        return (self.ops_left, self.op, self.amount, self.waiting)

    def on_start(self, ctx: Context) -> None:
        self.next_op(ctx)

    def next_op(self, ctx: Context) -> None:
        self.waiting = False
        if self.ops_left == 0:
            return
        self.ops_left -= 1
        self.op += 1
        self.amount = ctx.random.randint(1, 5)
        ctx.invoke("add", self.amount)
        self.send(ctx)

    def send(self, ctx: Context) -> None:
        self.waiting = True
        ctx.send("s1", ("add", self.op, self.amount))
        ctx.set_timer("retry", 12)

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.waiting:
            self.send(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg[1] == self.op and self.waiting:
            ctx.cancel_timer("retry")
            ctx.ok("add", self.amount)
            self.next_op(ctx)


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    marker = config["kill_marker"]
    if marker and multiprocessing.parent_process() is not None and os.path.exists(marker):
        try:
            os.remove(marker)
        except FileNotFoundError:
            pass  # another worker took it
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    ops = config["ops"]
    clients = {f"c{i}": (lambda: Adder(ops)) for i in range(1, config["clients"] + 1)}
    return Cluster(servers={"s1": Counter}, clients=clients)


def exactly_once(world: World) -> CheckResult | None:
    seen: dict[tuple[str, int], int] = {}
    for ev in world.history:
        if ev["type"] == "applied":
            key = (ev["client"], ev["op"])
            if key in seen:
                return CheckResult.violation(
                    "Exactly Once",
                    f"operation {ev['op']} of {ev['client']} was applied twice (events "
                    f"{seen[key]} and {ev['index']})",
                    client=ev["client"],
                    op=ev["op"],
                    events=[seen[key], ev["index"]],
                )
            seen[key] = ev["index"]
    return None


def durability(world: World) -> CheckResult | None:
    acked = sum(ev["value"] for ev in world.history if ev["type"] == "ok")
    node = world.nodes.get("s1")
    total = getattr(node, "total", None)
    if total is not None and total < acked:
        return CheckResult.violation(
            "Durability",
            f"the counter holds {total} but acknowledged additions sum to {acked}",
            node="s1",
            total=total,
            acknowledged=acked,
        )
    return None


system = System(
    name="tally",
    description="a counter server with retrying clients (scale tests)",
    build=build,
    config_keys=[
        integer("clients", 2, "clients", minimum=1, maximum=5),
        integer("ops", 4, "additions per client"),
        text("kill_marker", "", "tests: a worker that sees this file kills itself, once"),
    ],
    defaults={
        "drop_rate": 0.05,
        "duplicate_rate": 0.02,
        "crash_rate": 0.02,
        "restart_rate": 0.2,
        "max_down": 1,
    },
    final_checks=[exactly_once, durability],
    settle_steps=200,
    steps=150,
)
