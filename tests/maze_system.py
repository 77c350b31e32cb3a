"""A test system where only the node code's conditions can guide a search: a maze walker that
records no events, declares no sometimes-assertions and no coverage abstraction. At every tick
it draws a direction in [0, 4); only the right one at each junction moves it on (a wrong one
takes it back to the entrance), and the junctions are separate branches of its code. Reaching
the exit is the "bug". Random walk needs every right draw in a row (1 in 4**9 per attempt);
a search that keeps the runs in which a comparison went a new way (``junction == 3`` true for
the first time) resumes them junction by junction."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult

from treadle.node import Context, Node
from treadle.system import Cluster, System
from treadle.world import World


class Walker(Node):
    def __init__(self) -> None:
        self.junction = 0
        self.out = False

    def state(self) -> Any:
        return (self.junction, self.out)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", 1)

    def on_timer(self, ctx: Context, name: str) -> None:
        d = ctx.random.randrange(4)
        j = self.junction
        if j == 0:
            self.junction = 1 if d == 2 else 0
        elif j == 1:
            self.junction = 2 if d == 0 else 0
        elif j == 2:
            self.junction = 3 if d == 3 else 0
        elif j == 3:
            self.junction = 4 if d == 1 else 0
        elif j == 4:
            self.junction = 5 if d == 1 else 0
        elif j == 5:
            self.junction = 6 if d == 3 else 0
        elif j == 6:
            self.junction = 7 if d == 0 else 0
        elif j == 7:
            self.junction = 8 if d == 2 else 0
        elif j == 8:
            self.out = d == 3
            self.junction = 0
        ctx.set_timer("tick", 1)


def shut(world: World) -> CheckResult | None:
    node = world.nodes.get("walker")
    if node is not None and node.out:  # type: ignore[attr-defined]
        return CheckResult.violation("walker stays in", f"out at step {world.step_count}")
    return None


system = System(
    name="maze",
    description="a maze walker whose only guide is which way its conditions went",
    build=lambda config, bug: Cluster(servers={"walker": Walker}),
    defaults={"timer_drift": 0, "restart_rate": 0.0, "heal_rate": 0.0, "crash_rate": 0.0},
    invariants=[shut],
    steps=40,
)
