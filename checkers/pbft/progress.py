"""PBFT's client progress once the faults stop: a bounded liveness check, judged at the clients.

Castro & Liskov guarantee liveness as *clients eventually receive replies to their requests*,
provided at most f replicas are faulty and delay(t) does not grow faster than t indefinitely
(OSDI 1999, section 4.5; TOCS 2002, section 2.2). :func:`checkers.pbft.check_liveness` judges
the replicas' side only (every request a correct replica *recorded* receiving is executed by
f+1 correct replicas), so a replica that drops client requests before recording them makes it
vacuous: nothing is received, nothing is owed. This check looks from the client.

A run's *quiet tail* (every replica restarted, partitions healed, no loss, no duplication,
fixed latency from ``since``; the faulty replicas stay faulty) is a synchronous period. In it
each client has one *tail operation*: the one it had open when the faults stopped (it
retransmits it to every replica at once) or a new one. The client retransmits it every client
timeout and never gives up. The property: with at most f faulty replicas, every client's tail
operation, and any operation a client invoked during the tail, completes ``ok`` (f+1 matching
replies) within ``bound`` ticks of the later of its invocation and the faults stopping. A client
that got no tail operation at all is a violation too (the tail must judge something).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from treadle.checkers.result import CheckResult

from treadle.history import client_operations

CLIENT_PROGRESS = "Client progress after faults stop"


def check_client_progress(
    events: Iterable[dict[str, Any]],
    f: int,
    clients: Iterable[str],
    since: int,
    now: int,
    bound: int,
) -> CheckResult | None:
    """Judge the quiet tail ``[since, now]`` of a run with history ``events``: each client in
    ``clients`` had an operation open in the tail, and each operation open in the tail completed
    ``ok`` within ``bound`` ticks of ``max(invocation, since)``. None (nothing promised) when
    more than f replicas are faulty."""
    evs = list(events)
    faulty = {e.get("node") for e in evs if e.get("type") == "byzantine"}
    if len(faulty) > f:
        return None
    judged: dict[str, int] = {c: 0 for c in clients}
    slowest = 0
    for op, done in client_operations(evs):
        p = str(op.get("process"))
        if done is not None and int(done.get("time", 0)) <= since:
            continue  # completed before (or as) the faults stopped: nothing promised
        start = max(int(op.get("time", 0)), since)
        where = (
            f"{p}'s {op.get('f')} {op.get('value')!r} (event {op.get('index')}, invoked at time "
            f"{op.get('time')})"
        )
        promise = (
            f"with at most f={f} faulty replicas and a synchronous network (every message "
            f"delivered since time {since}) a client receives f+1={f + 1} matching replies "
            f"within {bound} ticks (Castro & Liskov, section 4.5)"
        )
        if done is not None and done.get("type") != "ok":
            return _late(
                f"{where} ended {done.get('type')} (event {done.get('index')}) at time "
                f"{done.get('time')}, after the faults stopped at time {since}: {promise}.",
                op,
                since,
                bound,
            )
        if done is None:
            if start + bound > now:
                continue  # the tail ended before the bound: not judged
            return _late(
                f"{where} was still open at time {now}, {now - start} ticks after the faults "
                f"stopped (time {since}) or it was invoked: {promise}.",
                op,
                since,
                bound,
            )
        took = int(done.get("time", 0)) - start
        if took > bound:
            return _late(
                f"{where} completed only at time {done.get('time')}, {took} ticks after the "
                f"faults stopped (time {since}) or it was invoked: {promise}.",
                op,
                since,
                bound,
                took=took,
            )
        slowest = max(slowest, took)
        judged[p] = judged.get(p, 0) + 1
    idle = sorted(c for c, k in judged.items() if k == 0)
    if idle and since + bound <= now:
        return CheckResult.violation(
            CLIENT_PROGRESS,
            f"client(s) {', '.join(idle)} completed no operation in the quiet tail (time {since} "
            f"to {now}), though each client is given one when the faults stop.",
            idle=idle,
            since=since,
            bound=bound,
        )
    total = sum(judged.values())
    return CheckResult.passed(
        CLIENT_PROGRESS,
        f"all {total} operations open after the faults stopped (time {since}) completed ok, "
        f"the slowest {slowest} ticks after the later of its invocation and time {since} "
        f"(bound {bound})",
        operations=total,
        slowest=slowest,
        bound=bound,
    )


def _late(message: str, op: dict[str, Any], since: int, bound: int, **more: Any) -> CheckResult:
    """The violation for one client operation of the quiet tail."""
    return CheckResult.violation(
        CLIENT_PROGRESS,
        message,
        process=str(op.get("process")),
        operation=op.get("index"),
        since=since,
        bound=bound,
        **more,
    )
