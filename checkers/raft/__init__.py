"""Raft safety checkers: the five properties of Ongaro & Ousterhout (2014, Figure 3).

* :mod:`checkers.raft.state`: on server states, incrementally, after every exploration step.
* :mod:`checkers.raft.history`: offline, on a recorded history of protocol events
  (``treadle check --model raft FILE``).

:func:`check_history` checks the protocol events and then, if the history holds client
operations, their linearizability against the ``kv`` model.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.raft.history import HistoryChecker, check_protocol
from treadle.checkers.raft.state import PROPERTIES, ServerView, StateChecker
from treadle.checkers.result import CheckResult

__all__ = [
    "PROPERTIES",
    "HistoryChecker",
    "ServerView",
    "StateChecker",
    "check_history",
    "check_protocol",
]

CLIENT_TYPES = ("invoke", "ok", "fail", "info")


def check_history(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    """Raft's five safety properties over the protocol events, then linearizability (kv model)
    of the client operations, if there are any. The first violation wins."""
    r = check_protocol(events)
    if not r.ok:
        return r
    if not any(e.get("type") in CLIENT_TYPES and "process" in e for e in events):
        return r
    from treadle.checkers.linearizability import check_history as check_linearizable

    lin = check_linearizable(events, "kv", timeout=timeout)
    if not lin.ok:
        return lin
    return CheckResult.passed(
        "Raft safety and linearizability",
        f"{r.message} The client operations are linearizable (kv model). {lin.message}".strip(),
        **r.details,
    )
