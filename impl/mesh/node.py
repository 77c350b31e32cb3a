"""A service mesh: service instances, a registry with health checks, and sidecar proxies.

* **Instances** (servers ``<cluster>-<n>``, e.g. ``a-v1-2``) answer calls. Per configuration an
  instance is *slow* (its replies are delayed by a timer) or *failing* (answers an error with a
  given probability); the world crashes and partitions them. An instance registers with the
  registry when it starts, re-announces itself when nobody has pinged it for a while, and with
  ``churn_rate`` leaves the mesh for a while (deregisters, stops answering health checks, keeps
  draining calls) and comes back.
* **The registry** (server ``registry``) pings every registered instance each
  ``health_interval`` ticks; an instance that missed ``health_misses`` pings in a row is marked
  down, and one that answers again is marked up. Every change is pushed to all proxies as a
  numbered endpoint list (the number is durable, so proxies ignore reordered or old lists).
* **Proxies** (the clients ``p1``, ``p2`` ...) are the sidecars: each receives its application's
  requests (an open-loop arrival process) and routes each by path to an upstream cluster with
  weighted rules (``/a``: 90% ``a-v1``, 10% ``a-v2``, a canary), asks the cluster's circuit
  breaker, picks a healthy instance by the cluster's load-balancing policy (round robin, least
  requests, power of two choices), enforces a per-attempt and a per-request timeout, and
  retries failed attempts with exponential backoff and jitter while a retry budget allows
  (retries in the last ``retry_budget_window`` ticks at most ``retry_budget_ratio`` percent of
  the requests in that window, plus ``retry_budget_min``).

Every decision that the checkers judge is recorded: ``route``, ``breaker-call``,
``breaker-outcome``, ``dispatch``, ``retry``, ``instance-up``/``instance-down`` and the client
operations ``request`` (invoke, then ok, fail or info).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from typing import Any

from treadle.impl.mesh.breaker import Breaker

from treadle.node import Context, Node

REGISTRY = "registry"


# ---------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Register:
    cluster: str


@dataclass(frozen=True)
class Deregister:
    cluster: str


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class Endpoints:
    seq: int
    up: tuple[tuple[str, str], ...]  # (instance, cluster), sorted


@dataclass(frozen=True)
class Call:
    request: str
    attempt: int
    path: str


@dataclass(frozen=True)
class Reply:
    request: str
    attempt: int
    ok: bool


def cluster_of(instance: str) -> str:
    return instance.rsplit("-", 1)[0]


def chance(ctx: Context, rate: float) -> bool:
    """True with probability ``rate``, drawn as a small fraction (0.2 -> 1 in 5), so that an
    exhaustive search branches a few ways rather than 1024."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    p = Fraction(rate).limit_denominator(20)
    return ctx.random.randrange(p.denominator) < p.numerator


def breaker_config(config: dict[str, Any]) -> dict[str, int]:
    return {
        "failure_threshold": int(config["breaker_failures"]),
        "window_size": int(config["breaker_window"]),
        "failure_rate": int(config["breaker_rate"]),
        "min_calls": int(config["breaker_min_calls"]),
        "reset_timeout": int(config["breaker_reset"]),
        "half_open_max": int(config["breaker_half_open"]),
        "success_threshold": int(config["breaker_successes"]),
    }


# ---------------------------------------------------------------------------------------- instance
class Instance(Node):
    def __init__(self) -> None:
        self.left = False  # deregistered for a while (churn)
        self.pinged = False  # pinged since the last announce tick
        self.replies: dict[str, tuple[str, Reply]] = {}  # timer name -> (dst, delayed reply)
        self.n = 0

    def state(self) -> Any:
        return (self.left, self.pinged, tuple(sorted(self.replies.items())), self.n)

    def on_start(self, ctx: Context) -> None:
        ctx.send(REGISTRY, Register(cluster_of(ctx.id)))
        interval = int(ctx.config["health_interval"])
        if interval > 0:  # 0: no health checking (small configurations for exhaustive search)
            ctx.set_timer("announce", 3 * interval)
            if float(ctx.config["churn_rate"]) > 0:
                ctx.set_timer("churn", 4 * interval)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Call):
            ok = not chance(ctx, float(ctx.config["error_rate"].get(ctx.id, 0.0)))
            reply = Reply(msg.request, msg.attempt, ok)
            delay = int(ctx.config["slow"].get(ctx.id, 0))
            if delay > 0:
                self.n += 1
                name = f"reply-{self.n}"
                self.replies[name] = (src, reply)
                ctx.set_timer(name, delay)
            else:
                ctx.send(src, reply)
        elif isinstance(msg, Ping):
            if not self.left:
                self.pinged = True
                ctx.send(src, Pong())

    def on_timer(self, ctx: Context, name: str) -> None:
        interval = int(ctx.config["health_interval"])
        if name in self.replies:
            dst, reply = self.replies.pop(name)
            ctx.send(dst, reply)
        elif name == "announce":
            # nobody pinged us for a while: the registry may have lost our registration
            if not self.left and not self.pinged:
                ctx.send(REGISTRY, Register(cluster_of(ctx.id)))
            self.pinged = False
            ctx.set_timer("announce", 3 * interval)
        elif name == "churn":
            if not self.left and chance(ctx, float(ctx.config["churn_rate"])):
                self.left = True
                ctx.send(REGISTRY, Deregister(cluster_of(ctx.id)))
                ctx.set_timer("rejoin", ctx.random.randint(2 * interval, 4 * interval))
            ctx.set_timer("churn", 4 * interval)
        elif name == "rejoin":
            self.left = False
            ctx.send(REGISTRY, Register(cluster_of(ctx.id)))


# ---------------------------------------------------------------------------------------- registry
class Registry(Node):
    """Membership and health. The member table and the push number are durable."""

    def __init__(self) -> None:
        self.members: dict[str, tuple[str, str]] = {}  # instance -> (cluster, up|down|left)
        self.missed: dict[str, int] = {}
        self.answered: set[str] = set()
        self.seq = 0
        self.pinged = False  # a round of pings went out since the (re)start

    def state(self) -> Any:
        return (
            tuple(sorted(self.members.items())),
            tuple(sorted(self.missed.items())),
            tuple(sorted(self.answered)),
            self.seq,
            self.pinged,
        )

    def on_start(self, ctx: Context) -> None:
        ctx.record(
            "registry-config",
            health_interval=int(ctx.config["health_interval"]),
            health_misses=int(ctx.config["health_misses"]),
        )
        self.members = dict(ctx.storage.get("members", ()))
        self.seq = ctx.storage.get("seq", 0)
        if int(ctx.config["health_interval"]) > 0:
            ctx.set_timer("health", int(ctx.config["health_interval"]))

    def on_restart(self, ctx: Context) -> None:
        self.members = dict(ctx.storage.get("members", ()))
        self.seq = ctx.storage.get("seq", 0)
        self.push(ctx)  # proxies may have missed nothing, but a fresh list costs little
        if int(ctx.config["health_interval"]) > 0:
            ctx.set_timer("health", int(ctx.config["health_interval"]))

    def mark(self, ctx: Context, inst: str, cluster: str, status: str, reason: str) -> None:
        old = self.members.get(inst, (cluster, "new"))[1]
        self.members[inst] = (cluster, status)
        if status == "up":
            self.missed[inst] = 0
        ctx.storage.put("members", tuple(sorted(self.members.items())))
        if (old == "up") != (status == "up"):
            kind = "instance-up" if status == "up" else "instance-down"
            ctx.record(kind, instance=inst, upstream=cluster, reason=reason)
            self.push(ctx)

    def push(self, ctx: Context) -> None:
        self.seq += 1
        ctx.storage.put("seq", self.seq)
        up = tuple(sorted((i, c) for i, (c, s) in self.members.items() if s == "up"))
        for proxy in ctx.clients:
            ctx.send(proxy, Endpoints(self.seq, up))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Register):
            cur = self.members.get(src)
            if cur is None or cur[1] != "up":
                self.mark(ctx, src, msg.cluster, "up", "registered")
        elif isinstance(msg, Deregister):
            if src in self.members and self.members[src][1] != "left":
                self.mark(ctx, src, msg.cluster, "left", "deregistered")
        elif isinstance(msg, Pong) and src in self.members:
            self.answered.add(src)
            cluster, status = self.members[src]
            if status == "down":
                self.mark(ctx, src, cluster, "up", "answered a health check")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name != "health":
            return
        misses = int(ctx.config["health_misses"])
        for inst in sorted(self.members):
            cluster, status = self.members[inst]
            if status == "left":
                continue
            if self.pinged and inst not in self.answered:
                self.missed[inst] = self.missed.get(inst, 0) + 1
                if status == "up" and self.missed[inst] >= misses:
                    self.mark(ctx, inst, cluster, "down", f"missed {misses} health checks in a row")
            elif inst in self.answered:
                self.missed[inst] = 0
        self.pinged = True
        self.answered = set()
        for inst in sorted(self.members):
            if self.members[inst][1] != "left":
                ctx.send(inst, Ping())
        ctx.set_timer("health", int(ctx.config["health_interval"]))


# ---------------------------------------------------------------------------------------- proxy
class Request:
    """A request in flight at a proxy."""

    __slots__ = (
        "rid",
        "path",
        "deadline",
        "cluster",
        "attempt",
        "inflight",
    )

    def __init__(self, rid: str, path: str, deadline: int) -> None:
        self.rid = rid
        self.path = path
        self.deadline = deadline
        self.cluster = ""
        self.attempt = 0
        self.inflight: tuple[str, int, str] | None = None  # (call id, breaker gen, instance)

    def state(self) -> tuple[Any, ...]:
        return (self.rid, self.path, self.deadline, self.cluster, self.attempt, self.inflight)


class Proxy(Node):
    """A sidecar proxy and the application behind it (the client of the world)."""

    def __init__(self) -> None:
        self.view_seq = 0
        self.view: dict[str, str] = {}  # healthy instance -> cluster, as the registry says
        self.breakers: dict[str, Breaker] = {}
        self.rr: dict[str, int] = {}
        self.outstanding: dict[str, int] = {}
        self.requests: dict[str, Request] = {}
        self.issued = 0
        self.arrivals: list[int] = []  # request times in the budget window
        self.retries: list[int] = []  # retry times in the budget window

    def state(self) -> Any:
        return (
            self.view_seq,
            tuple(sorted(self.view.items())),
            tuple((c, b.state()) for c, b in sorted(self.breakers.items())),
            tuple(sorted(self.rr.items())),
            tuple(sorted(self.outstanding.items())),
            tuple(r.state() for _, r in sorted(self.requests.items())),
            self.issued,
            tuple(self.arrivals),
            tuple(self.retries),
        )

    # -------------------------------------------------------------- start
    def on_start(self, ctx: Context) -> None:
        c = ctx.config
        bcfg = breaker_config(c)
        ctx.record(
            "proxy-config",
            request_timeout=int(c["request_timeout"]),
            attempt_timeout=int(c["attempt_timeout"]),
            max_attempts=int(c["max_attempts"]),
            retry_budget_ratio=int(c["retry_budget_ratio"]),
            retry_budget_min=int(c["retry_budget_min"]),
            retry_budget_window=int(c["retry_budget_window"]),
            # a timer fires up to timer_drift late, and the scheduler may run events up to
            # `window` ticks past a due timer first: how late a deadline can be noticed
            timer_slack=int(c["timer_drift"]) + int(c["window"]),
            routes=c["routes"],
            lb=c["lb"],
        )
        for cluster in sorted({cl for rule in c["routes"].values() for cl in rule}):
            self.breakers[cluster] = Breaker(bcfg, ctx.bug)
            ctx.record("breaker-config", upstream=cluster, **bcfg)
        ctx.set_timer("arrive", int(c["warmup"]) + ctx.random.randint(0, 3))

    # -------------------------------------------------------------- messages
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Endpoints):
            if msg.seq > self.view_seq:
                self.view_seq = msg.seq
                self.view = dict(msg.up)
                ctx.record("view", seq=msg.seq, up=[i for i, _ in msg.up])
        elif isinstance(msg, Reply):
            req = self.requests.get(msg.request)
            if req is None or req.inflight is None or req.attempt != msg.attempt:
                return  # the attempt was already given up on
            if req.inflight[2] != src:
                return
            ctx.cancel_timer(f"attempt:{req.rid}")
            self.end_attempt(ctx, req, failed=not msg.ok)
            if ctx.now > req.deadline:
                self.expire(ctx, req)
            elif msg.ok:
                self.finish(ctx, req, "ok", served_by=src, attempts=req.attempt)
            else:
                self.maybe_retry(ctx, req, f"{src} answered an error")

    # -------------------------------------------------------------- timers
    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "arrive":
            self.arrive(ctx)
            return
        kind, _, rid = name.partition(":")
        req = self.requests.get(rid)
        if req is None:
            return
        if kind == "deadline":
            self.expire(ctx, req)
        elif kind == "attempt" and req.inflight is not None:
            inst = req.inflight[2]
            self.end_attempt(ctx, req, failed=True)
            if ctx.now >= req.deadline:
                self.expire(ctx, req)
            else:
                self.maybe_retry(ctx, req, f"{inst} did not answer in time")
        elif kind == "backoff":
            if ctx.now >= req.deadline:
                self.expire(ctx, req)
            else:
                self.attempt(ctx, req)

    def arrive(self, ctx: Context) -> None:
        c = ctx.config
        self.issued += 1
        rid = f"{ctx.id}-{self.issued}"
        path = ctx.random.choice(sorted(c["routes"]))
        timeout = int(c["request_timeout"])
        req = Request(rid, path, ctx.now + timeout)
        self.requests[rid] = req
        ctx.invoke("request", path, request=rid, timeout=timeout)
        self.arrivals.append(ctx.now)
        ctx.set_timer(f"deadline:{rid}", timeout)
        rule = c["routes"][path]
        clusters = sorted(rule)
        unit = 0
        for cl in clusters:
            unit = gcd(unit, int(rule[cl]))
        r = ctx.random.randrange(sum(int(rule[cl]) for cl in clusters) // unit)  # 90/10 -> 1 in 10
        for cl in clusters:
            r -= int(rule[cl]) // unit
            if r < 0:
                req.cluster = cl
                break
        ctx.record(
            "route",
            request=rid,
            path=path,
            upstream=req.cluster,
            weights={cl: int(rule[cl]) for cl in clusters},
        )
        self.attempt(ctx, req)
        if self.issued < int(c["requests_per_client"]):
            lo, hi = c["arrival_gap"]
            ctx.set_timer("arrive", ctx.random.randint(int(lo), int(hi)))

    # -------------------------------------------------------------- one attempt
    def attempt(self, ctx: Context, req: Request) -> None:
        req.attempt += 1
        cluster = req.cluster
        healthy = sorted(i for i, cl in self.view.items() if cl == cluster)
        if not healthy:
            self.finish(ctx, req, "fail", error=f"no healthy instance of {cluster}")
            return
        breaker = self.breakers[cluster]
        admit, change = breaker.allow(ctx.now)
        if change is not None:
            ctx.record("breaker-state", upstream=cluster, **{"from": change[0], "to": change[1]})
        ctx.sometimes(
            "mesh: a breaker admits a half-open trial call", admit and breaker.mode == "half-open"
        )
        ctx.sometimes("mesh: an open breaker rejects a call", not admit and breaker.mode == "open")
        call = f"{req.rid}.{req.attempt}"
        ctx.record(
            "breaker-call",
            upstream=cluster,
            call=call,
            decision="admit" if admit else "reject",
            state=breaker.mode,
        )
        if not admit:
            self.finish(ctx, req, "fail", error=f"circuit breaker for {cluster} is {breaker.mode}")
            return
        inst = self.pick(ctx, cluster, healthy)
        self.outstanding[inst] = self.outstanding.get(inst, 0) + 1
        req.inflight = (call, breaker.gen, inst)
        ctx.send(inst, Call(req.rid, req.attempt, req.path))
        ctx.record(
            "dispatch", request=req.rid, attempt=req.attempt, instance=inst, upstream=cluster
        )
        ctx.set_timer(
            f"attempt:{req.rid}",
            max(1, min(int(ctx.config["attempt_timeout"]), req.deadline - ctx.now)),
        )

    def pick(self, ctx: Context, cluster: str, healthy: list[str]) -> str:
        policy = ctx.config["lb"].get(cluster, "round-robin")
        if len(healthy) == 1:
            return healthy[0]
        load = self.outstanding
        if policy == "least-requests":
            least = min(load.get(i, 0) for i in healthy)
            return ctx.random.choice([i for i in healthy if load.get(i, 0) == least])
        if policy == "p2c":
            # power of two choices (Mitzenmacher 2001): two distinct random instances, the less loaded
            a = ctx.random.randrange(len(healthy))
            b = (a + 1 + ctx.random.randrange(len(healthy) - 1)) % len(healthy)
            x, y = healthy[a], healthy[b]
            return y if load.get(y, 0) < load.get(x, 0) else x
        i = self.rr.get(cluster, 0)
        self.rr[cluster] = i + 1
        return healthy[i % len(healthy)]

    def end_attempt(self, ctx: Context, req: Request, failed: bool) -> None:
        assert req.inflight is not None
        call, gen, inst = req.inflight
        req.inflight = None
        self.outstanding[inst] -= 1
        if not self.outstanding[inst]:
            del self.outstanding[inst]
        breaker = self.breakers[req.cluster]
        change = breaker.record(ctx.now, gen, failed)
        # the breaker's state machine: every transition out of half-open, and stale outcomes
        ctx.sometimes(
            "mesh: a failed trial re-opens a half-open breaker", change == ("half-open", "open")
        )
        ctx.sometimes("mesh: trials close a half-open breaker", change == ("half-open", "closed"))
        ctx.sometimes(
            "mesh: an outcome from before the last transition is ignored",
            gen != breaker.gen and change is None,
        )
        if change is not None:
            ctx.record(
                "breaker-state", upstream=req.cluster, **{"from": change[0], "to": change[1]}
            )
        ctx.record(
            "breaker-outcome",
            upstream=req.cluster,
            call=call,
            outcome="failure" if failed else "success",
            state=breaker.mode,
        )

    # -------------------------------------------------------------- retries
    def budget_allows(self, ctx: Context) -> tuple[bool, int, int]:
        c = ctx.config
        horizon = ctx.now - int(c["retry_budget_window"])
        self.arrivals = [t for t in self.arrivals if t > horizon]
        self.retries = [t for t in self.retries if t > horizon]
        n_req, n_retry = len(self.arrivals), len(self.retries)
        allowed = (n_retry + 1) * 100 <= int(c["retry_budget_ratio"]) * n_req + 100 * int(
            c["retry_budget_min"]
        )
        return allowed, n_req, n_retry

    def maybe_retry(self, ctx: Context, req: Request, why: str) -> None:
        c = ctx.config
        if req.attempt >= int(c["max_attempts"]):
            self.finish(ctx, req, "fail", error=f"{why}; gave up after {req.attempt} attempts")
            return
        allowed, n_req, n_retry = self.budget_allows(ctx)
        ctx.sometimes("mesh: the retry budget refuses a retry", not allowed)
        if not allowed and ctx.bug != "retry-storm":
            self.finish(ctx, req, "fail", error=f"{why}; retry budget exhausted")
            return
        base = int(c["backoff_base"])
        backoff = base * (1 << (req.attempt - 1)) + ctx.random.randint(0, base)
        if ctx.now + backoff >= req.deadline:
            self.finish(ctx, req, "fail", error=f"{why}; no time left to retry")
            return
        self.retries.append(ctx.now)
        ctx.record(
            "retry",
            request=req.rid,
            attempt=req.attempt + 1,
            backoff=backoff,
            requests_in_window=n_req,
            retries_in_window=n_retry + 1,
        )
        ctx.set_timer(f"backoff:{req.rid}", backoff)

    # -------------------------------------------------------------- the end of a request
    def expire(self, ctx: Context, req: Request) -> None:
        if req.inflight is not None:
            self.end_attempt(ctx, req, failed=True)
        self.finish(ctx, req, "info", error="request timeout")

    def finish(self, ctx: Context, req: Request, how: str, **fields: Any) -> None:
        if req.inflight is not None:  # never leaves a call without an outcome
            self.end_attempt(ctx, req, failed=True)
        del self.requests[req.rid]
        for t in ("deadline", "attempt", "backoff"):
            ctx.cancel_timer(f"{t}:{req.rid}")
        if how == "ok":
            ctx.ok("request", req.path, request=req.rid, **fields)
        elif how == "fail":
            ctx.fail("request", req.path, request=req.rid, **fields)
        else:
            ctx.info("request", req.path, request=req.rid, **fields)
