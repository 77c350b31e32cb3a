"""Binding of two-phase commit: a TM, ``rms`` resource managers, Consistency, the seeded bug."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult
from treadle.impl.twophase.node import TM, ResourceManager, TransactionManager

from treadle.config import integer
from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers: dict[str, Any] = {TM: TransactionManager}
    for i in range(1, int(config["rms"]) + 1):
        servers[f"rm{i}"] = ResourceManager
    return Cluster(servers=servers)


def rm_phases(world: World) -> dict[str, str]:
    return {
        nid: node.phase  # type: ignore[union-attr]
        for nid, node in world.nodes.items()
        if nid != TM and node is not None
    }


def consistency(world: World) -> CheckResult | None:
    """TLA+ TCConsistent: no RM has committed while another has aborted."""
    phases = rm_phases(world)
    committed = sorted(r for r, p in phases.items() if p == "committed")
    aborted = sorted(r for r, p in phases.items() if p == "aborted")
    if committed and aborted:
        tm = world.nodes.get(TM)
        told = sorted(tm.prepared) if tm is not None else []  # type: ignore[union-attr]
        return CheckResult.violation(
            "Consistency",
            f"resource manager(s) {', '.join(committed)} committed while "
            f"{', '.join(aborted)} aborted the same transaction; the TM committed having heard "
            f"'prepared' from only {', '.join(told) or 'nobody'} of {len(phases)} resource managers.",
            committed=committed,
            aborted=aborted,
            tm_prepared=told,
        )
    return None


def all_decided(world: World) -> bool:
    return all(p in ("committed", "aborted") for p in rm_phases(world).values())


def _summary(nid: str, node: Any) -> Any:
    if nid == TM:
        return (node.phase, len(node.prepared))
    return node.phase


def _phases(summaries: dict[str, Any], world: World) -> tuple[Any, ...]:
    """For the guided strategy: the TM's phase and how many RMs it has heard prepared, and how
    many RMs are in each phase (a new count is progress towards a commit)."""
    head = summaries.get(TM)
    phases = sorted(p for nid, p in summaries.items() if nid != TM and p is not None)
    return ((head, tuple(phases)),)


coverage = PerNode(_summary, _phases)


def rms_symmetric(n: int) -> list[list[str]]:
    return [[f"rm{i}" for i in range(1, n + 1)]]


system = System(
    name="twophase",
    description="two-phase commit: a transaction manager and resource managers (Lamport's TwoPhase, Stateright's 2PC)",
    build=build,
    bugs={
        "commit-without-all-prepared": "the TM may commit once one resource manager has prepared, while another chose to abort (breaks Consistency)",
    },
    config_keys=[integer("rms", 5, "resource managers", minimum=1, maximum=9)],
    # An asynchronous world (every pending timer and message enabled, as in TLA+): with the
    # default window of 2 ticks the TM's abort timer, due at once, is nearly always taken before
    # five RMs have prepared, and random runs never reached a commit (the sometimes-assertion
    # "twophase: the TM commits" showed it): Consistency was checked on aborts only.
    defaults={"window": 1_000_000_000},
    invariants=[consistency],
    # the shrinker may try fewer resource managers
    shrink_config={"rms": 1},
    steps=100,
    exhaustive={
        "rms": 5,
        "window": 1_000_000_000,  # asynchronous: every pending event is enabled
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
    },
    # up to 9 RMs declared; the ones not in the run are ignored
    symmetric=rms_symmetric(9),
    sometimes=declared_sometimes("treadle.impl.twophase.node"),
    coverage=coverage,
)
#: the checks read node states only, never the history: it is left out of fingerprints and
#: history appends are not dependencies for DPOR
system.checks_read_history = False  # type: ignore[attr-defined]
#: bounded liveness: every RM eventually decides
system.liveness = [("Eventually Decided", all_decided)]  # type: ignore[attr-defined]
