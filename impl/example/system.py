"""Binding of the example primary-backup register: nodes, clients, checks, seeded bug."""

from __future__ import annotations

from typing import Any

from treadle.checkers.result import CheckResult
from treadle.impl.example.node import Client, Server

from treadle.config import comma_list, flag, integer, text
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers = {f"n{i}": Server for i in range(1, config["servers"] + 1)}
    ops, timeout = config["ops_per_client"], config["client_timeout"]
    script = tuple(f.strip() for f in config["script"].split(",") if f.strip())
    bad = [f for f in script if f not in ("read", "write", "cas")]
    if bad:
        raise ValueError(f"config script: unknown operation {bad[0]!r} (read, write, cas)")
    value_range, think = int(config["value_range"]), bool(config["think"])
    clients = {
        f"c{i}": (lambda: Client(ops, timeout, 2, script, value_range, think))
        for i in range(1, config["clients"] + 1)
    }
    return Cluster(servers=servers, clients=clients)


def linearizable(world: World) -> CheckResult:
    from treadle.checkers.linearizability import check_history

    return check_history(world.history, "cas-register", timeout=10.0)


system = System(
    name="example",
    description="primary-backup register with retrying clients (the engine's own example)",
    build=build,
    bugs={
        "stale-read": "backups answer reads from their own, possibly lagging, copy: a read can miss an acknowledged write (breaks linearizability)"
    },
    config_keys=[
        integer("servers", 3, "servers; n1 is the primary", minimum=1, maximum=15),
        integer("clients", 3, "clients"),
        integer("ops_per_client", 4, "operations per client"),
        integer("client_timeout", 25, "ticks a client waits before retrying", minimum=1),
        # workload narrowing (exhaustive runs): fixed operations per client ("write,read"),
        # values drawn in 0..value_range, think=False invokes at once (no think timer)
        text("script", "", "fixed operations per client", comma_list("read", "write", "cas")),
        integer("value_range", 4, "values written are drawn in 0..value_range"),
        flag("think", True, "clients pause before each operation"),
    ],
    defaults={
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "partition_rate": 0.01,
        "drop_rate": 0.02,
        "duplicate_rate": 0.02,
    },
    history_checks=[linearizable],
    # the shrinker may try fewer clients, operations and servers
    shrink_config={"clients": 1, "ops_per_client": 1, "servers": 1},
    steps=400,
    # The smallest workload that reaches stale-read: one client writes, then reads (a read at
    # the backup outside the write's quorum misses the acknowledged write). Asynchronous world
    # (every pending event enabled, no due times in states, DPOR applies), each node's timer
    # (client timeout, primary resend) fires at most once, no faults.
    exhaustive={
        "clients": 1,
        "script": "write,read",
        "value_range": 0,
        "think": False,
        "crash_rate": 0.0,
        "partition_rate": 0.0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "window": 1_000_000_000,
        "latency_min": 1,
        "latency_max": 1,
        "timer_drift": 0,
        "max_timer_fires": 1,
    },
    symmetric=[["c1", "c2", "c3"]],
)
