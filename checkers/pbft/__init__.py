"""PBFT checkers (Castro & Liskov, OSDI 1999, section 4.5 "Correctness").

They judge recorded protocol events, so they work on histories from anywhere. Events used:

* ``byzantine`` {node}: that replica is faulty; its own claims are never trusted;
* ``execute`` {node, view, seq, digest, request: [client, timestamp, op] or null}: a replica
  executed a request (or the null request) at a sequence number;
* ``request`` {node, client, timestamp, op, digest}: a replica received a client request;
* client ``invoke`` {process, value (the operation), timestamp}.

Properties:

* **Agreement** (safety): no two correct replicas execute different requests at the same
  sequence number, whatever the views they executed in.
* **Validity**: a correct replica executes only requests some client issued (invoked before).
* **Execution Order**: each correct replica executes sequence numbers 1, 2, 3, ... with no gap
  and no repeat.
* **Liveness** (bounded, :func:`check_liveness`): once the network is synchronous and at most f
  replicas are faulty, every request a correct replica received is executed by at least f+1
  correct replicas (enough for the client's f+1 matching replies), unless it was superseded: a
  later request of the same client was executed by f+1 correct replicas while this one was not
  (timestamps make it impossible to execute afterwards; the client gave up on it).

What the clients saw (Result Validity, linearizability against the numbered-log service) is
:mod:`checkers.pbft.clients`; :func:`check_history` runs it after the replicas' checks.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from treadle.checkers.pbft.clients import check_clients
from treadle.checkers.result import CheckResult

from treadle.errors import MalformedEvent

AGREEMENT = "Agreement"
VALIDITY = "Validity"
ORDER = "Execution Order"
LIVENESS = "Liveness"


def _describe(req: Any, digest: str | None = None) -> str:
    if req is None:
        return "the null request"
    client, ts, op = req
    tail = f", digest {digest}" if digest else ""
    return f"request {op!r} (client {client}, timestamp {ts}{tail})"


class SafetyMonitor:
    """Incremental Agreement / Validity / Execution Order over a growing event list."""

    def __init__(self) -> None:
        self.pos = 0
        self.faulty: set[str] = set()
        self.decided: dict[int, dict[str, Any]] = {}  # seq -> first correct execution
        self.last_seq: dict[str, int] = {}
        self.issued: set[tuple[str, int, str]] = set()
        self.executions = 0

    def feed(self, events: list[dict[str, Any]]) -> CheckResult | None:
        n = len(events)
        while self.pos < n:
            ev = events[self.pos]
            self.pos += 1
            r = self.step(ev, self.pos - 1)
            if r is not None:
                return r
        return None

    def step(self, ev: dict[str, Any], pos: int = 0) -> CheckResult | None:
        kind = ev.get("type")
        if kind == "invoke":
            ts = ev.get("timestamp")
            if ts is not None:
                ts = _integer(ev, "timestamp", ts, pos)
                self.issued.add((str(ev.get("process")), ts, str(ev.get("value"))))
            return None
        if kind == "byzantine":
            self.faulty.add(ev["node"])
            return None
        if kind != "execute":
            return None
        node = ev["node"]
        if node in self.faulty:
            return None
        self.executions += 1
        seq = _integer(ev, "seq", ev.get("seq"), pos)
        req = ev.get("request")
        if req is not None:
            if not isinstance(req, (list, tuple)) or len(req) != 3:
                raise MalformedEvent(
                    pos,
                    f"event {ev.get('index', pos)} (execute): request is not [client, timestamp, operation]",
                )
            req = (req[0], _integer(ev, "request timestamp", req[1], pos), req[2])
        # Execution Order
        last = self.last_seq.get(node, 0)
        if seq != last + 1:
            what = "again" if seq <= last else f"after {last}, skipping {last + 1}..{seq - 1}"
            return CheckResult.violation(
                ORDER,
                f"Correct replica {node} executed sequence number {seq} {what} (event "
                f"{ev.get('index')}, view {ev.get('view')}): requests must execute in "
                f"sequence-number order, each number once.",
                node=node,
                seq=seq,
                previous=last,
                event=ev.get("index"),
            )
        self.last_seq[node] = seq
        # Validity
        if req is not None and (str(req[0]), int(req[1]), str(req[2])) not in self.issued:
            return CheckResult.violation(
                VALIDITY,
                f"Correct replica {node} executed {_describe(req, ev.get('digest'))} at sequence "
                f"number {seq} in view {ev.get('view')}, but no client issued that request.",
                node=node,
                seq=seq,
                request=list(req),
                event=ev.get("index"),
            )
        # Agreement
        first = self.decided.get(seq)
        if first is None:
            self.decided[seq] = {
                "node": node,
                "request": req,
                "digest": ev.get("digest"),
                "view": ev.get("view"),
                "event": ev.get("index"),
            }
            return None
        if first["request"] != req:
            return CheckResult.violation(
                AGREEMENT,
                f"Correct replicas {first['node']} and {node} executed different requests at "
                f"sequence number {seq}: {first['node']} executed "
                f"{_describe(first['request'], first['digest'])} in view {first['view']} (event "
                f"{first['event']}), {node} executed {_describe(req, ev.get('digest'))} in view "
                f"{ev.get('view')} (event {ev.get('index')}).",
                seq=seq,
                first={k: (list(v) if isinstance(v, tuple) else v) for k, v in first.items()},
                second={
                    "node": node,
                    "request": list(req) if req is not None else None,
                    "digest": ev.get("digest"),
                    "view": ev.get("view"),
                    "event": ev.get("index"),
                },
            )
        return None


def _integer(ev: dict[str, Any], what: str, value: Any, pos: int) -> int:
    """An integer field of an event (a client's timestamp, a sequence number), or the event is
    malformed: exploration reports a violation of "well-formed history", ``treadle check`` the
    file's line (a replica that recorded a client id as a timestamp must not crash the check)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MalformedEvent(
            pos,
            f"event {ev.get('index', pos)} ({ev.get('type')}): {what} {value!r} is not an integer",
        )
    try:
        return int(value)
    except ValueError:
        raise MalformedEvent(
            pos,
            f"event {ev.get('index', pos)} ({ev.get('type')}): {what} {value!r} is not an integer",
        ) from None


_monitors: weakref.WeakKeyDictionary[Any, SafetyMonitor] = weakref.WeakKeyDictionary()


def safety_invariant(world: Any) -> CheckResult | None:
    """Per-step invariant for a live world: feeds only the events recorded since last time."""
    mon = _monitors.get(world)
    if mon is None:
        mon = _monitors[world] = SafetyMonitor()
    return mon.feed(world.history)


def check_history(events: Iterable[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Agreement, Validity and Execution Order over a recorded history, then what the clients
    saw (:mod:`checkers.pbft.clients`: Result Validity, linearizability against the service)."""
    evs = list(events)
    mon = SafetyMonitor()
    r = mon.feed(evs)
    if r is not None:
        return r
    seen = check_clients(evs, timeout=timeout)
    if seen.verdict != "ok":
        return seen
    return CheckResult.passed(
        "PBFT safety",
        f"Agreement, Validity and Execution Order hold over {mon.executions} executions by "
        f"correct replicas ({len(mon.decided)} sequence numbers); the clients' accepted results "
        f"are valid and linearizable ({seen.message}).",
        executions=mon.executions,
        sequence_numbers=len(mon.decided),
        clients=seen.details,
    )


def check_liveness(events: Iterable[dict[str, Any]], f: int) -> CheckResult | None:
    """Every request a correct replica received was executed by at least f+1 correct replicas,
    unless a later request of its client was (it is superseded, so it can never execute). Only
    meaningful with at most f faulty replicas and after the network became synchronous;
    returns None (nothing to judge) when more than f replicas are faulty."""
    evs = list(events)
    faulty = {e["node"] for e in evs if e.get("type") == "byzantine"}
    if len(faulty) > f:
        return None
    received: dict[tuple[str, int, str], tuple[str, int]] = {}
    executed: dict[tuple[str, int, str], set[str]] = {}
    for e in evs:
        kind = e.get("type")
        node = e.get("node")
        if node in faulty:
            continue
        if kind == "request":
            key = (e["client"], int(e["timestamp"]), e["op"])
            received.setdefault(key, (node, e.get("index", -1)))
        elif kind == "execute" and e.get("request") is not None:
            c, t, op = e["request"]
            executed.setdefault((c, int(t), op), set()).add(node)
    # the newest timestamp of each client that f+1 correct replicas executed: a request with an
    # older timestamp that was not executed by then never will be (PBFT executes a client's
    # requests in timestamp order, each once: t must exceed the last executed timestamp), so
    # the client abandoned it (gave up and moved on) and nothing more is promised for it
    newest: dict[str, int] = {}
    for (c, t, _), nodes in executed.items():
        if len(nodes) >= f + 1 and t > newest.get(c, 0):
            newest[c] = t
    superseded = 0
    for key in sorted(received):
        done = executed.get(key, set())
        if len(done) < f + 1 and key[1] < newest.get(key[0], 0):
            superseded += 1
            continue
        if len(done) < f + 1:
            node, index = received[key]
            who = ", ".join(sorted(done)) or "no correct replica"
            return CheckResult.violation(
                LIVENESS,
                f"{_describe(key)} reached correct replica {node} (event {index}) but after the "
                f"network became synchronous it was executed only by {who}; with at most f={f} "
                f"faulty replicas at least f+1={f + 1} correct replicas must execute it so the "
                f"client can collect f+1 matching replies.",
                request=list(key),
                executed_by=sorted(done),
            )
    return CheckResult.passed(
        LIVENESS,
        f"all {len(received) - superseded} received requests were executed"
        + (
            f" ({superseded} more were superseded by a later request of their client)"
            if superseded
            else ""
        ),
        superseded=superseded,
    )
