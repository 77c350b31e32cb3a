"""Binding of the service mesh: instances, registry, proxies, checks and seeded bugs."""

from __future__ import annotations

import weakref
from typing import Any

from checkers.breaker import BreakerMonitor
from checkers.mesh import MeshMonitor, weighted_routing
from checkers.result import CheckResult
from impl.mesh.node import REGISTRY, Instance, Proxy, Registry
from treadle.system import Cluster, System
from treadle.world import World


def build(config: dict[str, Any], bug: str | None) -> Cluster:
    servers: dict[str, Any] = {REGISTRY: Registry}
    for cluster, count in sorted(config["instances"].items()):
        for i in range(1, int(count) + 1):
            servers[f"{cluster}-{i}"] = Instance
    clients = {f"p{i}": Proxy for i in range(1, int(config["clients"]) + 1)}
    return Cluster(servers=servers, clients=clients)


class _Monitors:
    __slots__ = ("cursor", "breakers", "mesh")

    def __init__(self) -> None:
        self.cursor = 0
        self.breakers = BreakerMonitor()
        self.mesh = MeshMonitor()


_monitors: weakref.WeakKeyDictionary[World, _Monitors] = weakref.WeakKeyDictionary()


def mesh_invariants(world: World) -> CheckResult | None:
    """Breaker conformance and the per-event mesh properties, fed incrementally with the events
    recorded since the last step."""
    m = _monitors.get(world)
    if m is None:
        m = _monitors[world] = _Monitors()
    history = world.history
    end = len(history)
    i = m.cursor
    while i < end:
        ev = history[i]
        i += 1
        r = m.breakers.feed(ev) or m.mesh.feed(ev)
        if r is not None:
            m.cursor = i
            return r
    m.cursor = end
    return m.mesh.tick(world.now)


def weights_honoured(world: World) -> CheckResult:
    return weighted_routing(world.history)


system = System(
    name="mesh",
    description=(
        "service mesh: registry with health checks, sidecar proxies with weighted routes (a 90/10 "
        "canary), load balancing, retries under a budget, timeouts and circuit breakers"
    ),
    build=build,
    bugs={
        "seed-breaker": (
            "the breaker never resets its failure count on a success while Closed (scattered "
            "failures open it), admits unlimited trial calls while HalfOpen and closes on the "
            "first trial success (breaks Circuit Breaker Conformance)"
        ),
        "unlimited-half-open": (
            "HalfOpen admits every call instead of at most K trials (breaks Circuit Breaker "
            "Conformance)"
        ),
        "open-forever": (
            "the Open -> HalfOpen transition is checked when an outcome is recorded while Open, "
            "which never happens since Open admits nothing: the breaker stays Open (breaks "
            "Circuit Breaker Conformance)"
        ),
        "retry-storm": "retries ignore the retry budget (breaks Retry Budget)",
    },
    defaults={
        "clients": 2,
        "instances": {"a-v1": 2, "a-v2": 1, "b": 2},
        "routes": {"/a": {"a-v1": 90, "a-v2": 10}, "/b": {"b": 100}},
        "lb": {"a-v1": "p2c", "a-v2": "round-robin", "b": "least-requests"},
        "slow": {"a-v1-2": 6},
        "error_rate": {"b-2": 0.5, "a-v2-1": 0.2},
        "requests_per_client": 30,
        "arrival_gap": [1, 4],
        "warmup": 8,
        "request_timeout": 36,
        "attempt_timeout": 10,
        "max_attempts": 3,
        "backoff_base": 2,
        "retry_budget_ratio": 20,
        "retry_budget_min": 3,
        "retry_budget_window": 100,
        "breaker_failures": 3,
        "breaker_window": 6,
        "breaker_rate": 50,
        "breaker_min_calls": 6,
        "breaker_reset": 20,
        "breaker_half_open": 2,
        "breaker_successes": 2,
        "health_interval": 10,
        "health_misses": 2,
        "churn_rate": 0.1,
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "partition_rate": 0.01,
        "heal_rate": 0.05,
    },
    invariants=[mesh_invariants],
    final_checks=[weights_honoured],
    steps=600,
    version="1",
    exhaustive={
        "clients": 1,
        "instances": {"a-v1": 1, "a-v2": 1},
        "routes": {"/a": {"a-v1": 50, "a-v2": 50}},
        "lb": {},
        "slow": {},
        "error_rate": {"a-v2-1": 0.5},
        "requests_per_client": 2,
        "arrival_gap": [8, 8],  # the 2nd request comes after the breaker's reset timeout
        "health_interval": 0,  # no health checks: the world goes quiet once the workload ends
        "churn_rate": 0.0,
        "crash_rate": 0.0,
        "partition_rate": 0.0,
        "latency_max": 1,
        "timer_drift": 0,
        "breaker_failures": 1,
        "breaker_window": 0,
        "breaker_half_open": 1,
        "breaker_successes": 1,
        "breaker_reset": 5,
        "max_attempts": 3,
        "retry_budget_ratio": 100,  # one retry per request, so a third attempt breaks the budget
        "retry_budget_min": 0,
    },
    symmetric=[],
)
