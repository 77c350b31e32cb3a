"""Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", USENIX ATC
2014) with a replicated key-value state machine on top.

What follows the paper, Figure 2 and sections 5 and 8:

* Persistent state (currentTerm, votedFor, log[]) is written to ``ctx.storage`` before any reply
  or request that depends on it is sent (a handler is atomic, and storage is durable when it
  returns, so a write earlier in the same handler than the send counts as "before").
* Elections: randomized election timeouts drawn with ``ctx.random``; RequestVote grants at most
  one vote per term, only to a candidate whose log is at least as up to date (5.4.1: compare last
  terms, then last indexes). Candidates retry RequestVote to peers that did not answer (Figure 2:
  "retry RPCs indefinitely").
* AppendEntries with the consistency check on (prevLogIndex, prevLogTerm) and truncation only on
  an actual conflict (same index, different term); heartbeats are empty AppendEntries.
* A leader commits an index N only if a majority holds it AND log[N].term == currentTerm
  (5.4.2, Figure 8); entries of earlier terms become committed indirectly.
* Recovery: a restarted server reloads term, vote and log from storage and replays committed
  entries into a fresh state machine as it learns the commit index again.
* Clients: a server that is not the leader answers with a leader hint; clients retry with the
  same (client id, sequence number) and the state machine deduplicates (section 8), so a retried
  request takes effect once. Reads go through the log, so every operation is linearizable.
* PreVote and CheckQuorum (Ongaro's thesis, 9.6 and 6.2), both switchable by config.
* Snapshots (section 7, Figure 13): every ``snapshot_every`` applied entries the applied prefix
  of the log is compacted into a snapshot of the state machine; a follower that needs a compacted
  entry gets InstallSnapshot and keeps the part of its log that follows a matching last entry.

Seeded bugs (``ctx.bug``): ``figure8``, ``no-persist-vote``, ``log-length-vote``,
``stale-ae-truncate``, ``no-dedup``, ``local-read`` (see impl/raft/system.py for what each breaks).

Protocol events recorded (the vocabulary checkers/raft reads): ``became-candidate`` {term},
``became-leader`` {term}, ``stepped-down`` {term}, ``append`` {term, log_index, command}
(leader), ``accept`` {term, log_index, entries} (follower wrote entries starting at log_index),
``truncate`` {term, log_index, dropped} (entries from log_index on deleted), ``commit`` {term,
log_index}, ``apply`` {log_index, term, command}, ``snapshot`` and ``install-snapshot`` {term,
log_index, snapshot_term}. (``log_index``, not ``index``: the history
format reserves ``index`` for the event's own position.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.node import Context, Node

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"


# ---------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Entry:
    term: int
    command: tuple | None  # (client, seq, f, key, value)


@dataclass(frozen=True)
class RequestVote:
    term: int
    candidate: str
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False


@dataclass(frozen=True)
class RequestVoteReply:
    term: int
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True)
class AppendEntries:
    term: int
    leader: str
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True)
class AppendEntriesReply:
    term: int
    success: bool
    match_index: int  # on success: prev_index + len(entries)
    hint: int  # on failure: where the leader should try next


@dataclass(frozen=True)
class InstallSnapshot:
    term: int
    leader: str
    last_index: int  # the snapshot replaces the log up to and including this index
    last_term: int
    data: tuple  # (kv items, sessions): the state machine after applying last_index


@dataclass(frozen=True)
class ClientRequest:
    client: str
    seq: int
    f: str  # get | put | append | cas
    key: str
    value: Any


@dataclass(frozen=True)
class ClientReply:
    seq: int
    ok: bool
    value: Any


@dataclass(frozen=True)
class NotLeader:
    seq: int
    leader: str | None  # the hint: who this server believes leads, if anyone


def command_json(cmd: tuple | None) -> list | None:
    if cmd is None:
        return None
    client, seq, f, key, value = cmd
    return [client, seq, f, key, list(value) if isinstance(value, tuple) else value]


def _command_text(cmd: tuple | None) -> str:
    if cmd is None:
        return "no-op"
    client, seq, f, key, value = cmd
    arg = "" if value is None else f" {value!r}"
    return f"{f} {key}{arg} ({client}#{seq})"


# ---------------------------------------------------------------------------------------- server
class RaftServer(Node):
    def __init__(self) -> None:
        # persistent (Figure 2)
        self.current_term = 0
        self.voted_for: str | None = None
        self.log: list[Entry] = []  # entries snap_index+1, snap_index+2, ...
        # the snapshot (section 7): the log up to snap_index is compacted into state machine data
        self.snap_index = 0
        self.snap_term = 0
        # volatile
        self.commit_index = 0
        self.last_applied = 0
        self.role = FOLLOWER
        self.leader_id: str | None = None
        self.votes: set[str] = set()
        self.pre_votes: set[str] = set()
        self.pre_candidate = False
        self.last_leader_contact = -(10**9)
        # leaders
        self.next_index: dict[str, int] = {}
        self.match_index: dict[str, int] = {}
        self.heard_from: set[str] = set()
        # the state machine (volatile: rebuilt by re-applying the committed log)
        self.kv: dict[str, str] = {}
        self.sessions: dict[str, tuple[int, tuple[bool, Any]]] = {}
        #: bumped on every change the safety invariants look at (lets them skip unchanged nodes)
        self.version = 0

    # ------------------------------------------------------------------ plumbing
    def state(self) -> Any:
        """What decides this server's future, canonically (exhaustive search fingerprints it).

        Left out because it is derivable or dead: ``last_applied`` (always ``commit_index``),
        the state machine (``kv``/``sessions``: the snapshot plus the committed log), votes
        outside candidacy and replication progress outside leadership (reset on the next
        election), pre-votes without PreVote, and times. Sets of ids are frozensets and maps
        are frozensets of items, so that renaming servers (symmetry) keeps the form canonical.
        """
        role = self.role
        return (
            self.current_term,
            self.voted_for,
            tuple(self.log),
            self.snap_index,
            self.snap_term,
            self.commit_index,
            role,
            self.leader_id,
            frozenset(self.votes) if role == CANDIDATE else None,
            (self.pre_candidate, frozenset(self.pre_votes)) if self.pre_candidate else None,
            frozenset(self.next_index.items()) if role == LEADER else None,
            frozenset(self.match_index.items()) if role == LEADER else None,
        )

    def describe(self) -> dict[str, Any]:
        """For the study page: Figure 2's state, the log keyed by index."""
        d: dict[str, Any] = {
            "role": self.role + (" (pre-candidate)" if self.pre_candidate else ""),
            "term": self.current_term,
            "voted_for": self.voted_for,
            "leader": self.leader_id,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "log": {
                str(self.snap_index + i + 1): f"t{e.term} {_command_text(e.command)}"
                for i, e in enumerate(self.log)
            },
        }
        if self.snap_index:
            d["snapshot"] = f"up to index {self.snap_index} (term {self.snap_term})"
        if self.role == CANDIDATE:
            d["votes"] = sorted(self.votes)
        if self.role == LEADER:
            d["next_index"] = dict(sorted(self.next_index.items()))
            d["match_index"] = dict(sorted(self.match_index.items()))
        d["kv"] = dict(sorted(self.kv.items()))
        return d

    def on_start(self, ctx: Context) -> None:
        s = ctx.storage
        self.current_term = s.get("term", 0)
        self.voted_for = s.get("vote")
        self.log = list(s.get("log", ()))
        snap = s.get("snapshot")
        if snap is not None:
            # recovery: the state machine restarts from the snapshot, the rest is re-applied
            self.snap_index, self.snap_term, data = snap
            self.load_state_machine(data)
            self.commit_index = self.last_applied = self.snap_index
        cfg = ctx.config
        self.et_min = int(cfg["election_timeout_min"])
        self.et_max = int(cfg["election_timeout_max"])
        # off (exhaustive runs): a fixed election timeout, no random draw. In an asynchronous
        # world a timer fires at any moment anyway, so a random timeout adds only branching.
        self.jitter = bool(cfg.get("election_jitter", True))
        # exhaustive runs may let only the first k servers time out and stand for election (a
        # model bound like TLC's constants: the others still vote, replicate, crash and restart);
        # 0: every server
        k = int(cfg.get("election_candidates", 0))
        self.may_stand = k <= 0 or ctx.id in sorted(ctx.servers)[:k]
        self.heartbeat = int(cfg["heartbeat_interval"])
        self.prevote = bool(cfg["prevote"])
        self.check_quorum = bool(cfg["check_quorum"])
        self.snapshot_every = int(cfg["snapshot_every"])
        self.majority = len(ctx.servers) // 2 + 1
        # a restart must not forget a vote (Election Safety rests on it, Figure 2 "persistent")
        ctx.sometimes("raft: restarted server remembers its vote", self.voted_for is not None)
        self.reset_election_timer(ctx)

    def persist_term_vote(self, ctx: Context) -> None:
        ctx.storage.put("term", self.current_term)
        if ctx.bug == "no-persist-vote":
            return  # the bug: votedFor lives only in memory, a restart forgets the vote
        ctx.storage.put("vote", self.voted_for)

    def persist_log(self, ctx: Context) -> None:
        ctx.storage.put("log", tuple(self.log))

    def last_index(self) -> int:
        return self.snap_index + len(self.log)

    def last_log(self) -> tuple[int, int]:
        n = self.last_index()
        return n, self.term_at(n)

    def term_at(self, index: int) -> int:
        """The term of the entry at ``index`` (-1 if compacted away, below the snapshot)."""
        if index == self.snap_index:
            return self.snap_term
        if index < self.snap_index:
            return -1
        return self.log[index - self.snap_index - 1].term

    def entry(self, index: int) -> Entry:
        return self.log[index - self.snap_index - 1]

    def reset_election_timer(self, ctx: Context) -> None:
        if not self.may_stand:
            return
        if not self.jitter:
            ctx.set_timer("election", self.et_min)
            return
        ctx.set_timer("election", ctx.random.randint(self.et_min, self.et_max))

    def become_follower(self, ctx: Context, term: int) -> None:
        """Adopt a newer term (or step down in this one)."""
        was_leader = self.role == LEADER
        ctx.sometimes(
            "raft: leader steps down to a newer term", was_leader and term > self.current_term
        )
        if term > self.current_term:
            self.current_term = term
            self.voted_for = None
            self.persist_term_vote(ctx)
        self.role = FOLLOWER
        self.pre_candidate = False
        self.votes = set()
        self.version += 1
        ctx.cancel_timer("heartbeat")
        ctx.cancel_timer("check-quorum")
        ctx.cancel_timer("vote-resend")
        if was_leader:
            self.leader_id = None
            ctx.record("stepped-down", term=self.current_term)
            self.reset_election_timer(ctx)

    # ------------------------------------------------------------------ timers
    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "election":
            if self.role != LEADER:
                if self.prevote:
                    self.start_pre_vote(ctx)
                else:
                    self.start_election(ctx)
        elif name == "heartbeat":
            if self.role == LEADER:
                self.broadcast_append_entries(ctx)
                ctx.set_timer("heartbeat", self.heartbeat)
        elif name == "vote-resend":
            if self.role == CANDIDATE:
                rv = self.request_vote(ctx, pre_vote=False)
                for peer in ctx.peers:
                    if peer not in self.votes:
                        ctx.send(peer, rv)
                ctx.set_timer("vote-resend", self.heartbeat)
        elif name == "check-quorum":
            if self.role == LEADER:
                # CheckQuorum: a leader that has not heard from a majority within an election
                # timeout steps down, so clients stop waiting on a leader cut off from the rest
                if len(self.heard_from) + 1 < self.majority:
                    self.become_follower(ctx, self.current_term)
                    return
                self.heard_from = set()
                ctx.set_timer("check-quorum", self.et_max)

    def request_vote(self, ctx: Context, pre_vote: bool) -> RequestVote:
        last_index, last_term = self.last_log()
        term = self.current_term + 1 if pre_vote else self.current_term
        return RequestVote(term, ctx.id, last_index, last_term, pre_vote)

    def start_pre_vote(self, ctx: Context) -> None:
        """PreVote: ask whether an election could be won before disrupting anyone's term."""
        self.pre_candidate = True
        self.pre_votes = {ctx.id}
        self.version += 1
        ctx.broadcast(self.request_vote(ctx, pre_vote=True))
        self.reset_election_timer(ctx)
        if len(self.pre_votes) >= self.majority:
            self.start_election(ctx)

    def start_election(self, ctx: Context) -> None:
        self.pre_candidate = False
        self.role = CANDIDATE
        self.current_term += 1
        self.voted_for = ctx.id
        self.votes = {ctx.id}
        self.leader_id = None
        self.version += 1
        self.persist_term_vote(ctx)
        ctx.record("became-candidate", term=self.current_term)
        ctx.broadcast(self.request_vote(ctx, pre_vote=False))
        self.reset_election_timer(ctx)
        ctx.set_timer("vote-resend", self.heartbeat)
        if len(self.votes) >= self.majority:
            self.become_leader(ctx)

    def become_leader(self, ctx: Context) -> None:
        self.role = LEADER
        self.leader_id = ctx.id
        self.version += 1
        ctx.record("became-leader", term=self.current_term)
        n = self.last_index()
        # Figure 8: a new leader holding entries of earlier terms it may not count replicas of
        ctx.sometimes(
            "raft: leader elected with an uncommitted entry of an older term",
            any(self.term_at(i) < self.current_term for i in range(self.commit_index + 1, n + 1)),
        )
        self.next_index = {p: n + 1 for p in ctx.peers}
        self.match_index = {p: 0 for p in ctx.peers}
        self.heard_from = set()
        ctx.cancel_timer("election")
        ctx.cancel_timer("vote-resend")
        self.broadcast_append_entries(ctx)
        ctx.set_timer("heartbeat", self.heartbeat)
        if self.check_quorum:
            ctx.set_timer("check-quorum", self.et_max)

    # ------------------------------------------------------------------ messages
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is AppendEntries:
            self.on_append_entries(ctx, src, msg)
        elif t is AppendEntriesReply:
            self.on_append_entries_reply(ctx, src, msg)
        elif t is RequestVote:
            self.on_request_vote(ctx, src, msg)
        elif t is RequestVoteReply:
            self.on_request_vote_reply(ctx, src, msg)
        elif t is ClientRequest:
            self.on_client_request(ctx, msg)
        elif t is InstallSnapshot:
            self.on_install_snapshot(ctx, src, msg)

    def log_up_to_date(self, ctx: Context, last_index: int, last_term: int) -> bool:
        """5.4.1: the candidate's log is at least as up to date as ours."""
        my_index, my_term = self.last_log()
        if ctx.bug == "log-length-vote":
            return last_index >= my_index  # the bug: length alone, ignoring the last term
        if last_term != my_term:
            return last_term > my_term
        return last_index >= my_index

    def on_request_vote(self, ctx: Context, src: str, m: RequestVote) -> None:
        if m.pre_vote:
            # Grant a pre-vote if a real election could be won: the proposed term is newer, the
            # log is up to date, and we have not heard from a live leader lately.
            recent = ctx.now - self.last_leader_contact < self.et_min
            granted = (
                m.term > self.current_term
                and not (recent and self.leader_id is not None)
                and self.log_up_to_date(ctx, m.last_log_index, m.last_log_term)
            )
            ctx.send(src, RequestVoteReply(m.term if granted else self.current_term, granted, True))
            return
        if m.term > self.current_term:
            self.become_follower(ctx, m.term)
        granted = False
        free = self.voted_for is None or self.voted_for == m.candidate
        if m.term == self.current_term:
            # 5.4.1 (Leader Completeness) and 5.2 (one vote per term)
            ctx.sometimes(
                "raft: vote denied to a candidate with an out-of-date log",
                free and not self.log_up_to_date(ctx, m.last_log_index, m.last_log_term),
            )
            ctx.sometimes("raft: vote denied, already voted for another in this term", not free)
        if (
            m.term == self.current_term
            and free
            and self.log_up_to_date(ctx, m.last_log_index, m.last_log_term)
        ):
            granted = True
            self.voted_for = m.candidate
            self.version += 1
            self.persist_term_vote(ctx)  # durable before the reply leaves
            self.reset_election_timer(ctx)
        ctx.send(src, RequestVoteReply(self.current_term, granted, False))

    def on_request_vote_reply(self, ctx: Context, src: str, m: RequestVoteReply) -> None:
        if m.pre_vote:
            if not self.pre_candidate or self.role == LEADER:
                return
            if m.granted and m.term == self.current_term + 1:
                self.pre_votes.add(src)
                if len(self.pre_votes) >= self.majority:
                    self.start_election(ctx)
            elif not m.granted and m.term > self.current_term:
                self.become_follower(ctx, m.term)
            return
        if m.term > self.current_term:
            self.become_follower(ctx, m.term)
            return
        if self.role != CANDIDATE or m.term != self.current_term or not m.granted:
            return
        self.votes.add(src)
        if len(self.votes) >= self.majority:
            self.become_leader(ctx)

    def on_append_entries(self, ctx: Context, src: str, m: AppendEntries) -> None:
        if m.term < self.current_term:
            ctx.send(src, AppendEntriesReply(self.current_term, False, 0, 0))
            return
        if m.term > self.current_term or self.role != FOLLOWER:
            self.become_follower(ctx, m.term)
        self.leader_id = m.leader
        self.pre_candidate = False
        self.last_leader_contact = ctx.now
        self.reset_election_timer(ctx)
        last_new = m.prev_index + len(m.entries)
        prev_index, prev_term, entries = m.prev_index, m.prev_term, m.entries
        if prev_index < self.snap_index:
            # the start is compacted here: it is committed, so it matches; skip to the snapshot
            skip = self.snap_index - prev_index
            if skip >= len(entries):
                ctx.send(src, AppendEntriesReply(self.current_term, True, last_new, 0))
                return
            prev_index, prev_term = self.snap_index, entries[skip - 1].term
            entries = entries[skip:]
        # consistency check (Figure 2, receiver implementation 2)
        last = self.last_index()
        if prev_index > last or self.term_at(prev_index) != prev_term:
            ctx.sometimes("raft: AppendEntries fails the log consistency check")
            hint = min(prev_index, last + 1)
            ctx.send(src, AppendEntriesReply(self.current_term, False, 0, max(1, hint)))
            return
        changed = False
        new_from = None
        for i, entry in enumerate(entries):
            index = prev_index + 1 + i
            if index <= self.last_index():
                if self.term_at(index) == entry.term:
                    continue  # already have it: never truncate without a conflict
                ctx.sometimes("raft: follower truncates a conflicting suffix")
                self.truncate(ctx, index)
            self.log.extend(entries[i:])
            new_from = index
            changed = True
            break
        if ctx.bug == "stale-ae-truncate" and self.last_index() > last_new:
            # the bug: treat everything past this (possibly stale) message as a conflict
            self.truncate(ctx, last_new + 1)
            changed = True
        if changed:
            self.version += 1
            self.persist_log(ctx)  # durable before the reply leaves
            if new_from is not None:
                ctx.record(
                    "accept",
                    term=self.current_term,
                    log_index=new_from,
                    entries=[
                        [e.term, command_json(e.command)]
                        for e in self.log[new_from - self.snap_index - 1 :]
                    ],
                )
        if m.leader_commit > self.commit_index:
            new_commit = min(m.leader_commit, last_new)
            if new_commit > self.commit_index:
                self.set_commit(ctx, new_commit)
        ctx.send(src, AppendEntriesReply(self.current_term, True, last_new, 0))

    def truncate(self, ctx: Context, index: int) -> None:
        dropped = self.last_index() - (index - 1)
        del self.log[index - self.snap_index - 1 :]
        ctx.record("truncate", term=self.current_term, log_index=index, dropped=dropped)

    def on_append_entries_reply(self, ctx: Context, src: str, m: AppendEntriesReply) -> None:
        if m.term > self.current_term:
            self.become_follower(ctx, m.term)
            return
        if self.role != LEADER or m.term != self.current_term:
            return
        self.heard_from.add(src)
        if m.success:
            if m.match_index > self.match_index[src]:
                self.match_index[src] = m.match_index
                self.version += 1
            self.next_index[src] = max(self.next_index[src], self.match_index[src] + 1)
            self.advance_commit(ctx)
        else:
            self.next_index[src] = max(
                self.match_index[src] + 1, min(m.hint, self.last_index() + 1)
            )
            self.send_append_entries(ctx, src)

    def send_append_entries(self, ctx: Context, peer: str) -> None:
        prev = self.next_index[peer] - 1
        if prev < self.snap_index:
            # what the follower needs next is compacted: send the snapshot instead (section 7)
            ctx.send(
                peer,
                InstallSnapshot(
                    self.current_term,
                    ctx.id,
                    self.snap_index,
                    self.snap_term,
                    self.snapshot_data(),
                ),
            )
            return
        ctx.send(
            peer,
            AppendEntries(
                self.current_term,
                ctx.id,
                prev,
                self.term_at(prev),
                tuple(self.log[prev - self.snap_index :]),
                self.commit_index,
            ),
        )

    def broadcast_append_entries(self, ctx: Context) -> None:
        for peer in ctx.peers:
            self.send_append_entries(ctx, peer)

    def advance_commit(self, ctx: Context) -> None:
        """Figure 2, rules for leaders: the largest N > commitIndex held by a majority with
        log[N].term == currentTerm (5.4.2: never by counting replicas of an older term)."""
        for n in range(self.last_index(), self.commit_index, -1):
            if self.term_at(n) != self.current_term and ctx.bug != "figure8":
                break  # older entries commit indirectly, through this term's entries
            holders = 1 + sum(1 for p in ctx.peers if self.match_index[p] >= n)
            if holders >= self.majority:
                # 5.4.2: entries of older terms commit indirectly, through this term's
                ctx.sometimes(
                    "raft: older-term entries committed through a current-term entry",
                    self.term_at(self.commit_index + 1) < self.current_term
                    and self.commit_index >= self.snap_index,
                )
                self.set_commit(ctx, n)
                return

    def set_commit(self, ctx: Context, index: int) -> None:
        self.commit_index = index
        self.version += 1
        ctx.record("commit", term=self.current_term, log_index=index)
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            self.apply(ctx, self.last_applied, self.entry(self.last_applied))
        if self.snapshot_every and self.last_applied - self.snap_index >= self.snapshot_every:
            self.take_snapshot(ctx)

    # ------------------------------------------------------------------ snapshots (section 7)
    def snapshot_data(self) -> tuple:
        return (tuple(sorted(self.kv.items())), tuple(sorted(self.sessions.items())))

    def load_state_machine(self, data: tuple) -> None:
        kv, sessions = data
        self.kv = dict(kv)
        self.sessions = dict(sessions)

    def take_snapshot(self, ctx: Context) -> None:
        """Compact the applied prefix of the log into a snapshot of the state machine."""
        index = self.last_applied
        term = self.term_at(index)
        del self.log[: index - self.snap_index]
        self.snap_index, self.snap_term = index, term
        self.version += 1
        ctx.storage.put("snapshot", (index, term, self.snapshot_data()))
        self.persist_log(ctx)
        ctx.record("snapshot", term=self.current_term, log_index=index, snapshot_term=term)

    def on_install_snapshot(self, ctx: Context, src: str, m: InstallSnapshot) -> None:
        if m.term < self.current_term:
            ctx.send(src, AppendEntriesReply(self.current_term, False, 0, 0))
            return
        if m.term > self.current_term or self.role != FOLLOWER:
            self.become_follower(ctx, m.term)
        self.leader_id = m.leader
        self.pre_candidate = False
        self.last_leader_contact = ctx.now
        self.reset_election_timer(ctx)
        if m.last_index > self.last_applied:
            ctx.sometimes("raft: snapshot installed on a lagging follower")
            if m.last_index <= self.last_index() and self.term_at(m.last_index) == m.last_term:
                del self.log[: m.last_index - self.snap_index]  # keep what follows it
            else:
                self.log = []  # the snapshot replaces the whole log
            self.snap_index, self.snap_term = m.last_index, m.last_term
            self.load_state_machine(m.data)
            self.last_applied = m.last_index
            self.commit_index = max(self.commit_index, m.last_index)
            self.version += 1
            ctx.storage.put("snapshot", (m.last_index, m.last_term, m.data))
            self.persist_log(ctx)
            ctx.record(
                "install-snapshot",
                term=self.current_term,
                log_index=m.last_index,
                snapshot_term=m.last_term,
            )
        ctx.send(src, AppendEntriesReply(self.current_term, True, m.last_index, 0))

    # ------------------------------------------------------------------ the state machine
    def apply(self, ctx: Context, index: int, entry: Entry) -> None:
        ctx.record("apply", log_index=index, term=entry.term, command=command_json(entry.command))
        cmd = entry.command
        if cmd is None:
            return
        client, seq, f, key, value = cmd
        session = self.sessions.get(client)
        if session is not None and seq <= session[0] and ctx.bug != "no-dedup":
            if seq < session[0]:
                return  # a retry of an operation the client has moved past
            result = session[1]  # a retry of the last operation: answer, do not re-apply
            ctx.sometimes("raft: a retried command is applied once, answered from the session")
        else:
            result = self.execute(f, key, value)
            self.sessions[client] = (seq, result)
        if self.role == LEADER:
            ctx.send(client, ClientReply(seq, result[0], result[1]))

    def execute(self, f: str, key: str, value: Any) -> tuple[bool, Any]:
        kv = self.kv
        if f == "get":
            return True, kv.get(key, "")
        if f == "put":
            kv[key] = value
            return True, value
        if f == "append":
            kv[key] = kv.get(key, "") + value
            return True, value
        if f == "cas":
            old, new = value
            if kv.get(key, "") == (old or ""):
                kv[key] = new
                return True, tuple(value)
            return False, tuple(value)
        raise ValueError(f"unknown operation {f!r}")

    def on_client_request(self, ctx: Context, m: ClientRequest) -> None:
        if self.role != LEADER:
            ctx.send(m.client, NotLeader(m.seq, self.leader_id))
            return
        if ctx.bug == "local-read" and m.f == "get":
            # the bug: answer a read from this leader's own state machine, without checking it
            # is still the leader (no log entry, no read-index round): a deposed leader that has
            # not heard of its successor returns stale data
            ctx.send(m.client, ClientReply(m.seq, True, self.kv.get(m.key, "")))
            return
        session = self.sessions.get(m.client)
        if session is not None and ctx.bug != "no-dedup":
            if m.seq < session[0]:
                return
            if m.seq == session[0]:
                res = session[1]
                ctx.send(m.client, ClientReply(m.seq, res[0], res[1]))
                return
        value = tuple(m.value) if isinstance(m.value, list) else m.value
        entry = Entry(self.current_term, (m.client, m.seq, m.f, m.key, value))
        self.log.append(entry)
        self.version += 1
        self.persist_log(ctx)
        ctx.record(
            "append",
            term=self.current_term,
            log_index=self.last_index(),
            command=command_json(entry.command),
        )
        self.broadcast_append_entries(ctx)
        self.advance_commit(ctx)  # a single-server cluster commits at once


# ---------------------------------------------------------------------------------------- client
class RaftClient(Node):
    """Runs ``ops`` operations one at a time on a few keys. Sends to the last known leader,
    follows leader hints, retries with the same sequence number on timeout, and gives up with
    ``info`` (outcome unknown) after ``max_tries`` sends."""

    def __init__(
        self,
        ops: int,
        timeout: int,
        max_tries: int,
        keys: int,
        backoff: int = 6,
        op: str = "mixed",
        think: int = 10,
    ) -> None:
        self.ops_left = ops
        # "mixed": draw get/put/append/cas (3/2/4/1 in 10); else always this operation, with no
        # draw (exhaustive runs: the draw would multiply the state space by the kinds)
        self.op = op
        self.think = think  # the pause before an operation is drawn in [1, think] (0: none)
        self.timeout = timeout
        self.backoff = backoff
        self.max_tries = max_tries
        self.keys = [chr(ord("x") + i) if i < 3 else f"k{i}" for i in range(keys)]
        self.seq = 0
        self.current: ClientRequest | None = None
        self.tries = 0
        self.leader: str | None = None
        self.seen: dict[str, str] = {}

    def state(self) -> Any:
        return (
            self.ops_left,
            self.seq,
            self.current,
            self.tries,
            self.leader,
            frozenset(self.seen.items()),
        )

    def pause(self, ctx: Context) -> int:
        return ctx.random.randint(1, self.think) if self.think > 1 else 1

    def on_start(self, ctx: Context) -> None:
        if self.think <= 0:
            # no pause (exhaustive runs): in an asynchronous world the request is in flight for
            # an arbitrary time anyway, so a think timer would add only interleavings
            self.invoke(ctx)
            return
        ctx.set_timer("think", self.pause(ctx))

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "think":
            self.invoke(ctx)
        elif name == "timeout" and self.current is not None:
            self.leader = None  # the server we tried did not answer: try someone else
            self.retry(ctx)
        elif name == "tail":
            # the binding's quiet tail: the faults stopped; one more operation, which a
            # stable leader must answer (the progress check)
            self.ops_left += 1
            if self.current is None and not ctx.timer_pending("think"):
                self.invoke(ctx)

    def invoke(self, ctx: Context) -> None:
        if self.ops_left <= 0:
            return
        self.ops_left -= 1
        self.seq += 1
        key = ctx.random.choice(self.keys) if len(self.keys) > 1 else self.keys[0]
        kind = ctx.random.randint(0, 9) if self.op == "mixed" else -1
        tag = f"{ctx.id}.{self.seq} "
        if kind < 0:
            f = self.op
            value = None if f == "get" else [self.seen.get(key, ""), tag] if f == "cas" else tag
        elif kind < 3:
            f, value = "get", None
        elif kind < 5:
            f, value = "put", tag
        elif kind < 9:
            f, value = "append", tag
        else:
            f, value = "cas", [self.seen.get(key, ""), tag]
        self.current = ClientRequest(ctx.id, self.seq, f, key, value)
        self.tries = 0
        ctx.invoke(f, value, key=key)
        self.retry(ctx)

    def retry(self, ctx: Context) -> None:
        op = self.current
        assert op is not None
        if self.tries >= self.max_tries:
            ctx.sometimes("raft: a client gives up on an operation (info)")
            ctx.info(op.f, op.value, key=op.key)
            self.finish(ctx)
            return
        self.tries += 1
        target = self.leader if self.leader is not None else ctx.random.choice(ctx.servers)
        ctx.send(target, op)
        ctx.set_timer("timeout", self.timeout)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        op = self.current
        if op is None or msg.seq != op.seq:
            return  # late: an operation already finished or given up on
        if type(msg) is NotLeader:
            self.leader = msg.leader if msg.leader != src else None
            if self.leader is not None:
                self.retry(ctx)  # follow the hint at once
            else:
                ctx.set_timer("timeout", self.backoff)  # nobody knows a leader: an election
            return
        self.leader = src
        if op.f == "get":
            self.seen[op.key] = msg.value
            ctx.ok("get", msg.value, key=op.key)
        elif msg.ok:
            ctx.ok(op.f, op.value, key=op.key)
        else:
            ctx.fail(op.f, op.value, key=op.key)  # cas whose expected value did not match
        self.finish(ctx)

    def finish(self, ctx: Context) -> None:
        ctx.cancel_timer("timeout")
        self.current = None
        if self.ops_left > 0:
            if self.think <= 0:
                self.invoke(ctx)
            else:
                ctx.set_timer("think", self.pause(ctx))
