"""Binding of the example primary-backup register: nodes, clients, checks, seeded bug."""

from __future__ import annotations

from typing import Any

from checkers.result import CheckResult
from impl.example.node import Client, Server
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers = {f"n{i}": Server for i in range(1, config["servers"] + 1)}
    ops, timeout = config["ops_per_client"], config["client_timeout"]
    clients = {f"c{i}": (lambda: Client(ops, timeout)) for i in range(1, config["clients"] + 1)}
    return Cluster(servers=servers, clients=clients)


def linearizable(world: World) -> CheckResult:
    from checkers.linearizability import check_history

    return check_history(world.history, "cas-register", timeout=10.0)


system = System(
    name="example",
    description="primary-backup register with retrying clients (the engine's own example)",
    build=build,
    bugs={
        "stale-read": "backups answer reads from their own, possibly lagging, copy: a read can miss an acknowledged write (breaks linearizability)"
    },
    defaults={
        "servers": 3,
        "clients": 3,
        "ops_per_client": 4,
        "client_timeout": 25,
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "partition_rate": 0.01,
        "drop_rate": 0.02,
        "duplicate_rate": 0.02,
    },
    final_checks=[linearizable],
    steps=400,
    exhaustive={
        "clients": 2,
        "ops_per_client": 1,
        "crash_rate": 0.0,
        "partition_rate": 0.0,
        "drop_rate": 0.0,
        "duplicate_rate": 0.0,
        "latency_max": 1,
        "timer_drift": 0,
    },
    symmetric=[["c1", "c2", "c3"]],
)
