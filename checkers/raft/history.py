"""Raft's five safety properties checked offline, from a recorded history of protocol events.

The checker rebuilds every server's log from the events and judges the same five properties as
:mod:`checkers.raft.state`. It needs no access to the servers, so it judges histories recorded
by any Raft implementation that writes these events (JSON Lines, one object per line, each with
``node`` and ``type``; log positions are in ``log_index``, or in ``index`` when ``log_index`` is
absent; "event N" in messages is the N-th line, counting from 0):

=====================  ==========================================================================
``became-leader``      {term}: the node won the election of ``term``
``stepped-down``       {term}: the node stopped leading (a newer term, or CheckQuorum)
``append``             {term, log_index, command}: a leader appended a new entry to its own log
``accept``             {term, log_index, entries}: a follower wrote ``entries`` ([term, command]
                       pairs) to its log starting at ``log_index`` (what was there from
                       ``log_index`` on is replaced)
``truncate``           {term, log_index, dropped?}: the node deleted its entries from
                       ``log_index`` on (``dropped``: how many)
``commit``             {term, log_index}: the node's commit index became ``log_index`` (``term``: its
                       current term)
``apply``              {log_index, term, command}: the node applied the entry at ``log_index``
``snapshot``           {term, log_index, snapshot_term?}: the node compacted its log up to
                       ``log_index`` (whose entry has term ``snapshot_term``)
``install-snapshot``   {term, log_index, snapshot_term}: a follower replaced its log up to
                       ``log_index`` with the leader's snapshot (the committed prefix)
``crash``/``restart``  the node lost its volatile state (the log and the term are durable)
=====================  ==========================================================================

Other events (client operations, partitions, candidates ...) are ignored here.

Beside the five properties, the fields an event states about the node's own log are checked
against the log the checker rebuilt (property "Events agree with the log"), wherever the history
shows that log: an ``append``'s term is the term its leader leads, a ``truncate``'s ``dropped``
is the number of entries from ``log_index`` to the end, an ``apply``'s term and command are the
entry at ``log_index``, a ``commit`` is of an index the node holds, and a ``snapshot``'s or an
``install-snapshot``'s ``snapshot_term`` is the term of the entry at ``log_index``. A node
whose events misstate its own log breaks the contract every other check relies on.
"""

from __future__ import annotations

from typing import Any

from treadle.checkers.raft.state import (
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    describe_entry,
    log_matching_violation,
)
from treadle.checkers.result import CheckResult
from treadle.models.model import hashable

#: the recorded fields of an event about the node's own log disagree with that log
EVENTS_AGREE = "Events agree with the log"


def _log_index(ev: dict[str, Any]) -> int:
    """The log index of a protocol event: ``log_index`` (treadle's name, since ``index`` is the
    event's position in a treadle history), else ``index`` (histories written elsewhere)."""
    return int(ev["log_index"] if "log_index" in ev else ev["index"])


def _entry(term: Any, command: Any) -> tuple[int, Any]:
    return (int(term), hashable(command))


class HistoryChecker:
    """Consumes events one at a time (so it can also run incrementally during exploration)."""

    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[int, Any]]] = {}
        self.leading: dict[str, int] = {}  # node -> term it currently leads
        self.leaders: dict[int, tuple[str, int]] = {}  # term -> (node, event position)
        # index -> (entry, node, term of the commit, event position)
        self.committed: dict[int, tuple[tuple[int, Any], str, int, int]] = {}
        self.commit_seen: dict[str, int] = {}
        self.applied: dict[int, tuple[tuple[int, Any], str, int]] = {}
        self.count = 0
        self.untracked: set[str] = set()  # servers whose log this history cannot rebuild
        self.stats = {"leaders": 0, "appends": 0, "commits": 0, "applies": 0}

    def feed(self, ev: dict[str, Any]) -> CheckResult | None:
        pos = self.count
        self.count += 1
        t = ev.get("type")
        node = ev.get("node")
        if node is None:
            return None
        handler = _HANDLERS.get(t)  # type: ignore[arg-type]
        if handler is None or (node in self.untracked and t in _LOG_EVENTS):
            return None
        r = handler(self, node, ev, pos)
        if r is not None:
            r.details.setdefault("event", pos)
        return r

    def log(self, node: str) -> list[tuple[int, Any]]:
        lg = self.logs.get(node)
        if lg is None:
            lg = self.logs[node] = []
        return lg

    # ------------------------------------------------------------------ events
    def _became_leader(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        term = int(ev["term"])
        self.stats["leaders"] += 1
        first = self.leaders.get(term)
        if first is not None and first[0] != node:
            return CheckResult.violation(
                ELECTION_SAFETY,
                f"Two leaders in term {term}: {first[0]} became leader of term {term} (event "
                f"{first[1]}) and {node} did too (event {pos}). A server votes at most once per "
                "term and a leader needs a majority, so a term has at most one leader.",
                term=term,
                leaders=[first[0], node],
            )
        self.leaders.setdefault(term, (node, pos))
        self.leading[node] = term
        log = self.log(node)
        for i in sorted(self.committed):
            entry, by, cterm, cpos = self.committed[i]
            if cterm < term and (i > len(log) or log[i - 1] != entry):
                return self._incomplete(node, term, log, i, entry, by, cterm, cpos)
        return None

    def _stepped_down(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        self.leading.pop(node, None)
        return None

    def _crash(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        self.leading.pop(node, None)
        self.commit_seen.pop(node, None)
        return None

    def _append(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        log = self.log(node)
        index, term = _log_index(ev), int(ev["term"])
        entry = _entry(term, ev.get("command"))
        self.stats["appends"] += 1
        leads = self.leading.get(node)
        if leads is not None and leads != term:
            return self._disagrees(
                node,
                pos,
                f"{node}, leader of term {leads}, appended {describe_entry(index, entry)} with "
                f"term {term}: a leader's new entries carry the term it leads",
                term=term,
                leader_term=leads,
            )
        if index != len(log) + 1:
            where = (
                f"over its entry {describe_entry(index, log[index - 1])}"
                if index <= len(log)
                else f"past the end of its {len(log)}-entry log"
            )
            return CheckResult.violation(
                LEADER_APPEND_ONLY,
                f"{node}, leader of term {term}, appended {describe_entry(index, entry)} {where} "
                f"(event {pos}). A leader only appends at the end of its log.",
                node=node,
                term=term,
                index=index,
            )
        log.append(entry)
        return self._log_changed(node)

    def _accept(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        log = self.log(node)
        index = _log_index(ev)
        entries = [_entry(t, c) for t, c in ev.get("entries", ())]
        if index - 1 < len(log):
            r = self._truncated(node, index, ev, pos)
            if r is not None:
                return r
        del log[index - 1 :]
        log.extend(entries)
        return self._log_changed(node)

    def _truncate(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        index = _log_index(ev)
        r = self._truncated(node, index, ev, pos)
        if r is not None:
            return r
        log = self.log(node)
        if "dropped" in ev:
            dropped = max(0, len(log) - (index - 1))
            if ev["dropped"] != dropped:
                return self._disagrees(
                    node,
                    pos,
                    f"{node} recorded that truncating its log from index {index} dropped "
                    f"{ev['dropped']!r} entries, but its {len(log)}-entry log had {dropped} from "
                    f"index {index} on",
                    index=index,
                    dropped=ev["dropped"],
                    expected=dropped,
                )
        del log[index - 1 :]
        return None

    def _snapshot(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        return self._snapshot_term(node, ev, pos, self.log(node), "compacted its log")

    def _snapshot_term(
        self, node: str, ev: dict, pos: int, log: list, what: str
    ) -> CheckResult | None:
        index = _log_index(ev)
        if "snapshot_term" not in ev or not 1 <= index <= len(log):
            return None
        if int(ev["snapshot_term"]) != log[index - 1][0]:
            return self._disagrees(
                node,
                pos,
                f"{node} {what} up to index {index} with last term {ev['snapshot_term']!r}, but "
                f"the entry there is {describe_entry(index, log[index - 1])}",
                index=index,
                snapshot_term=ev["snapshot_term"],
                expected=log[index - 1][0],
            )
        return None

    def _disagrees(self, node: str, pos: int, what: str, **details: Any) -> CheckResult:
        return CheckResult.violation(
            EVENTS_AGREE,
            f"{what} (event {pos}). The events a server records about its own log must agree "
            "with that log (rebuilt here from its append, accept, truncate and install-snapshot "
            "events); every other check reads them.",
            node=node,
            **details,
        )

    def _truncated(self, node: str, index: int, ev: dict, pos: int) -> CheckResult | None:
        log = self.log(node)
        if node in self.leading and index <= len(log):
            term = self.leading[node]
            return CheckResult.violation(
                LEADER_APPEND_ONLY,
                f"{node}, leader of term {term}, deleted its entries from index {index} on "
                f"(starting with {describe_entry(index, log[index - 1])}) at event {pos}. A "
                "leader never overwrites or deletes entries in its log.",
                node=node,
                term=term,
                index=index,
            )
        return None

    def _log_changed(self, node: str) -> CheckResult | None:
        log = self.log(node)
        for other in sorted(self.logs):
            if other != node:
                r = log_matching_violation(node, log, other, self.logs[other])
                if r is not None:
                    return r
        return None

    def _install_snapshot(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        """The log up to log_index becomes the committed prefix; a matching suffix is kept.
        (A ``snapshot`` of a node's own log changes nothing this checker tracks.)"""
        index = _log_index(ev)
        log = self.log(node)
        r = self._truncated(node, 1, ev, pos)
        if r is not None:
            return r
        prefix = []
        for i in range(1, index + 1):
            known = self.committed.get(i)
            if known is None:
                break  # committed elsewhere than this history shows: keep what is known
            prefix.append(known[0])
        if len(prefix) < index:
            # the history does not show every committed entry of the snapshot: stop judging
            # this server's log rather than guess it
            self.untracked.add(node)
            self.logs.pop(node, None)
            return None
        r = self._snapshot_term(node, ev, pos, prefix, "installed the leader's snapshot")
        if r is not None:
            return r
        keep = []
        if index <= len(log) and log[index - 1][0] == int(ev.get("snapshot_term", -1)):
            keep = log[index:]
        log[:] = prefix + keep
        return self._log_changed(node)

    def _commit(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        index, term = _log_index(ev), int(ev["term"])
        log = self.log(node)
        seen = self.commit_seen.get(node, 0)
        self.stats["commits"] += 1
        if index > len(log) and node in self.logs and log:
            return self._disagrees(
                node,
                pos,
                f"{node} committed up to index {index}, but its log has {len(log)} entries: a "
                "server's commit index never passes the end of its log",
                index=index,
                log_length=len(log),
            )
        for i in range(seen + 1, min(index, len(log)) + 1):
            entry = log[i - 1]
            known = self.committed.get(i)
            if known is None:
                self.committed[i] = (entry, node, term, pos)
                for leader, lterm in sorted(self.leading.items()):
                    llog = self.log(leader)
                    if lterm > term and (i > len(llog) or llog[i - 1] != entry):
                        return self._incomplete(leader, lterm, llog, i, entry, node, term, pos)
            elif known[0] != entry:
                return CheckResult.violation(
                    STATE_MACHINE_SAFETY,
                    f"Index {i} was committed with two different entries: {known[1]} committed "
                    f"{describe_entry(i, known[0])} in term {known[2]} (event {known[3]}), "
                    f"{node} committed {describe_entry(i, entry)} in term {term} (event {pos}).",
                    index=i,
                    nodes=[known[1], node],
                )
        self.commit_seen[node] = max(seen, index)
        return None

    def _apply(self, node: str, ev: dict, pos: int) -> CheckResult | None:
        index = _log_index(ev)
        entry = _entry(ev["term"], ev.get("command"))
        self.stats["applies"] += 1
        log = self.logs.get(node)
        if node not in self.untracked and log and index <= len(log) and log[index - 1] != entry:
            return self._disagrees(
                node,
                pos,
                f"{node} applied {describe_entry(index, entry)}, but its log holds "
                f"{describe_entry(index, log[index - 1])} there",
                index=index,
            )
        known = self.applied.get(index)
        if known is None:
            self.applied[index] = (entry, node, pos)
        elif known[0] != entry:
            return CheckResult.violation(
                STATE_MACHINE_SAFETY,
                f"Two servers applied different entries at index {index}: {known[1]} applied "
                f"{describe_entry(index, known[0])} (event {known[2]}), {node} applied "
                f"{describe_entry(index, entry)} (event {pos}).",
                index=index,
                nodes=[known[1], node],
            )
        return None

    def _incomplete(
        self,
        node: str,
        term: int,
        log: list,
        i: int,
        entry: tuple,
        by: str,
        cterm: int,
        cpos: int,
    ) -> CheckResult:
        has = describe_entry(i, log[i - 1]) if i <= len(log) else f"no entry at index {i}"
        return CheckResult.violation(
            LEADER_COMPLETENESS,
            f"{node} is leader of term {term} without a committed entry: {by} committed "
            f"{describe_entry(i, entry)} in term {cterm} (event {cpos}), but {node}'s log has "
            f"{has}. Every leader of a later term must hold every committed entry.",
            node=node,
            term=term,
            index=i,
            committed_by=by,
            committed_term=cterm,
        )


_LOG_EVENTS = frozenset({"append", "accept", "truncate", "commit", "install-snapshot", "snapshot"})

_HANDLERS = {
    "became-leader": HistoryChecker._became_leader,
    "stepped-down": HistoryChecker._stepped_down,
    "crash": HistoryChecker._crash,
    "append": HistoryChecker._append,
    "accept": HistoryChecker._accept,
    "truncate": HistoryChecker._truncate,
    "commit": HistoryChecker._commit,
    "install-snapshot": HistoryChecker._install_snapshot,
    "snapshot": HistoryChecker._snapshot,
    "apply": HistoryChecker._apply,
}


def check_protocol(events: list[dict[str, Any]]) -> CheckResult:
    """The five properties over a whole history of protocol events."""
    c = HistoryChecker()
    for ev in events:
        r = c.feed(ev)
        if r is not None:
            return r
    s = c.stats
    return CheckResult.passed(
        "Raft safety",
        f"Election Safety, Leader Append-Only, Log Matching, Leader Completeness and State "
        f"Machine Safety hold over {c.count} events ({s['leaders']} elections, {s['appends']} "
        f"leader appends, {s['commits']} commits, {s['applies']} applies on "
        f"{len(c.logs)} servers).",
        **s,
    )
