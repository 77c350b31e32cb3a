"""Raft's progress once the faults stop: a bounded liveness check, judged on a quiet tail.

Raft promises nothing while faults go on (FLP); it does promise progress once a majority is up,
connected and exchanging messages within bounded time (Ongaro & Ousterhout 2014, section 5.6:
"as long as the system satisfies broadcastTime << electionTimeout << MTBF"). A run's *quiet
tail* (every server restarted, partitions healed, no loss, no duplication, fixed latency, from
time ``quiet_since`` to ``now``) is such a period, and in it:

* **a leader**: once the tail has lasted ``elect_within`` ticks, some server leads the newest
  term;
* **followers catch up**: if that leader has led since at least ``catch_up`` ticks before the
  end, every server's commit index reached what the leader had committed ``catch_up`` ticks
  before the end (AppendEntries backs ``nextIndex`` up until the logs match, Figure 2);
* **operations complete**: a client operation invoked after the faults stopped and after that
  leader was elected is answered (``ok`` or ``fail``), never given up on (``info``), and is not
  still open ``op_bound`` ticks after its invocation.

* **a steady leader**: that leader was elected at most ``elect_within`` ticks after the faults
  stopped (section 5.6: Raft "will be able to elect and maintain a steady leader" when
  broadcastTime << electionTimeout << MTBF), not replaced again and again;
* **the leader commits**: every entry of its own term that the leader appended ``catch_up`` ticks
  before the end (or before the faults stopped) is committed by the end (section 5.3: the
  leader retries AppendEntries until the entry is replicated on a majority, then commits it).

A tail may keep a *minority* of the servers down (``down``): Raft is "fully functional
(available) as long as any majority of the servers are operational and can communicate with
each other" (section 1), so the leader, steady-leader, catch-up (of the live servers) and commit
parts are judged the same; the clients' operations are not, since a client that picks its
server at random may pick the down one try after try. A tail that went *quiescent* (nothing
pending: no message, no timer) before a bound is judged as if it had lasted for ever, since
nothing will ever change again; a correct Raft always has a timer pending.

The bounds are generous multiples of the election timeout, the heartbeat and the clients' own
timeout, so the check never fires on a correct implementation with those timing parameters;
where the tail is too short for a bound, that part is not judged (returns passed with what it
judged). Like PBFT's liveness check, this is judged on the tail only, never on the faulty part.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from treadle.checkers.raft.state import ServerView
from treadle.checkers.result import CheckResult

from treadle.history import client_operations

PROGRESS = "Progress after faults stop"


@dataclass(frozen=True)
class Bounds:
    """Ticks after which a correct Raft must have done something, in a fault-free period."""

    elect_within: int  # a leader exists this long after the faults stopped
    catch_up: int  # a follower reaches a commit index this long after the leader had it
    #: an operation invoked under a stable leader is answered within this (None: not judged)
    op_bound: int | None


def check_progress(
    servers: list[ServerView],
    events: Iterable[dict[str, Any]],
    quiet_since: int,
    now: int,
    bounds: Bounds,
    down: Iterable[str] = (),
    quiescent: bool = False,
) -> CheckResult:
    """Judge the quiet tail ``[quiet_since, now]`` of a run whose final states of the live
    servers are ``servers`` (``down``: the minority kept down in the tail) and whose history is
    ``events``. ``quiescent``: nothing was pending at the end (the state is final)."""
    evs = list(events)
    down = sorted(down)
    quiet = now - quiet_since
    if quiescent:
        # nothing is pending, so nothing will ever happen: as if the tail never ended
        now = max(now, quiet_since) + bounds.elect_within + bounds.catch_up + (bounds.op_bound or 0)
    if not servers or now - quiet_since < bounds.elect_within:
        return CheckResult.passed(
            PROGRESS, f"the quiet tail ({quiet} ticks) was too short to judge"
        )
    faults = _no_faults_text(quiet_since, down, quiescent)
    newest = max(s.term for s in servers)
    leaders = [s for s in servers if s.role == "leader" and s.term == newest]
    if not leaders:
        roles = ", ".join(f"{s.node} {s.role} of term {s.term}" for s in servers)
        return CheckResult.violation(
            PROGRESS,
            f"no leader {quiet} ticks after the faults stopped ({faults}): {roles}. With a "
            f"majority up and connected Raft elects a leader within a few election timeouts "
            f"(here: {bounds.elect_within} ticks).",
            since=quiet_since,
            time=now,
            terms={s.node: s.term for s in servers},
            down=down,
        )
    leader = leaders[0]
    elected = _elected_at(evs, leader.node, leader.term)
    judged = {"followers": 0, "operations": 0, "entries": 0}
    if elected is not None and elected > quiet_since + bounds.elect_within:
        changes = sum(
            1 for e in evs if e.get("type") == "became-leader" and e.get("time", 0) >= quiet_since
        )
        return CheckResult.violation(
            PROGRESS,
            f"{leader.node} became leader of term {leader.term} only at time {elected}, "
            f"{elected - quiet_since} ticks after the faults stopped ({faults}); "
            f"{changes} elections were won in the tail. With a majority up and connected Raft "
            f"elects and then maintains a steady leader (section 5.6) within "
            f"{bounds.elect_within} ticks.",
            leader=leader.node,
            term=leader.term,
            elected=elected,
            elections=changes,
            down=down,
        )
    if elected is not None and elected <= now - bounds.catch_up:
        target = _commit_at(evs, leader.node, now - bounds.catch_up)
        for s in servers:
            if s.node == leader.node or target is None:
                continue
            judged["followers"] += 1
            if s.commit_index < target:
                return CheckResult.violation(
                    PROGRESS,
                    f"{s.node}'s commit index is {s.commit_index} at time {now}, but its leader "
                    f"{leader.node} (of term {leader.term} since time {elected}) had committed "
                    f"index {target} by time {now - bounds.catch_up}, {bounds.catch_up} ticks "
                    f"earlier, and {faults}: a follower "
                    f"connected to a stable leader receives every committed entry (the leader "
                    f"backs nextIndex up until the logs match).",
                    node=s.node,
                    leader=leader.node,
                    term=leader.term,
                    commit_index=s.commit_index,
                    leader_commit=target,
                )
    if elected is not None and quiet_since <= now - bounds.catch_up:
        owed = [
            e
            for e in evs
            if e.get("node") == leader.node
            and e.get("type") == "append"
            and e.get("term") == leader.term
            and e.get("time", 0) <= now - bounds.catch_up
        ]
        if owed:
            last = max(owed, key=lambda e: int(e["log_index"]))
            judged["entries"] = len(owed)
            if leader.commit_index < int(last["log_index"]):
                return CheckResult.violation(
                    PROGRESS,
                    f"{leader.node}, leader of term {leader.term} since time {elected}, "
                    f"appended index {last['log_index']} (event {last.get('index')}) at time "
                    f"{last.get('time')} but its commit index is {leader.commit_index} at time "
                    f"{now}, at least {bounds.catch_up} ticks after both that append and the "
                    f"faults stopping ({faults}): a leader with a majority up and connected "
                    f"replicates an entry of its term to a majority and commits it.",
                    leader=leader.node,
                    term=leader.term,
                    log_index=int(last["log_index"]),
                    commit_index=leader.commit_index,
                    down=down,
                )
    if elected is not None and bounds.op_bound is not None and not down:
        start = max(quiet_since, elected)
        for op, done in client_operations(evs):
            t = op.get("time", 0)
            if t < start:
                continue
            late = done is None and t + bounds.op_bound <= now
            if done is not None and done["type"] == "info" or late:
                what = (
                    f"was given up on (info, event {done.get('index')}) at time {done.get('time')}"
                    if done is not None
                    else f"was still open at time {now}, {now - t} ticks later"
                )
                return CheckResult.violation(
                    PROGRESS,
                    f"{op.get('process')}'s {op.get('f')} {op.get('value')!r} (event "
                    f"{op.get('index')}), invoked at time {t} while {leader.node} led term "
                    f"{leader.term} (since time {elected}) and no fault happened (since time "
                    f"{quiet_since}), {what}: under a stable leader with every message "
                    f"delivered, an operation is answered within {bounds.op_bound} ticks.",
                    process=op.get("process"),
                    operation=op.get("index"),
                    leader=leader.node,
                    term=leader.term,
                )
            if done is not None or late:
                judged["operations"] += 1
    kept = f" ({', '.join(down)} kept down)" if down else ""
    return CheckResult.passed(
        PROGRESS,
        f"{leader.node} leads term {leader.term} {quiet} ticks after the faults stopped{kept}; "
        f"{judged['followers']} followers caught up, {judged['entries']} entries of its term "
        f"committed, {judged['operations']} operations of the quiet tail were answered",
        leader=leader.node,
        **judged,
    )


def _no_faults_text(quiet_since: int, down: list[str], quiescent: bool) -> str:
    if down:
        text = (
            f"a majority up and connected, {', '.join(down)} kept down, every other message "
            f"delivered since time {quiet_since}"
        )
    else:
        text = (
            f"every server up, partitions healed, every message delivered since time {quiet_since}"
        )
    return text + ("; then nothing was pending, so nothing would ever change" if quiescent else "")


def _elected_at(events: list[dict[str, Any]], node: str, term: int) -> int | None:
    for e in reversed(events):
        if e.get("node") == node and e.get("type") == "became-leader" and e.get("term") == term:
            return int(e.get("time", 0))
    return None


def _commit_at(events: list[dict[str, Any]], node: str, when: int) -> int | None:
    """The commit index ``node`` recorded last at or before ``when`` (since its last restart:
    the commit index is volatile)."""
    best = None
    for e in events:
        if e.get("time", 0) > when:
            break
        if e.get("node") != node:
            continue
        if e.get("type") in ("restart", "crash"):
            best = None
        elif e.get("type") == "commit":
            best = int(e["log_index"])
    return best
