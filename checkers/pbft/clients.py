"""What PBFT's clients see: the results they accepted, judged against the replicated service.

The service's promise to its users (Castro & Liskov 1999, section 4.5: "the algorithm provides
safety ... it implements a linearizable object") is about the clients' history, not the
replicas'. Three checks, in this order:

* **Result Validity**: a result a client accepted was produced by a correct replica. When the
  history shows correct replicas executing (``execute`` events with ``result``), an accepted
  result that no correct replica produced for that request is a violation, and the message names
  the replies the client counted.
* **Reply Certificate**: a client accepts a result after f+1 matching replies from distinct
  replicas (section 4.1: at most f are faulty, so one of them is correct). When the client's
  ``ok`` event names the replies it counted (``replies``: ``[[replica, view, result], ...]``),
  fewer than f+1 distinct replicas agreeing on the result is a violation, even if the result
  happens to be right this time.
* **Linearizability** of the clients' operations against :mod:`models.numbered_log` (the
  sequential service the replicas run: each client operation applied gets the next number, and
  that number is the result), with the checker of :mod:`checkers.linearizability`. An ``info``
  operation (the client gave up) may take effect at any point after its invocation, or never.

Events used: client ``invoke`` {process, f, value (the operation), timestamp} and ``ok`` {...,
``result``, optional ``replies``}, ``info``/``fail``; ``byzantine`` {node}; ``replica`` {node, f};
``execute`` {node, seq, request: [client, timestamp, op], ``result``}.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.linearizability import check_history as check_linearizable
from treadle.checkers.result import CheckResult
from treadle.models.numbered_log import MODEL as SERVICE

from treadle.errors import InputError

RESULT_VALIDITY = "Result Validity"
REPLY_CERTIFICATE = "Reply Certificate"


def _fault_bound(events: list[dict[str, Any]], faulty: set[str]) -> int | None:
    """f as the replicas announced it, else from their number (n = 3f+1), else None."""
    for e in events:
        if e.get("type") == "replica" and e.get("node") not in faulty and "f" in e:
            return int(e["f"])
    replicas = {e["node"] for e in events if e.get("type") in ("replica", "execute")}
    return (len(replicas) - 1) // 3 if replicas else None


def _reply_text(replies: list[Any]) -> str:
    if not replies:
        return "no replies at all"
    parts = []
    for r in replies:
        if isinstance(r, list | tuple) and len(r) == 3:
            parts.append(f"{r[0]} (view {r[1]}, result {r[2]})")
        else:
            parts.append(repr(r))
    return "the replies of " + ", ".join(parts)


def _accepted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == "ok" and "process" in e]


def _where(e: dict[str, Any]) -> str:
    return (
        f"client {e['process']} accepted result {e.get('result')} for {str(e.get('value'))!r} "
        f"(event {e.get('index')})"
    )


def check_results(events: list[dict[str, Any]]) -> CheckResult | None:
    """Result Validity, then Reply Certificate; None when both hold."""
    faulty = {e["node"] for e in events if e.get("type") == "byzantine"}
    # (client, timestamp, op) -> {correct replica: result it produced}
    produced: dict[tuple[str, int, str], dict[str, Any]] = {}
    watched = False  # the history shows correct replicas executing with their results
    for e in events:
        if e.get("type") != "execute" or e.get("node") in faulty or "result" not in e:
            continue
        watched = True
        req = e.get("request")
        if req is None:
            continue
        key = (str(req[0]), int(req[1]), str(req[2]))
        produced.setdefault(key, {}).setdefault(e["node"], e["result"])
    accepted = _accepted(events)
    for e in accepted if watched else ():
        ts = e.get("timestamp")
        if ts is None:
            continue
        result, replies = e.get("result"), e.get("replies")
        by_replica = produced.get((str(e["process"]), int(ts), str(e.get("value"))), {})
        if result in by_replica.values():
            continue
        if by_replica:
            seen = ", ".join(f"{n} produced {r}" for n, r in sorted(by_replica.items()))
            what = f"the correct replicas that executed it produced other results ({seen})"
        else:
            what = "no correct replica executed that request at all"
        counted = _reply_text(replies) if replies is not None else "replies it did not record"
        return CheckResult.violation(
            RESULT_VALIDITY,
            f"{_where(e)} on {counted}, but no correct replica produced that result: {what}. "
            f"A result is valid only if a correct replica computed it (faulty replicas: "
            f"{', '.join(sorted(faulty)) or 'none recorded'}).",
            client=e["process"],
            op=e.get("value"),
            result=result,
            replies=replies,
            produced=by_replica,
            event=e.get("index"),
        )
    f = _fault_bound(events, faulty)
    for e in accepted if f is not None else ():
        replies = e.get("replies")
        if replies is None:
            continue
        result = e.get("result")
        agreeing = {
            str(r[0])
            for r in replies
            if isinstance(r, list | tuple) and len(r) == 3 and r[2] == result
        }
        assert f is not None
        if len(agreeing) < f + 1:
            return CheckResult.violation(
                REPLY_CERTIFICATE,
                f"{_where(e)} on {_reply_text(replies)}: only {len(agreeing)} distinct "
                f"replica(s) vouch for that result, but with up to f={f} faulty replicas a "
                f"client needs f+1={f + 1} matching replies from distinct replicas before one "
                f"of them is surely correct.",
                client=e["process"],
                op=e.get("value"),
                result=result,
                replies=replies,
                needed=f + 1,
                event=e.get("index"),
            )
    return None


def client_operations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The clients' events in the model's terms: an ``ok`` carries the accepted result as its
    value (the invoke keeps the operation as its argument)."""
    out = []
    for i, e in enumerate(events):
        t = e.get("type")
        if t not in ("invoke", "ok", "info", "fail") or "process" not in e:
            continue
        if t == "ok":
            if "result" not in e:
                raise InputError(
                    "<history>",
                    None,
                    f"event {e.get('index', i)}: a PBFT client ok event needs the accepted "
                    '"result" (the position the service returned)',
                )
            e = dict(e, value=e["result"])
        out.append(e)
    return out


def check_clients(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Result Validity, Reply Certificate, then linearizability of the clients' history against
    the service."""
    evs = list(events)
    bad = check_results(evs)
    if bad is not None:
        return bad
    lin = check_linearizable(client_operations(evs), SERVICE, timeout=timeout)
    if lin.verdict != "violation":
        return lin
    return CheckResult.violation(
        lin.property,
        "The results the clients accepted cannot come from one sequential numbered log (the "
        "service the replicas run: each operation gets the next position):\n" + lin.message,
        **lin.details,
    )


def client_check(world: Any) -> CheckResult | None:
    """Final check of a pbft run (after settling)."""
    r = check_clients(world.history)
    return r if r.verdict != "ok" else None
