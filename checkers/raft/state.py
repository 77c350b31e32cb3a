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

from treadle.checkers.result import CheckResult

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
    snapshot_index+1, snapshot_index+2, ... (entries up to ``snapshot_index`` were compacted
    into a snapshot); ``incarnation`` changes when the server restarts (volatile state is
    lost)."""

    node: str
    term: int
    role: str  # "follower" | "candidate" | "leader"
    log: tuple[tuple[int, Any], ...]
    commit_index: int
    incarnation: int = 0
    snapshot_index: int = 0

    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self.log)


def describe_entry(index: int, entry: tuple[int, Any]) -> str:
    term, command = entry
    what = "no-op" if command is None else repr(command)
    return f"[index {index}, term {term}: {what}]"


def log_matching_violation(
    a: str, log_a: tuple | list, b: str, log_b: tuple | list, off_a: int = 0, off_b: int = 0
) -> CheckResult | None:
    """Log Matching between two logs (``off_x``: entries up to it are compacted away): find the
    highest index whose terms agree; both logs must be identical up to and including it (then
    they are identical below every matching index). Compacted entries are committed; their
    agreement is State Machine Safety's business."""
    top = min(off_a + len(log_a), off_b + len(log_b))
    low = max(off_a, off_b)
    j = 0
    for i in range(top, low, -1):
        if log_a[i - off_a - 1][0] == log_b[i - off_b - 1][0]:
            j = i
            break
    if j == 0:
        return None
    for i in range(j, low, -1):
        ea, eb = log_a[i - off_a - 1], log_b[i - off_b - 1]
        if ea != eb:
            return CheckResult.violation(
                LOG_MATCHING,
                f"{a} and {b} both hold an entry of term {log_a[j - off_a - 1][0]} at index {j}, but their "
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
        # node -> (term, snapshot index, log) while leading
        self.leader_logs: dict[str, tuple[int, int, tuple]] = {}
        self.logs: dict[str, tuple[int, tuple]] = {}  # node -> last seen (offset, log), live
        # index -> (entry, node that committed it first, that node's term then)
        self.committed: dict[int, tuple[tuple[int, Any], str, int]] = {}
        self.commit_seen: dict[str, tuple[int, int]] = {}  # node -> (incarnation, commit index)

    def copy(self) -> StateChecker:
        """An independent copy (the remembered values are immutable: copying the maps is enough),
        for explorers that branch a run."""
        new = StateChecker.__new__(StateChecker)
        new.leaders = dict(self.leaders)
        new.leader_logs = dict(self.leader_logs)
        new.logs = dict(self.logs)
        new.committed = dict(self.committed)
        new.commit_seen = dict(self.commit_seen)
        return new

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
        node, log, off = v.node, v.log, v.snapshot_index
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
                _, ooff, old = prev
                # compaction may drop a prefix; every other entry it held must still be there
                for i in range(max(ooff, off) + 1, ooff + len(old) + 1):
                    was = old[i - ooff - 1]
                    if i > off + len(log) or log[i - off - 1] != was:
                        now = (
                            describe_entry(i, log[i - off - 1]) if i <= v.last_index else "nothing"
                        )
                        return CheckResult.violation(
                            LEADER_APPEND_ONLY,
                            f"{node}, leader of term {v.term}, changed its own log at index {i}: "
                            f"it held {describe_entry(i, was)} and now holds {now}. A leader "
                            "only appends to its log; it never overwrites or deletes entries.",
                            node=node,
                            term=v.term,
                            index=i,
                        )
            else:
                # newly elected: it must hold every entry committed in an earlier term
                r = self._leader_complete(node, v.term, off, log)
                if r is not None:
                    return r
            self.leader_logs[node] = (v.term, off, log)
        else:
            self.leader_logs.pop(node, None)
        if self.logs.get(node) != (off, log):
            self.logs[node] = (off, log)
            for other, (ooff, olog) in sorted(self.logs.items()):
                if other != node:
                    r = log_matching_violation(node, log, other, olog, off, ooff)
                    if r is not None:
                        return r
        inc, seen = self.commit_seen.get(node, (v.incarnation, 0))
        if inc != v.incarnation:
            seen = 0
        if v.commit_index > seen:
            for i in range(max(seen, off) + 1, v.commit_index + 1):
                if i > v.last_index:
                    break
                entry = log[i - off - 1]
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

    @staticmethod
    def _lacks(off: int, log: tuple, i: int, entry: tuple) -> bool:
        """The log (entries after ``off``) does not hold ``entry`` at ``i``. An index inside the
        snapshot counts as held: a snapshot only ever holds applied, hence committed, entries."""
        return i > off + len(log) or (i > off and log[i - off - 1] != entry)

    def _leader_complete(self, node: str, term: int, off: int, log: tuple) -> CheckResult | None:
        for i in sorted(self.committed):
            entry, by, cterm = self.committed[i]
            if cterm < term and self._lacks(off, log, i, entry):
                return self._incomplete(node, term, off, log, i, entry, by, cterm)
        return None

    def _committed_in_leaders(self, i: int, entry: tuple, cterm: int) -> CheckResult | None:
        for leader, (lterm, loff, llog) in sorted(self.leader_logs.items()):
            if lterm > cterm and self._lacks(loff, llog, i, entry):
                by = self.committed[i][1]
                return self._incomplete(leader, lterm, loff, llog, i, entry, by, cterm)
        return None

    def _incomplete(
        self, node: str, term: int, off: int, log: tuple, i: int, entry: tuple, by: str, cterm: int
    ) -> CheckResult:
        has = (
            describe_entry(i, log[i - off - 1])
            if off < i <= off + len(log)
            else f"no entry at index {i}"
        )
        return CheckResult.violation(
            LEADER_COMPLETENESS,
            f"{node} became leader of term {term} without a committed entry: {by} committed "
            f"{describe_entry(i, entry)} in term {cterm}, but {node}'s log has {has} (its log "
            f"has {off + len(log)} entries). Every leader of a later term must hold every committed "
            "entry.",
            node=node,
            term=term,
            index=i,
            committed_by=by,
            committed_term=cterm,
        )
