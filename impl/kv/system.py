"""Binding of the replicated kv store: nodes, clients, admin, checks, seeded bugs."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult
from treadle.impl.kv.node import ADMIN, Admin, Client, Server, mode_of

from treadle.config import at_most, choice, comma_list, flag, integer, text
from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers = {f"n{i}": Server for i in range(1, config["servers"] + 1)}
    ops, keys, timeout = config["ops_per_client"], config["keys"], config["client_timeout"]
    script = tuple(f.strip() for f in str(config["script"]).split(",") if f.strip())
    bad = [f for f in script if f not in ("get", "put", "delete")]
    if bad:
        raise ValueError(f"config script: unknown operation {bad[0]!r} (get, put, delete)")
    think = bool(config["think"])
    if config["sloppy_clock"] not in ("now", "lamport"):
        raise ValueError(f"config sloppy_clock={config['sloppy_clock']!r}: expected now or lamport")
    clients: dict[str, Any] = {
        f"c{i}": (lambda: Client(ops, keys, timeout, script, think))
        for i in range(1, config["clients"] + 1)
    }
    changes, interval, n = (
        config["membership_changes"],
        config["membership_interval"],
        config["replicas"],
    )
    clients[ADMIN] = lambda: Admin(changes, keys, interval, n)
    return Cluster(servers=servers, clients=clients)


def audit(world: World) -> CheckResult | None:
    """After settling: the admin reads every replica of every key (recorded as ``audit``
    events), then durability and convergence are judged from the history."""
    from treadle.checkers.kv import check_history

    admin = world.nodes[ADMIN]
    assert isinstance(admin, Admin)
    admin.begin_audit(world.contexts[ADMIN])
    steps = 0
    while not admin.audit_done and steps < AUDIT_STEPS and world.step():
        steps += 1
    if not admin.audit_done:
        # a stated bound, not a budget: after the fault-free settling a pending membership
        # change completes and every replica answers the admin's reads within AUDIT_STEPS steps
        # (the unmutated system needs at most 29: 1,200 runs of random, swarm and guided);
        # a protocol that cannot get there is stuck (docs/kv.md)
        stuck = (
            f"the membership change to epoch {admin.cfg.epoch} is still {admin.phase}"
            + (f", waiting for {', '.join(sorted(admin.waiting))}" if admin.waiting else "")
            if admin.phase != "idle"
            else f"the admin's reads of every replica are still {admin.audit_state}"
        )
        return CheckResult.violation(
            PROGRESS,
            f"{steps} fault-free steps after the settling and no audit: {stuck}. After faults "
            f"stop, a membership change must complete and every replica answer (bound: "
            f"{AUDIT_STEPS} steps).",
            steps=steps,
            phase=admin.phase,
            epoch=admin.cfg.epoch,
            audit=admin.audit_state,
        )
    return check_history(world.history)


#: the audit's bound, in fault-free steps after the settling (docs/kv.md: Progress)
AUDIT_STEPS = 5000
PROGRESS = "Progress after faults stop"


def linearizable(world: World) -> CheckResult | None:
    if mode_of(world.config, world.bug) != "strict":
        return None  # sloppy mode claims durability and convergence only
    from treadle.checkers.kv.linearizable import check_linearizable

    return check_linearizable(world.history, timeout=20.0)


def _cmp(n: int, quorum: int) -> int:
    """Below (-1), at (0) or beyond (1) a quorum."""
    return (n > quorum) - (n < quorum)


def _node_summary(nid: str, node: Any) -> tuple[Any, ...] | None:
    if isinstance(node, Server):
        ops = tuple(
            sorted(
                (
                    op.f,
                    op.phase,
                    _cmp(len(op.replies), node.r),
                    len({v for v, _ in op.replies.values()}) > 1,  # the replies disagree
                    _cmp(len(op.acks), node.w),
                    op.tries > 1,
                    bool(op.fallbacks),
                )
                for op in node.ops.values()
            )
        )
        versions = tuple(sorted((k, v[0]) for k, v in node.store.items()))
        return ("server", node.cfg.epoch, node.cfg.old is not None, versions, ops, bool(node.hints))
    if isinstance(node, Admin):
        return ("admin", node.cfg.epoch, node.phase, node.audit_state)
    return None


def _replica_relations(summaries: dict[str, Any], world: World) -> list[Any]:
    """Per key: how many live servers hold its newest version and how many an older one (0, 1,
    2, 3+); per coordinated operation: its phase and the shape of its quorum (replies and acks
    below, at or beyond R and W, replies that disagree, a retry, a fallback); the configuration:
    the admin's phase, how many servers are behind its epoch or in a joint configuration,
    servers down. Relations, not versions, so that the features saturate."""
    servers = [s for s in summaries.values() if s is not None and s[0] == "server"]
    out: list[Any] = []
    newest: dict[str, Any] = {}
    for s in servers:
        for key, version in s[3]:
            if key not in newest or version > newest[key]:
                newest[key] = version
    at: dict[str, int] = dict.fromkeys(newest, 0)
    behind = dict(at)
    for s in servers:
        for key, version in s[3]:
            if version == newest[key]:
                at[key] += 1
            else:
                behind[key] += 1
    for key in sorted(newest):
        out.append(("key", min(at[key], 3), min(behind[key], 3)))
    for s in servers:
        out.extend(("op", *op) for op in s[4])
    admin = summaries.get(ADMIN)
    epoch = max([s[1] for s in servers] + ([admin[1]] if admin else []), default=0)
    out.append(
        (
            "config",
            admin[2] if admin else None,
            admin[3] if admin else None,
            min(sum(1 for s in servers if s[1] < epoch), 3),
            min(sum(1 for s in servers if s[2]), 3),
            min(sum(1 for s in servers if s[5]), 3),  # servers holding hints
            len(world.down),
        )
    )
    return list(dict.fromkeys(out))


system = System(
    name="kv",
    description="replicated key-value store on a consistent-hash ring (ABD quorums or sloppy "
    "quorums, hinted handoff, read repair, anti-entropy, membership changes)",
    build=build,
    bugs={
        "lose-on-remove": "a node removed from the ring drops its data instead of handing it "
        "over: replicas of the new ring miss acknowledged writes (breaks linearizability; "
        "durability when it held the only copy)",
        "no-handoff": "writes for a replica that does not answer are acknowledged by a fallback "
        "and simply dropped, no hinted handoff (sloppy mode, which mode=auto picks for this bug: "
        "breaks durability)",
        "sloppy-claims-linearizable": "strict mode runs with R + W <= N: read and write quorums "
        "need not meet (breaks linearizability)",
        "stale-read-repair": "a read repair overwrites the replica's value even when it is "
        "newer than the repaired one (breaks linearizability and durability)",
    },
    config_keys=[
        # auto: strict, except sloppy for the no-handoff bug
        # explorations draw auto or sloppy per run (treadle.options): both modes' claims
        choice(
            "mode", "auto", ("auto", "strict", "sloppy"), "quorum mode", swarm=("auto", "sloppy")
        ),
        integer("servers", 5, "servers, ring members and spares", minimum=1, maximum=32),
        integer("members", 4, "servers on the ring at the start (the others may join)", 1),
        integer("replicas", 3, "replicas per key, N", minimum=1),
        integer("r", 0, "read quorum, 0 = the mode's default (strict: majority; sloppy: 1)"),
        integer("w", 0, "write quorum, 0 = the mode's default"),
        integer("vnodes", 8, "virtual nodes per server on the ring", minimum=1),
        integer("clients", 3, "clients"),
        integer("keys", 2, "keys the clients use", minimum=1),
        integer("ops_per_client", 6, "operations per client"),
        integer("client_timeout", 60, "ticks a client waits, 0 = wait for the reply"),
        # workload narrowing (exhaustive runs): fixed operations per client, in order
        # ("put,get"); think=False invokes each at once (no think timer)
        text("script", "", "fixed operations per client", comma_list("get", "put", "delete")),
        flag("think", True, "clients pause before each operation"),
        # exhaustive runs: no time in sloppy versions
        choice("sloppy_clock", "now", ("now", "lamport"), "clock of sloppy versions"),
        integer("op_timeout", 8, "ticks a coordinator waits for replicas", minimum=1),
        integer("op_tries", 5, "coordinator attempts per operation", minimum=1),
        integer("anti_entropy_interval", 12, "ticks between anti-entropy rounds, 0 = off"),
        integer("membership_changes", 2, "joins, leaves and replacements per run"),
        integer("membership_interval", 15, "ticks between membership changes", minimum=1),
    ],
    config_rules=[
        at_most("members", "servers"),
        at_most("replicas", "members"),
        at_most("r", "replicas"),
        at_most("w", "replicas"),
    ],
    defaults={
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "partition_rate": 0.01,
        "heal_rate": 0.05,
        "drop_rate": 0.01,
        "duplicate_rate": 0.01,
    },
    final_checks=[audit],
    history_checks=[linearizable],
    # the shrinker may try fewer clients, operations, keys, ring changes and nodes (replicas
    # before members before servers: N <= members <= servers)
    shrink_config={
        "clients": 1,
        "ops_per_client": 1,
        "keys": 1,
        "membership_changes": 0,
        "replicas": 1,
        "members": 1,
        "servers": 1,
    },
    settle_steps=400,
    steps=500,
    version="2",
    # The smallest workload that reaches sloppy-claims-linearizable: two servers, both
    # replicas (N=2, strict R=W=2; the bug's R=W=1 need not meet), one client puts then gets.
    # Asynchronous world (every pending event enabled, no due times in states, DPOR applies);
    # a reliable network, so no timer fires (client and coordinator timeouts, handoff, transfer
    # only matter with faults) and the client waits for its replies.
    exhaustive={
        "servers": 2,
        "members": 2,
        "replicas": 2,
        "clients": 1,
        "script": "put,get",
        "think": False,
        "client_timeout": 0,
        "keys": 1,
        "ops_per_client": 2,
        "membership_changes": 0,
        "anti_entropy_interval": 0,
        "crash_rate": 0.0,
        "partition_rate": 0.0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "max_timer_fires": 0,
        "sloppy_clock": "lamport",
    },
    symmetric=[["c1", "c2", "c3"]],
    sometimes=declared_sometimes("treadle.impl.kv.node"),
    coverage=PerNode(_node_summary, _replica_relations),
)
