"""CheckQuorum: a leader cut off from a majority steps down within a bound.

Ongaro's thesis (section 6.2, "Routing requests to the leader"): with CheckQuorum, "a leader
steps down if an election timeout elapses without a successful round of heartbeats to a
majority of its cluster", so that clients stop waiting on a leader that cannot commit. What the
world records is enough to see when a leader *cannot* hear from a majority: ``crash`` and
``restart`` of servers, and ``partition`` (with its ``sides``) and ``heal`` of the network. A
leader is *cut off* while the servers that are up and on its side of the partition, itself
included, are fewer than a majority: then no reply of the current round can reach it (a message
across a partition, or to a crashed server, is lost at delivery).

A leader that has been cut off for longer than ``bound`` ticks without a ``stepped-down`` (or a
crash, which ends its leadership too) is a violation. The bound the binding gives covers the
worst case of a check made once per election timeout: the cut may fall just after a round
began, whose replies already counted, so the next check passes and the one after must step
down; plus a reply already in flight from a server that then crashed, and the timers' drift
and lateness (``raft.system.check_quorum_bound``). Judged only where a leader stayed cut off
for the whole bound; leadership ends at ``stepped-down``, ``crash`` or the node's next
``became-candidate``/``became-leader``.

The inverse (a leader that does hear from a majority must not step down) is not judged here: the
thesis states no bound for it; the progress check's steady leader covers its consequence in a
fault-free tail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from treadle.checkers.result import CheckResult

CHECK_QUORUM = "CheckQuorum steps a cut-off leader down"


def check_quorum(
    events: Iterable[dict[str, Any]], servers: Iterable[str], bound: int, end: int
) -> CheckResult:
    """Judge every leadership in ``events`` (a history of the ``servers``, up to time ``end``)
    for a stretch of more than ``bound`` ticks cut off from a majority without stepping down."""
    ids = sorted(set(servers))
    majority = len(ids) // 2 + 1
    down: set[str] = set()
    side: dict[str, int] | None = None  # server -> side, while partitioned
    leading: dict[str, tuple[int, int]] = {}  # leader -> (term, elected at)
    cut: dict[str, tuple[int, int]] = {}  # leader -> (cut off since, event index)
    judged = 0

    def connected(a: str, b: str) -> bool:  # as the world decides a delivery
        if side is None or a not in side or b not in side:
            return True
        return side[a] == side[b]

    def reach(node: str) -> list[str]:
        return [s for s in ids if s not in down and connected(node, s)]

    def recompute(t: int, index: int) -> None:
        for node in leading:
            if len(reach(node)) < majority:
                cut.setdefault(node, (t, index))
            else:
                cut.pop(node, None)

    def overdue(t: int) -> CheckResult | None:
        for node, (since, index) in sorted(cut.items()):
            if t - since > bound:
                term, elected = leading[node]
                return CheckResult.violation(
                    CHECK_QUORUM,
                    f"{node} led term {term} (since time {elected}) and was cut off from a "
                    f"majority from time {since} (event {index}: only "
                    f"{', '.join(reach(node)) or 'none'} up on its side, {majority} of "
                    f"{len(ids)} needed) to time {t} without stepping down: with CheckQuorum a "
                    f"leader steps down when an election timeout passes without hearing from "
                    f"a majority (Ongaro's thesis, 6.2); here within {bound} ticks.",
                    node=node,
                    term=term,
                    cut_since=since,
                    time=t,
                    bound=bound,
                )
        return None

    for e in events:
        t = int(e.get("time", 0))
        bad = overdue(t)
        if bad is not None:
            return bad
        kind, node = e.get("type"), e.get("node")
        index = int(e.get("index", -1))
        if kind == "partition":
            side = {s: i for i, part in enumerate(e.get("sides") or ()) for s in part}
        elif kind == "heal":
            side = None
        elif kind == "crash" and node in ids:
            down.add(node)
            leading.pop(node, None)
            cut.pop(node, None)
        elif kind == "restart" and node in ids:
            down.discard(node)
        elif kind in ("stepped-down", "became-candidate") and node in leading:
            leading.pop(node)
            cut.pop(node, None)
        elif kind == "became-leader" and node in ids:
            cut.pop(node, None)
            leading[node] = (int(e.get("term", 0)), t)
            judged += 1
        else:
            continue
        recompute(t, index)
    bad = overdue(end)
    if bad is not None:
        return bad
    return CheckResult.passed(
        CHECK_QUORUM,
        f"{judged} leaderships judged: none stayed cut off from a majority for more than "
        f"{bound} ticks",
        leaderships=judged,
    )
