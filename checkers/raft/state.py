"""Raft's five safety properties (Ongaro & Ousterhout 2014, Figure 3), checked on server states
after every step of an exploration.

The system binding turns each live server into a :class:`ServerView` (plain data: term, role,
log, commit index) and calls :meth:`StateChecker.observe` with the servers whose state changed.
Everything is incremental: a server that did not change is not looked at again, a log is
compared with the others only when it changed, committed entries are remembered once.

* Election Safety: at most one leader per term.
* Leader Append-Only: a leader never overwrites or deletes entries of its log (while it leads in
  that term).
* Log Matching: two logs holding an entry with the same index and term are identical up to it.
* Leader Completeness: an entry committed in term T is in the log of every leader of a term > T.
* State Machine Safety: no two servers commit (apply) different entries at the same index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checkers.result import CheckResult

ELECTION_SAFETY = "Election Safety"
LEADER_APPEND_ONLY = "Leader Append-Only"
LOG_MATCHING = "Log Matching"
LEADER_COMPLETENESS = "Leader Completeness"
STATE_MACHINE_SAFETY = "State Machine Safety"

PROPERTIES = (
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
)


@dataclass(frozen=True)
class ServerView:
    """What the checker needs of one server. ``log`` holds (term, command) pairs for indexes
    1..len(log); ``incarnation`` changes when the server restarts (volatile state is lost)."""

    node: str
    term: int
    role: str  # "follower" | "candidate" | "leader"
    log: tuple[tuple[int, Any], ...]
    commit_index: int
    incarnation: int = 0


def describe_entry(index: int, entry: tuple[int, Any]) -> str:
    term, command = entry
    what = "no-op" if command is None else repr(command)
    return f"[index {index}, term {term}: {what}]"


def log_matching_violation(
    a: str, log_a: tuple | list, b: str, log_b: tuple | list
) -> CheckResult | None:
    """Log Matching between two logs: find the highest index whose terms agree; both logs must be
    identical up to and including it (then they are identical below every matching index)."""
    top = min(len(log_a), len(log_b))
    j = 0
    for i in range(top, 0, -1):
        if log_a[i - 1][0] == log_b[i - 1][0]:
            j = i
            break
    if j == 0:
        return None
    for i in range(j, 0, -1):
        ea, eb = log_a[i - 1], log_b[i - 1]
        if ea != eb:
            return CheckResult.violation(
                LOG_MATCHING,
                f"{a} and {b} both hold an entry of term {log_a[j - 1][0]} at index {j}, but their "
                f"logs differ at index {i}: {a} has {describe_entry(i, ea)}, {b} has "
                f"{describe_entry(i, eb)}. Logs that agree on (index, term) must be identical up "
                "to that index.",
                nodes=[a, b],
                index=i,
                matching_index=j,
                entries={a: list(ea), b: list(eb)},
            )
    return None


class StateChecker:
    """Incremental per-run checker. Feed it views; it answers the first violation."""

    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}  # term -> the server that led it
        self.leader_logs: dict[str, tuple[int, tuple]] = {}  # node -> (term, log) while leading
        self.logs: dict[str, tuple] = {}  # node -> last seen log (live servers)
        # index -> (entry, node that committed it first, that node's term then)
        self.committed: dict[int, tuple[tuple[int, Any], str, int]] = {}
        self.commit_seen: dict[str, tuple[int, int]] = {}  # node -> (incarnation, commit index)

    def observe(self, views: list[ServerView]) -> CheckResult | None:
        """``views``: the servers whose state changed since the last call."""
        for v in views:
            r = self._one(v)
            if r is not None:
                return r
        return None

    def forget(self, node: str) -> None:
        """The server crashed: its volatile state (and leadership) is gone."""
        self.leader_logs.pop(node, None)
        self.logs.pop(node, None)
        self.commit_seen.pop(node, None)

    def _one(self, v: ServerView) -> CheckResult | None:
        node, log = v.node, v.log
        if v.role == "leader":
            first = self.leaders.setdefault(v.term, node)
            if first != node:
                return CheckResult.violation(
                    ELECTION_SAFETY,
                    f"Two leaders in term {v.term}: {first} and {node} both became leader of term "
                    f"{v.term}. A server votes at most once per term and a leader needs a "
                    "majority of votes, so at most one leader can be elected in a term.",
                    term=v.term,
                    leaders=[first, node],
                )
            prev = self.leader_logs.get(node)
            if prev is not None and prev[0] == v.term:
                old = prev[1]
                if len(log) < len(old) or log[: len(old)] != old:
                    i = next(
                        (k for k in range(len(old)) if k >= len(log) or log[k] != old[k]),
                        len(old),
                    )
                    now = describe_entry(i + 1, log[i]) if i < len(log) else "nothing"
                    return CheckResult.violation(
                        LEADER_APPEND_ONLY,
                        f"{node}, leader of term {v.term}, changed its own log at index {i + 1}: "
                        f"it held {describe_entry(i + 1, old[i])} and now holds {now}. A "
                        "leader only appends to its log; it never overwrites or deletes entries.",
                        node=node,
                        term=v.term,
                        index=i + 1,
                    )
            else:
                # newly elected: it must hold every entry committed in an earlier term
                r = self._leader_complete(node, v.term, log)
                if r is not None:
                    return r
            self.leader_logs[node] = (v.term, log)
        else:
            self.leader_logs.pop(node, None)
        if self.logs.get(node) != log:
            self.logs[node] = log
            for other, olog in sorted(self.logs.items()):
                if other != node:
                    r = log_matching_violation(node, log, other, olog)
                    if r is not None:
                        return r
        inc, seen = self.commit_seen.get(node, (v.incarnation, 0))
        if inc != v.incarnation:
            seen = 0
        if v.commit_index > seen:
            for i in range(seen + 1, v.commit_index + 1):
                if i > len(log):
                    break
                entry = log[i - 1]
                known = self.committed.get(i)
                if known is None:
                    self.committed[i] = (entry, node, v.term)
                    r = self._committed_in_leaders(i, entry, v.term)
                    if r is not None:
                        return r
                elif known[0] != entry:
                    return CheckResult.violation(
                        STATE_MACHINE_SAFETY,
                        f"Index {i} was committed with two different entries: {known[1]} committed "
                        f"{describe_entry(i, known[0])} (in term {known[2]}), {node} committed "
                        f"{describe_entry(i, entry)} (in term {v.term}). Servers that apply the "
                        "committed log in order would apply different commands at the same index.",
                        index=i,
                        nodes=[known[1], node],
                        entries={known[1]: list(known[0]), node: list(entry)},
                    )
        self.commit_seen[node] = (v.incarnation, max(seen, v.commit_index))
        return None

    def _leader_complete(self, node: str, term: int, log: tuple) -> CheckResult | None:
        for i in sorted(self.committed):
            entry, by, cterm = self.committed[i]
            if cterm < term and (i > len(log) or log[i - 1] != entry):
                return self._incomplete(node, term, log, i, entry, by, cterm)
        return None

    def _committed_in_leaders(self, i: int, entry: tuple, cterm: int) -> CheckResult | None:
        for leader, (lterm, llog) in sorted(self.leader_logs.items()):
            if lterm > cterm and (i > len(llog) or llog[i - 1] != entry):
                by = self.committed[i][1]
                return self._incomplete(leader, lterm, llog, i, entry, by, cterm)
        return None

    def _incomplete(
        self, node: str, term: int, log: tuple, i: int, entry: tuple, by: str, cterm: int
    ) -> CheckResult:
        has = describe_entry(i, log[i - 1]) if i <= len(log) else f"no entry at index {i}"
        return CheckResult.violation(
            LEADER_COMPLETENESS,
            f"{node} became leader of term {term} without a committed entry: {by} committed "
            f"{describe_entry(i, entry)} in term {cterm}, but {node}'s log has {has} (its log "
            f"has {len(log)} entries). Every leader of a later term must hold every committed "
            "entry.",
            node=node,
            term=term,
            index=i,
            committed_by=by,
            committed_term=cterm,
        )
