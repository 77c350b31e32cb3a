"""Binding of the service mesh: instances, registry, proxies, checks and seeded bugs."""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import Any

from treadle.checkers.breaker import BreakerMonitor
from treadle.checkers.mesh import MeshMonitor, registry_agrees, weighted_routing
from treadle.checkers.result import CheckResult
from treadle.impl.mesh.node import REGISTRY, Instance, Proxy, Registry

from treadle.config import Rule, data, integer, rate
from treadle.coverage import PerNode, declared_sometimes
from treadle.system import Cluster, System
from treadle.world import World


def _is_count(v: Any, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _instances(v: Any) -> str | None:
    ok = isinstance(v, dict) and v and all(_is_count(n, 1) for n in v.values())
    return None if ok else 'a non-empty mapping of cluster to instance count >= 1, like {"a": 2}'


def _routes(v: Any) -> str | None:
    ok = (
        isinstance(v, dict)
        and v
        and all(
            isinstance(r, dict) and r and all(_is_count(w, 1) for w in r.values())
            for r in v.values()
        )
    )
    return None if ok else 'a mapping of path to {cluster: weight >= 1}, like {"/a": {"a": 100}}'


def _lb(v: Any) -> str | None:
    ok = isinstance(v, dict) and all(p in LB_POLICIES for p in v.values())
    return None if ok else "a mapping of cluster to " + " | ".join(LB_POLICIES)


def _mapping_of(what: str) -> Any:
    def check(v: Any) -> str | None:
        def fine(x: Any) -> bool:
            if what.startswith("an integer"):
                return _is_count(x)
            return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 1

        ok = isinstance(v, dict) and all(fine(x) for x in v.values())
        return None if ok else f"a mapping of instance to {what}"

    return check


def _gap(v: Any) -> str | None:
    ok = isinstance(v, list) and len(v) == 2 and all(_is_count(x) for x in v) and v[0] <= v[1]
    return None if ok else "[min, max] with 0 <= min <= max"


LB_POLICIES = ("round-robin", "least-requests", "p2c")


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


def events_agree_with_the_registry(world: World) -> CheckResult | None:
    """The registry's instance events against its member table (durable: read from its
    storage when it is down at the end)."""
    node = world.nodes.get(REGISTRY)
    if isinstance(node, Registry):
        table = node.members
    else:
        table = dict(world.storages[REGISTRY].get("members", ()))
    return registry_agrees(world.history, {i: status for i, (_, status) in table.items()})


def _node_summary(nid: str, node: Any) -> tuple[Any, ...] | None:
    if isinstance(node, Proxy):
        breakers = tuple(
            (cluster, b.mode, b.trials > 0, b.failures > 0)
            for cluster, b in sorted(node.breakers.items())
        )
        return ("proxy", breakers, tuple(sorted(node.view)), bool(node.requests))
    if isinstance(node, Instance):
        return ("instance", node.left)
    if isinstance(node, Registry):
        return ("registry", tuple(sorted((i, st) for i, (_, st) in node.members.items())))
    return None


@lru_cache(maxsize=16)
def _clusters(instances: tuple[tuple[str, int], ...]) -> dict[str, list[str]]:
    return {c: [f"{c}-{i}" for i in range(1, int(n) + 1)] for c, n in instances}


def _breakers_and_instances(summaries: dict[str, Any], world: World) -> tuple[Any, ...]:
    """Per proxy and upstream cluster: the breaker's state (with trials admitted, failures
    counted) against how many of the cluster's instances are up (none, some, all) and how many
    the proxy's view lists, and whether that view names an instance that is down; per instance:
    up, down or left, against what the registry says of it and how many proxies route to it.
    Relations, not counts, so that the features saturate."""
    clusters = _clusters(tuple(sorted(world.config["instances"].items())))
    up: dict[str, bool] = {}
    for members in clusters.values():
        for i in members:
            st = summaries.get(i)
            up[i] = st is not None and not st[1]
    registry = summaries.get(REGISTRY)
    status = dict(registry[1]) if registry is not None else None
    proxies = [s for s in summaries.values() if s is not None and s[0] == "proxy"]
    out: list[Any] = []

    def some(n: int, of: int) -> str:
        return "none" if n == 0 else ("all" if n == of else "some")

    for _, breakers, view, busy in proxies:
        for cluster, mode, trials, failures in breakers:
            members = clusters.get(cluster, [])
            live = sum(1 for i in members if up[i])
            listed = [i for i in members if i in view]
            out.append(
                (
                    "breaker",
                    mode,
                    trials,
                    failures,
                    some(live, len(members)),
                    some(len(listed), len(members)),
                    any(not up[i] for i in listed),
                    busy,
                )
            )
    for members in clusters.values():
        for i in members:
            st = summaries.get(i)
            state = "down" if st is None else ("left" if st[1] else "up")
            routed = sum(1 for p in proxies if i in p[2])
            out.append(
                (
                    "instance",
                    state,
                    None if status is None else status.get(i),
                    some(routed, len(proxies)) if proxies else None,
                )
            )
    return tuple(dict.fromkeys(out))


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
    config_keys=[
        integer("clients", 2, "proxies (each with its client workload)"),
        data("instances", {"a-v1": 2, "a-v2": 1, "b": 2}, "instances per cluster", _instances),
        data(
            "routes",
            {"/a": {"a-v1": 90, "a-v2": 10}, "/b": {"b": 100}},
            "weighted routes: path -> cluster -> weight",
            _routes,
        ),
        data(
            "lb",
            {"a-v1": "p2c", "a-v2": "round-robin", "b": "least-requests"},
            "load balancing per cluster",
            _lb,
        ),
        data("slow", {"a-v1-2": 6}, "extra ticks per instance", _mapping_of("an integer >= 0")),
        data(
            "error_rate",
            {"b-2": 0.5, "a-v2-1": 0.2},
            "failure probability per instance",
            _mapping_of("a number in [0, 1]"),
        ),
        integer("requests_per_client", 30, "requests per proxy"),
        data("arrival_gap", [1, 4], "ticks between requests, [min, max]", _gap),
        integer("warmup", 8, "ticks before the first request"),
        integer("request_timeout", 36, "ticks a request may take in all", minimum=1),
        integer("attempt_timeout", 10, "ticks one attempt may take", minimum=1),
        integer("max_attempts", 3, "attempts per request", minimum=1),
        integer("backoff_base", 2, "retry backoff base, ticks"),
        integer("retry_budget_ratio", 20, "retries per 100 requests", maximum=100_000),
        integer("retry_budget_min", 3, "retries always allowed per window"),
        integer("retry_budget_window", 100, "ticks of the retry budget's window", minimum=1),
        # explorations draw each trigger on or off per run (treadle.options)
        integer("breaker_failures", 3, "consecutive failures that open, 0 = off", swarm=(3, 0)),
        integer("breaker_window", 6, "calls in the failure-rate window, 0 = off", swarm=(6, 0)),
        integer("breaker_rate", 50, "failure percentage that opens", maximum=100),
        integer("breaker_min_calls", 6, "calls before the rate counts"),
        integer("breaker_reset", 20, "ticks Open waits before Half-Open", minimum=1),
        integer("breaker_half_open", 2, "trial calls admitted in Half-Open", minimum=1),
        integer("breaker_successes", 2, "successes in Half-Open that close", minimum=1),
        integer("health_interval", 10, "ticks between health checks, 0 = none"),
        integer("health_misses", 2, "missed health checks before removal", minimum=1),
        rate("churn_rate", 0.1, "probability per health check that an instance leaves"),
    ],
    config_rules=[
        Rule(
            ("routes", "instances"),
            lambda c: all(cl in c["instances"] for r in c["routes"].values() for cl in r),
            "every cluster in routes to be in instances",
        ),
    ],
    defaults={
        "crash_rate": 0.01,
        "restart_rate": 0.05,
        "partition_rate": 0.01,
        "heal_rate": 0.05,
        # duplicates are tolerated (numbered endpoint lists, replies matched to the attempt
        # in flight); loss stays off: No Routing To Down Instances assumes registry pushes
        # arrive (docs/mesh.md)
        "duplicate_rate": 0.02,
    },
    invariants=[mesh_invariants],
    final_checks=[weights_honoured, events_agree_with_the_registry],
    # the shrinker may try fewer clients and requests
    shrink_config={"clients": 1, "requests_per_client": 1},
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
        "duplicate_rate": 0.0,  # the random default's duplication would triple every delivery
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
    sometimes=declared_sometimes("treadle.impl.mesh.node"),
    coverage=PerNode(_node_summary, _breakers_and_instances),
)
