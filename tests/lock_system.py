"""A test system where coverage matters: a combination lock that opens only after a run of
correct draws in a row (a bug behind a sequence of rare states). One node ticks; at every tick it
draws a digit in [0, 4); the right digit moves it one stage on, a wrong one sends it back to the
start. Reaching the last stage is the "bug" (a violation of the property ``lock stays shut``).
A random walk needs ``stages`` right draws in a row (1 in 4**stages per attempt); a strategy that
keeps the runs that reached a new stage and resumes them gets there stage by stage.

Every stage is a sometimes-assertion; ``never`` is one no run can reach (a vacuous premise)."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult

from treadle.config import integer
from treadle.node import Context, Node
from treadle.system import Cluster, System
from treadle.world import World

COMBINATION = (3, 1, 2, 0, 2, 3, 1, 0, 2, 1)


class Lock(Node):
    def __init__(self) -> None:
        self.stage = 0

    def state(self) -> Any:
        return self.stage

    def on_start(self, ctx: Context) -> None:
        self.stages = int(ctx.config["stages"])
        ctx.set_timer("tick", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        digit = ctx.random.randrange(4)
        if digit == COMBINATION[self.stage]:
            self.stage += 1
            ctx.sometimes(f"lock: stage {self.stage}")
        else:
            self.stage = 0
        ctx.sometimes("lock: never", self.stage > self.stages)
        if self.stage < self.stages:
            ctx.set_timer("tick", 1)


def shut(world: World) -> CheckResult | None:
    node = world.nodes.get("lock")
    if node is not None and node.stage >= node.stages:  # type: ignore[attr-defined]
        return CheckResult.violation("lock stays shut", f"opened at step {world.step_count}")
    return None


system = System(
    name="lock",
    description="a combination lock: a bug behind a sequence of rare states",
    build=lambda config, bug: Cluster(servers={"lock": Lock}),
    config_keys=[integer("stages", 8, "right draws in a row that open the lock", maximum=10)],
    defaults={"timer_drift": 0, "restart_rate": 0.0, "heal_rate": 0.0},
    invariants=[shut],
    steps=40,
    sometimes=[f"lock: stage {k}" for k in range(1, 11)] + ["lock: never"],
)
