"""Service mesh properties, judged on a recorded history.

* **No Routing To Down Instances**: no attempt is dispatched to an instance that the registry
  marked down (unhealthy or deregistered) more than ``health_interval`` ticks earlier, and has
  not marked up since. The interval is what a proxy may lag the registry by.
* **Retry Budget**: at each retry of a proxy, the retries it started in the last
  ``retry_budget_window`` ticks (this one included) are at most ``retry_budget_ratio`` percent
  of the requests it received in that window, plus ``retry_budget_min``.
* **Request Timeout**: no request outlives its timeout: no attempt is dispatched and no
  success is answered after the request's deadline (invoke time + ``timeout``), and every
  request ends (ok, fail or info) at most ``timer_slack`` ticks after its deadline (how late the
  runtime may notice a timer).
* **Breaker Sees Every Attempt**: what each admitted call experienced reaches its breaker:
  an admitted, dispatched call gets its outcome before its request retries or ends; the
  attempt a request retries after (an error reply or a timeout) is a failure, and the attempt
  that answers a request with success is a success. (Conformance replays the outcomes the
  breaker was told; this checks it was told what happened.)
* **Attempt Limit**: no request is tried more than ``max_attempts`` times (the proxy's
  ``proxy-config``): no retry or dispatch names a later attempt, and no request is dispatched
  more often.
* **Events Agree With The Registry** (:func:`registry_agrees`, at the end of a run, given the
  registry's member table): its instance events say what its table holds.
* **Weighted Routing**: for each route (a path and its weights), the number of requests sent to
  each upstream is consistent with a binomial distribution of the configured weight: the exact
  two-sided binomial test must not reject at ``ALPHA`` (a correct router fails this check with
  probability below ``ALPHA`` per upstream and run).

Events read (``time`` everywhere; JSON-able; the mesh records exactly these):

* ``{"type": "registry-config", "health_interval": 10, ...}``
* ``{"type": "instance-down" | "instance-up", "instance": "a-v1-2", "reason": "..."}``
* ``{"type": "proxy-config", "node": "p1", "retry_budget_ratio": 20, "retry_budget_min": 3,
  "retry_budget_window": 100, "timer_slack": 3}``
* ``{"type": "invoke" | "ok" | "fail" | "info", "process": "p1", "f": "request",
  "request": "p1-7", "timeout": 36}`` (the ``timeout`` on the invoke)
* ``{"type": "route", "node": "p1", "request": "p1-7", "path": "/a", "upstream": "a-v1",
  "weights": {"a-v1": 90, "a-v2": 10}}``
* ``{"type": "dispatch", "node": "p1", "request": "p1-7", "attempt": 2, "instance": "a-v1-2"}``
* ``{"type": "retry", "node": "p1", "request": "p1-7", "attempt": 2}``
* ``{"type": "breaker-call" | "breaker-outcome", "node": "p1", "call": "p1-7.2", ...}``
  (:mod:`checkers.breaker`; the call of attempt 2 of request p1-7 is ``p1-7.2``)
"""

from __future__ import annotations

import math
from typing import Any

from treadle.checkers.breaker import BreakerMonitor, ordinal
from treadle.checkers.result import CheckResult

DOWN = "No Routing To Down Instances"
BUDGET = "Retry Budget"
TIMEOUT = "Request Timeout"
WEIGHTS = "Weighted Routing"
ATTEMPTS = "Breaker Sees Every Attempt"
LIMIT = "Attempt Limit"

#: false-alarm probability of the weighted-routing test, per upstream and run
ALPHA = 1e-9


class MeshMonitor:
    """Incremental check of the per-event mesh properties (all but Weighted Routing)."""

    def __init__(self) -> None:
        self.health_interval: int | None = None
        self.down_since: dict[str, tuple[int, str]] = {}  # instance -> (time, reason)
        self.proxies: dict[str, dict[str, Any]] = {}
        self.arrivals: dict[str, list[int]] = {}
        self.retries: dict[str, list[int]] = {}
        self.open: dict[str, tuple[int, int, str]] = {}  # request -> (start, deadline, process)
        self.earliest_expiry: float = math.inf
        self.violation: CheckResult | None = None
        self.now = 0
        # (node, call) -> admitted; (node, request) -> (call, time) dispatched, outcome pending;
        # (node, call) -> the outcome the breaker was told
        self.admitted: set[tuple[Any, Any]] = set()
        self.in_flight: dict[tuple[Any, Any], tuple[str, int]] = {}
        self.told: dict[tuple[Any, Any], str] = {}
        self.told_at: dict[tuple[Any, Any], int] = {}
        self.last_call: dict[tuple[Any, Any], str] = {}  # (node, request) -> its latest call
        self.dispatched: dict[tuple[Any, Any], int] = {}  # (node, request) -> dispatches

    def feed(self, ev: dict[str, Any]) -> CheckResult | None:
        if self.violation is not None:
            return self.violation
        t = ev.get("type")
        now = ev.get("time", self.now)
        self.now = now
        if t == "dispatch":
            return self._limit(ev, now) or self._dispatch(ev, now) or self._attempt_sent(ev, now)
        if t == "retry":
            return self._limit(ev, now) or self._attempt_retried(ev, now) or self._retry(ev, now)
        if t in ("invoke", "ok", "fail", "info") and ev.get("f") == "request":
            return self._attempt_ended(ev, t, now) or self._client(ev, t, now)
        if t == "breaker-call":
            if ev.get("decision") == "admit":
                self.admitted.add((ev.get("node"), ev.get("call")))
            return None
        if t == "breaker-outcome":
            node, call = ev.get("node"), ev.get("call")
            self.told[(node, call)] = str(ev.get("outcome"))
            self.told_at[(node, call)] = now
            for key, (pending, _) in list(self.in_flight.items()):
                if key[0] == node and pending == call:
                    del self.in_flight[key]
            return None
        if t == "instance-down":
            self.down_since[ev["instance"]] = (now, ev.get("reason", "marked down"))
        elif t == "instance-up":
            self.down_since.pop(ev["instance"], None)
        elif t == "registry-config":
            self.health_interval = int(ev["health_interval"])
        elif t == "proxy-config":
            self.proxies[ev.get("node", "")] = ev
        return None

    def tick(self, now: int) -> CheckResult | None:
        """Time has advanced to ``now``: does some request outlive its timeout?"""
        self.now = now
        if self.violation is not None or now <= self.earliest_expiry:
            return self.violation
        for rid, (start, deadline, proc) in sorted(self.open.items()):
            slack = int(self.proxies.get(proc, {}).get("timer_slack", 0))
            if now > deadline + slack:
                return self._set(
                    TIMEOUT,
                    f"request {rid} of {proc} started at t={start} with a deadline of "
                    f"t={deadline}, and is still not answered at t={now}: its proxy should have "
                    f"ended it by t={deadline + slack} (deadline + timer slack {slack}).",
                    request=rid,
                )
        self.earliest_expiry = min(
            (
                d + int(self.proxies.get(p, {}).get("timer_slack", 0))
                for _, d, p in self.open.values()
            ),
            default=math.inf,
        )
        return None

    def _set(self, prop: str, message: str, **details: Any) -> CheckResult:
        self.violation = CheckResult.violation(prop, message, **details)
        return self.violation

    def _limit(self, ev: dict[str, Any], now: int) -> CheckResult | None:
        """Attempt Limit, at a retry or a dispatch."""
        node, rid, t = ev.get("node"), ev.get("request"), ev.get("type")
        limit = self.proxies.get(node, {}).get("max_attempts")
        tries = ev.get("attempt")
        if t == "dispatch":
            n = self.dispatched[(node, rid)] = self.dispatched.get((node, rid), 0) + 1
            tries = max(n, tries) if isinstance(tries, int) else n
        if not isinstance(limit, int) or not isinstance(tries, int) or tries <= limit:
            return None
        what = "retried it as" if t == "retry" else "dispatched"
        return self._set(
            LIMIT,
            f"at t={now} {node} {what} attempt {tries} of request {rid}, but its proxy tries a "
            f"request at most max_attempts = {limit} times.",
            request=rid,
            attempt=tries,
            max_attempts=limit,
        )

    def _dispatch(self, ev: dict[str, Any], now: int) -> CheckResult | None:
        inst, rid = ev.get("instance"), ev.get("request")
        who = ev.get("node", "a proxy")
        down = self.down_since.get(inst)
        if down is not None and self.health_interval is not None:
            since, reason = down
            if now - since > self.health_interval:
                return self._set(
                    DOWN,
                    f"at t={now} {who} sent request {rid} (attempt {ev.get('attempt')}) to "
                    f"{inst}, which the registry had marked down at t={since} ({reason}); with a "
                    f"health-check interval of {self.health_interval} the proxy should have "
                    f"stopped routing to it by t={since + self.health_interval}.",
                    instance=inst,
                    request=rid,
                    down_since=since,
                )
        opened = self.open.get(rid)
        if opened is not None and now > opened[1]:
            return self._set(
                TIMEOUT,
                f"at t={now} {who} dispatched attempt {ev.get('attempt')} of request {rid} to "
                f"{inst}, past the request's deadline t={opened[1]} (started at t={opened[0]}).",
                request=rid,
            )
        return None

    # ------------------------------------------------------------------ attempts
    def _attempt_sent(self, ev: dict[str, Any], now: int) -> CheckResult | None:
        node, rid = ev.get("node"), ev.get("request")
        call = f"{rid}.{ev.get('attempt')}"
        if (node, call) not in self.admitted:
            return None  # a history without breaker calls: nothing to compare
        earlier = self.in_flight.get((node, rid))
        if earlier is not None:
            return self._untold(node, rid, earlier, now, f"attempt {ev.get('attempt')} was sent")
        self.in_flight[(node, rid)] = (call, now)
        self.last_call[(node, rid)] = call
        return None

    def _untold(
        self, node: Any, rid: Any, pending: tuple[str, int], now: int, then: str
    ) -> CheckResult:
        call, sent = pending
        return self._set(
            ATTEMPTS,
            f"at t={now} {then} for request {rid} at {node}, but the outcome of its call {call} "
            f"(admitted and sent at t={sent}) never reached the breaker: every admitted call "
            "must be reported, a timeout as a failure, or the breaker counts only what went "
            "well.",
            request=rid,
            call=call,
        )

    def _attempt_retried(self, ev: dict[str, Any], now: int) -> CheckResult | None:
        node, rid = ev.get("node"), ev.get("request")
        pending = self.in_flight.get((node, rid))
        if pending is not None:
            return self._untold(node, rid, pending, now, f"a retry (attempt {ev.get('attempt')})")
        try:
            previous = f"{rid}.{int(ev.get('attempt', 0)) - 1}"
        except (TypeError, ValueError):
            return None
        outcome = self.told.get((node, previous))
        if outcome is not None and outcome != "failure":
            return self._set(
                ATTEMPTS,
                f"at t={now} {node} retried request {rid}, so its call {previous} failed (an "
                f"error reply or a timeout), but the breaker was told it was a {outcome}.",
                request=rid,
                call=previous,
            )
        return None

    def _attempt_ended(self, ev: dict[str, Any], t: str, now: int) -> CheckResult | None:
        node, rid = ev.get("process"), ev.get("request")
        if t == "invoke":
            return None
        pending = self.in_flight.pop((node, rid), None)
        if pending is not None:
            return self._untold(node, rid, pending, now, f"the request ended ({t})")
        last = self.last_call.pop((node, rid), None)
        opened = self.open.get(rid)
        if t == "info" and last is not None and opened is not None:
            # a request that times out ends its attempt as a failure; its last call may be a
            # success only if that reply came in after the deadline (then the request expires)
            at = self.told_at.get((node, last))
            if self.told.get((node, last)) == "success" and at is not None and at <= opened[1]:
                return self._set(
                    ATTEMPTS,
                    f"at t={now} {node} gave request {rid} up (info) at its deadline "
                    f"t={opened[1]}, but the breaker was told at t={at}, before the deadline, "
                    f"that its call {last} succeeded: a success would have answered the request.",
                    request=rid,
                    call=last,
                )
        if t == "ok" and ev.get("attempts") is not None:
            call = f"{rid}.{ev.get('attempts')}"
            outcome = self.told.get((node, call))
            if outcome is not None and outcome != "success":
                return self._set(
                    ATTEMPTS,
                    f"at t={now} {node} answered request {rid} with the success of its call "
                    f"{call}, but the breaker was told that call was a {outcome}.",
                    request=rid,
                    call=call,
                )
        return None

    def _retry(self, ev: dict[str, Any], now: int) -> CheckResult | None:
        proc = ev.get("node", "")
        cfg = self.proxies.get(proc)
        if cfg is None:
            return None
        window = int(cfg["retry_budget_window"])
        ratio, minimum = int(cfg["retry_budget_ratio"]), int(cfg["retry_budget_min"])
        horizon = now - window
        arr = self.arrivals.setdefault(proc, [])
        ret = self.retries.setdefault(proc, [])
        ret.append(now)
        while arr and arr[0] <= horizon:
            arr.pop(0)
        while ret and ret[0] <= horizon:
            ret.pop(0)
        if len(ret) * 100 > ratio * len(arr) + 100 * minimum:
            allowed = (ratio * len(arr) + 100 * minimum) // 100
            return self._set(
                BUDGET,
                f"at t={now} {proc} retried request {ev.get('request')} (attempt "
                f"{ev.get('attempt')}): that is its {ordinal(len(ret))} retry in the last {window} "
                f"ticks, against {len(arr)} requests; the budget allows {ratio}% of the requests "
                f"plus {minimum}, i.e. {allowed} retries.",
                request=ev.get("request"),
                retries=len(ret),
                requests=len(arr),
            )
        return None

    def _client(self, ev: dict[str, Any], t: str, now: int) -> CheckResult | None:
        rid = ev.get("request")
        proc = ev.get("process", "")
        if t == "invoke":
            self.arrivals.setdefault(proc, []).append(now)
            timeout = ev.get("timeout")
            if timeout is not None:
                deadline = now + int(timeout)
                self.open[rid] = (now, deadline, proc)
                slack = int(self.proxies.get(proc, {}).get("timer_slack", 0))
                self.earliest_expiry = min(self.earliest_expiry, deadline + slack)
            return None
        opened = self.open.pop(rid, None)
        if opened is None:
            return None
        start, deadline, _ = opened
        if t == "ok" and now > deadline:
            return self._set(
                TIMEOUT,
                f"at t={now} {proc} answered request {rid} with success, past its deadline "
                f"t={deadline} (started at t={start}): a request must not outlive its timeout.",
                request=rid,
            )
        return self.tick(now)

    def result(self) -> CheckResult:
        if self.violation is not None:
            return self.violation
        return CheckResult.passed(
            f"{DOWN}, {BUDGET}, {TIMEOUT}, {ATTEMPTS}",
            "every dispatch, retry and request end is within bounds",
        )


# ---------------------------------------------------------------------------------------- weights
REGISTRY_EVENTS = "Events Agree With The Registry"


def registry_agrees(events: list[dict[str, Any]], members: dict[str, str]) -> CheckResult | None:
    """**Events Agree With The Registry**: the registry's ``instance-up`` / ``instance-down``
    events (what No Routing To Down Instances judges by) say what its member table holds:
    at the end of a run an instance is up in ``members`` (instance -> status) exactly when its
    last event is ``instance-up``. A registry that changes an instance's status without saying
    so would leave the routing check judging by a membership nobody had."""
    said: dict[str, str] = {}
    for ev in events:
        if ev.get("type") in ("instance-up", "instance-down") and "instance" in ev:
            said[str(ev["instance"])] = ev["type"]
    for inst in sorted(set(members) | set(said)):
        up = members.get(inst) == "up"
        if up != (said.get(inst) == "instance-up"):
            last = said.get(inst)
            return CheckResult.violation(
                REGISTRY_EVENTS,
                f"the registry's member table has {inst} "
                f"{members.get(inst, 'unknown')!r}, but its events "
                + (f"last said {last}" if last else "never said it was up or down")
                + ": every change of an instance's health must be recorded.",
                instance=inst,
            )
    return None


def _binom_tail_p(n: int, k: int, p: float) -> float:
    """Exact two-sided binomial p-value (doubling the smaller tail)."""
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(n + 1)
    ]
    pmf = [math.exp(x) for x in logs]
    lower = sum(pmf[: k + 1])
    upper = sum(pmf[k:])
    return min(1.0, 2.0 * min(lower, upper))


def weighted_routing(events: list[dict[str, Any]], alpha: float = ALPHA) -> CheckResult:
    groups: dict[tuple[str, tuple[tuple[str, int], ...]], dict[str, int]] = {}
    for ev in events:
        if ev.get("type") != "route":
            continue
        weights = tuple(sorted((str(k), int(v)) for k, v in (ev.get("weights") or {}).items()))
        counts = groups.setdefault((ev.get("path", ""), weights), {})
        up = ev.get("upstream")
        counts[up] = counts.get(up, 0) + 1
    worst: tuple[float, str] | None = None
    for (path, weights), counts in sorted(groups.items()):
        total_w = sum(w for _, w in weights)
        n = sum(counts.values())
        for up, k in sorted(counts.items()):
            if up not in dict(weights):
                return CheckResult.violation(
                    WEIGHTS,
                    f"{k} request(s) on {path} went to {up}, which has no weight in the route "
                    f"{dict(weights)}.",
                    path=path,
                    upstream=up,
                )
        for up, w in weights:
            k = counts.get(up, 0)
            p = w / total_w if total_w else 0.0
            pval = _binom_tail_p(n, k, p)
            if pval < alpha:
                return CheckResult.violation(
                    WEIGHTS,
                    f"{k} of {n} requests on {path} went to {up}, whose weight is {w} of "
                    f"{total_w} ({100 * p:.0f}%, expected {n * p:.1f}); a weighted router does this "
                    f"with probability {pval:.2g} (exact two-sided binomial test, alpha {alpha:g}).",
                    path=path,
                    upstream=up,
                    n=n,
                    k=k,
                    p=p,
                    p_value=pval,
                )
            if worst is None or pval < worst[0]:
                worst = (pval, f"{path}->{up} {k}/{n}")
    msg = "no routes recorded" if worst is None else f"smallest p-value {worst[0]:.3g} ({worst[1]})"
    return CheckResult.passed(WEIGHTS, msg)


def check_history(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """All mesh properties and breaker conformance on a recorded history."""
    mesh = MeshMonitor()
    breakers = BreakerMonitor()
    last = 0
    for ev in events:
        now = ev.get("time", last)
        last = now
        r = breakers.feed(ev) or mesh.tick(now) or mesh.feed(ev)
        if r is not None:
            return r
    w = weighted_routing(events)
    if w.violated:
        return w
    return CheckResult.passed(
        "service mesh",
        f"{DOWN}, {BUDGET}, {TIMEOUT}, {ATTEMPTS}, {WEIGHTS} and breaker conformance hold over "
        f"{len(events)} events ({w.message}).",
    )
