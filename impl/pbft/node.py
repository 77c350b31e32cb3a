"""PBFT replicas and clients, after Castro & Liskov (OSDI 1999; TOCS 2002).

Normal case (section 4.2): the primary of view v (replica ``v mod n``) assigns a sequence number to
a client request and multicasts PRE-PREPARE; backups accept it (right view, in the watermarks, no
other pre-prepare for (v, n), digest matches the request) and multicast PREPARE. A replica is
*prepared* with a pre-prepare and 2f matching prepares from distinct backups, multicasts COMMIT,
and is *committed-local* with 2f+1 matching commits; requests execute in sequence-number order and
the replica replies to the client, who accepts f+1 matching replies.

Checkpoints (4.3): every K executions a replica multicasts CHECKPOINT with its state digest; 2f+1
matching make it stable, which garbage-collects the log and moves the low watermark h (the high
watermark is h + L). A replica behind a stable checkpoint gets the state by transfer, verified
against the checkpoint's digest.

View change (4.4): a backup whose timer expires while a request waits moves to v+1 and multicasts
VIEW-CHANGE with its stable checkpoint proof (C) and its prepared certificates (P). The primary of
v+1 gathers 2f+1, computes O (a pre-prepare in v+1 for every sequence number between the latest
stable checkpoint and the highest prepared one: the request prepared in the highest view, or a
null request) and multicasts NEW-VIEW; replicas check V and recompute O before entering v+1. A
replica that waits in vain doubles its timeout and moves on; f+1 view changes for higher views make
a replica join the smallest of them.

Retransmission (as the authors' BFT library does with status messages): a replica with work
outstanding periodically multicasts STATUS; peers answer with what it lacks: their own protocol
messages of its view, committed certificates for what they executed, state transfer past a stable
checkpoint, the NEW-VIEW of a view it has not entered.
"""

from __future__ import annotations

from typing import Any

from treadle.impl.pbft.messages import (
    GENESIS,
    NULL,
    Bundle,
    Checkpoint,
    Commit,
    CommitCert,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    Reply,
    Request,
    StateTransfer,
    Status,
    ViewChange,
    chain_digest,
    request_digest,
)

from treadle.node import Context, Node


class Replica(Node):
    """A correct PBFT replica."""

    byzantine = False

    def __init__(self) -> None:
        self.view = 0
        self.in_view_change = False
        self.pre_prepares: dict[tuple[int, int], PrePrepare] = {}
        self.prepares: dict[tuple[int, int], dict[str, Prepare]] = {}
        self.commits: dict[tuple[int, int], dict[str, Commit]] = {}
        self.requests: dict[str, Request] = {}  # digest -> request
        self.pending: dict[str, Request] = {}  # received, valid, not executed
        self.assigned: set[str] = set()  # digests the primary gave a number in this view
        self.next_seq = 0
        self.last_exec = 0
        self.log: list[tuple[int, str, Request | None]] = []  # the execution log
        self.states: list[str] = [GENESIS]  # state digest after each seq (index = seq)
        self.last_reply: dict[str, tuple[int, int]] = {}  # client -> (timestamp, result)
        self.applied = 0  # the service: how many client operations were applied
        self.committed: dict[int, tuple[int, str]] = {}  # seq -> (view, digest) committed-local
        self.certs: dict[int, CommitCert] = {}  # committed certificates, until GC
        self.checkpoints: dict[int, dict[str, Checkpoint]] = {}
        self.stable_seq = 0
        self.stable_proof: tuple[Checkpoint, ...] = ()
        self.view_changes: dict[int, dict[str, ViewChange]] = {}
        self.new_views: dict[int, NewView] = {}
        self.vc_timeout = 0
        self.sent_commit: set[tuple[int, int]] = set()

    # ------------------------------------------------------------------ helpers
    def setup(self, ctx: Context) -> None:
        self.me, self.servers = ctx.id, tuple(ctx.servers)  # for describe(): who is primary
        c = ctx.config
        self.f = int(c["f"])
        self.n = len(ctx.servers)
        self.k = int(c["checkpoint_interval"])
        self.window = int(c["watermark_window"])
        self.base_timeout = int(c["view_change_timeout"])
        self.status_interval = int(c["status_interval"])
        weak = ctx.bug == "weak-quorum"
        # the paper's thresholds; the seeded bug lowers each quorum by one (2f instead of 2f+1)
        self.quorum = 2 * self.f + (0 if weak else 1)
        self.prepare_quorum = 2 * self.f - (1 if weak else 0)
        self.vc_timeout = self.vc_timeout or self.base_timeout

    def primary(self, ctx: Context, view: int) -> str:
        return ctx.servers[view % self.n]

    def in_window(self, seq: int) -> bool:
        return self.stable_seq < seq <= self.stable_seq + self.window

    def state(self) -> Any:
        return (
            self.view,
            self.in_view_change,
            tuple(sorted(self.pre_prepares.items())),
            tuple(sorted((k, tuple(sorted(v))) for k, v in self.prepares.items())),
            tuple(sorted((k, tuple(sorted(v))) for k, v in self.commits.items())),
            tuple(sorted(self.pending)),
            self.last_exec,
            self.stable_seq,
            tuple(sorted((k, tuple(sorted(v))) for k, v in self.view_changes.items())),
            tuple(sorted(self.new_views)),
            # the rest decides what the replica does next (exhaustive search must not merge
            # states that differ in it)
            tuple(sorted(self.requests.items())),
            tuple(sorted(self.assigned)),
            self.next_seq,
            tuple(self.log),
            tuple(self.states),
            tuple(sorted(self.last_reply.items())),
            self.applied,
            tuple(sorted(self.committed.items())),
            tuple(sorted(self.certs.items())),
            tuple(sorted((k, tuple(sorted(v))) for k, v in self.checkpoints.items())),
            self.stable_proof,
            self.vc_timeout,
            tuple(sorted(self.sent_commit)),
        )

    def describe(self) -> dict[str, Any]:
        """For the study page: view, status, water marks, checkpoint, phase per sequence number
        (:mod:`treadle.impl.pbft.describe`)."""
        from treadle.impl.pbft.describe import describe_replica

        return describe_replica(self)

    def send(self, ctx: Context, dst: str, msg: Any) -> None:
        ctx.send(dst, msg)

    def multicast(self, ctx: Context, msg: Any) -> None:
        for dst in ctx.peers:
            self.send(ctx, dst, msg)

    def reply(self, ctx: Context, reply: Reply) -> None:
        self.send(ctx, reply.client, reply)

    def want_status(self, ctx: Context) -> None:
        if not ctx.timer_pending("status"):
            ctx.set_timer("status", self.status_interval)

    def start_request_timer(self, ctx: Context) -> None:
        """While a request waits, a timer runs: in a view, for its execution; during a view
        change, for the NEW-VIEW."""
        if self.pending and not ctx.timer_pending("view-change"):
            ctx.set_timer("view-change", self.vc_timeout)

    # ------------------------------------------------------------------ lifecycle
    def on_start(self, ctx: Context) -> None:
        self.setup(ctx)
        st = ctx.storage
        self.view = st.get("view", 0)
        self.in_view_change = st.get("in_view_change", False)
        self.restore(ctx)
        ctx.record("replica", f=self.f, byzantine=self.byzantine)
        self.execute_ready(ctx)
        for (_, seq), pp in sorted(self.pre_prepares.items()):
            req = self.requests.get(pp.digest)
            if seq > self.last_exec and req is not None:
                self.note_request(ctx, req)  # what we accepted and did not execute still waits
        if self.pending:
            self.start_request_timer(ctx)
            self.want_status(ctx)
        if self.in_view_change:
            ctx.set_timer("view-change", self.vc_timeout)
            self.want_status(ctx)

    def restore(self, ctx: Context) -> None:
        """After a crash: everything a correct replica has said or accepted is durable (a replica
        that forgot its prepares or view changes would count as faulty)."""
        st = ctx.storage
        for key, value in st.items():
            if not isinstance(key, tuple):
                continue
            kind = key[0]
            if kind == "pp":
                self.pre_prepares[(key[1], key[2])] = value
            elif kind == "req":
                self.requests[key[1]] = value
            elif kind == "wait":
                # the request queue: requests accepted and not yet executed (their timer runs,
                # a view change relays them); losing it in a crash lost client requests
                self.pending[key[1]] = value
            elif kind == "prep":
                self.prepares.setdefault((value.view, value.seq), {})[value.sender] = value
            elif kind == "commit":
                self.commits.setdefault((value.view, value.seq), {})[value.sender] = value
                if value.sender == ctx.id:
                    self.sent_commit.add((value.view, value.seq))
            elif kind == "cp":
                self.checkpoints.setdefault(value.seq, {})[value.sender] = value
            elif kind == "vc":
                self.view_changes.setdefault(value.view, {})[value.sender] = value
            elif kind == "nv":
                self.new_views[value.view] = value
        for seq, digest, req in st.get("log", ()):
            self.execute_entry(ctx, seq, digest, req, replay=True)
        self.stable_seq, self.stable_proof = st.get("stable", (0, ()))
        self.next_seq = st.get("next_seq", 0)
        for view, seq in sorted(self.pre_prepares):
            if seq > self.last_exec and self.committed_local(view, seq) is not None:
                self.committed[seq] = (view, self.pre_prepares[(view, seq)].digest)

    def log_vote(self, ctx: Context, table: dict, kind: str, vote: Any) -> None:
        """Keep a prepare or commit (the first per sender and (view, seq)), durably."""
        votes = table.setdefault((vote.view, vote.seq), {})
        if vote.sender not in votes:
            votes[vote.sender] = vote
            ctx.storage.put((kind, vote.view, vote.seq, vote.sender), vote)

    def log_checkpoint(self, ctx: Context, cp: Checkpoint) -> None:
        votes = self.checkpoints.setdefault(cp.seq, {})
        if cp.sender not in votes:
            votes[cp.sender] = cp
            ctx.storage.put(("cp", cp.seq, cp.sender), cp)

    def log_view_change(self, ctx: Context, vc: ViewChange) -> None:
        votes = self.view_changes.setdefault(vc.view, {})
        if vc.sender not in votes:
            votes[vc.sender] = vc
            ctx.storage.put(("vc", vc.view, vc.sender), vc)

    # ------------------------------------------------------------------ dispatch
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if type(msg) is not Bundle:
            self.handle(ctx, src, msg)
            return
        records = msg.records
        i = 0
        while i < len(records):
            rec = records[i]
            nxt = records[i + 1] if i + 1 < len(records) else None
            if type(rec) is PrePrepare and type(nxt) is Request:
                self.on_pre_prepare(ctx, rec, nxt)  # a pre-prepare with its request
                i += 2
                continue
            self.handle(ctx, src, rec)
            i += 1

    def handle(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is Request:
            self.on_request(ctx, src, msg)
        elif t is PrePrepare:
            self.on_pre_prepare(ctx, msg, None)
        elif t is Prepare:
            self.on_prepare(ctx, msg)
        elif t is Commit:
            self.on_commit(ctx, msg)
        elif t is Checkpoint:
            self.on_checkpoint(ctx, msg)
        elif t is ViewChange:
            self.on_view_change(ctx, msg)
        elif t is NewView:
            self.on_new_view(ctx, msg)
        elif t is CommitCert:
            self.on_commit_cert(ctx, msg)
        elif t is StateTransfer:
            self.on_state_transfer(ctx, msg)
        elif t is Status:
            self.on_status(ctx, msg)

    # ------------------------------------------------------------------ requests
    def valid_request(self, ctx: Context, req: Any) -> bool:
        """Only clients issue requests (a replica cannot sign as a client)."""
        return type(req) is Request and req.client in ctx.clients

    def on_request(self, ctx: Context, src: str, req: Request) -> None:
        if not self.valid_request(ctx, req):
            return
        last = self.last_reply.get(req.client)
        if last is not None and req.timestamp <= last[0]:
            if req.timestamp == last[0]:  # a retransmission: reply again
                self.reply(ctx, Reply(self.view, last[0], req.client, last[1], ctx.id))
            return
        d = request_digest(req)
        if d not in self.requests:
            self.remember_request(ctx, d, req)
        if self.in_view_change:
            self.note_request(ctx, req)
            return
        if self.primary(ctx, self.view) == ctx.id:
            self.note_request(ctx, req)
            self.assign(ctx)
        else:
            if src == req.client:  # relay to the primary
                self.send(ctx, self.primary(ctx, self.view), req)
            self.note_request(ctx, req)

    def assign(self, ctx: Context) -> None:
        """The primary gives sequence numbers to waiting requests, within the watermarks."""
        for d in sorted(self.pending, key=lambda x: (self.pending[x].timestamp, x)):
            if d in self.assigned:
                continue
            if not self.in_window(self.next_seq + 1):
                break
            self.next_seq += 1
            ctx.storage.put("next_seq", self.next_seq)
            pp = PrePrepare(self.view, self.next_seq, d, ctx.id)
            self.assigned.add(d)
            self.accept_pre_prepare(ctx, pp, self.pending[d])
            self.send_pre_prepare(ctx, pp, self.pending[d])
        self.start_request_timer(ctx)
        if self.pending:
            self.want_status(ctx)

    def send_pre_prepare(self, ctx: Context, pp: PrePrepare, req: Request | None) -> None:
        self.multicast(ctx, Bundle((pp, req)) if req is not None else pp)

    # ------------------------------------------------------------------ normal case
    def view_ok(self, view: int, ctx: Context) -> bool:
        if ctx.bug == "accept-any-view":
            return True  # seeded bug: messages of any view are taken as current
        return view == self.view and not self.in_view_change

    def on_pre_prepare(self, ctx: Context, pp: PrePrepare, req: Any) -> None:
        if not self.view_ok(pp.view, ctx):
            return
        if pp.sender != self.primary(ctx, pp.view) or pp.sender == ctx.id:
            # the seeded bug takes a pre-prepare from any other replica: a faulty backup may
            # then order requests itself (its own prepare counts too, so 2f matching prepares
            # may come from one correct replica and the faulty one)
            if ctx.bug != "accept-pre-prepare-from-backup" or pp.sender == ctx.id:
                ctx.sometimes(
                    "pbft: a backup ignores a pre-prepare from a replica that is not the primary",
                    pp.sender != self.primary(ctx, pp.view),
                )
                return
        if not self.in_window(pp.seq):
            return
        if pp.digest != NULL:
            if req is None:
                req = self.requests.get(pp.digest)
            if req is None or not self.valid_request(ctx, req):
                return
            if request_digest(req) != pp.digest and ctx.bug != "no-digest-check":
                return
        old = self.pre_prepares.get((pp.view, pp.seq))
        if old is not None:
            return  # at most one pre-prepare per (view, seq): the rest is equivocation
        self.accept_pre_prepare(ctx, pp, req)
        if req is not None and pp.digest != NULL:
            self.note_request(ctx, req)
        prepare = Prepare(pp.view, pp.seq, pp.digest, ctx.id)
        self.log_vote(ctx, self.prepares, "prep", prepare)
        self.multicast(ctx, prepare)
        self.progress(ctx, pp.view, pp.seq)

    def accept_pre_prepare(self, ctx: Context, pp: PrePrepare, req: Request | None) -> None:
        key = (pp.view, pp.seq)
        self.pre_prepares[key] = pp
        ctx.storage.put(("pp", pp.view, pp.seq), pp)
        if req is not None and pp.digest != NULL:
            # keyed by the pre-prepare's digest: with the digest check this is D(req)
            self.requests[pp.digest] = req
            ctx.storage.put(("req", pp.digest), req)

    def remember_request(self, ctx: Context, digest: str, req: Request) -> None:
        self.requests[digest] = req
        ctx.storage.put(("req", digest), req)

    def note_request(self, ctx: Context, req: Request) -> None:
        """A client request this replica now waits for (its view-change timer runs)."""
        last = self.last_reply.get(req.client)
        if last is not None and req.timestamp <= last[0]:
            return
        d = request_digest(req)
        if d not in self.requests:
            self.remember_request(ctx, d, req)
        if d not in self.pending:
            self.pending[d] = req
            ctx.storage.put(("wait", d), req)
            ctx.record("request", client=req.client, timestamp=req.timestamp, op=req.op, digest=d)
        self.start_request_timer(ctx)
        self.want_status(ctx)

    def forget_waiting(self, ctx: Context, digest: str, replay: bool) -> None:
        if self.pending.pop(digest, None) is not None and not replay:
            ctx.storage.delete(("wait", digest))

    def on_prepare(self, ctx: Context, p: Prepare) -> None:
        if not self.view_ok(p.view, ctx) or not self.in_window(p.seq):
            return
        if p.sender == self.primary(ctx, p.view) or p.sender not in ctx.servers:
            return
        self.log_vote(ctx, self.prepares, "prep", p)
        self.progress(ctx, p.view, p.seq)
        if p.seq > self.last_exec:
            self.want_status(ctx)

    def on_commit(self, ctx: Context, c: Commit) -> None:
        if not self.view_ok(c.view, ctx) or not self.in_window(c.seq):
            return
        if c.sender not in ctx.servers:
            return
        self.log_vote(ctx, self.commits, "commit", c)
        self.progress(ctx, c.view, c.seq)
        if c.seq > self.last_exec:
            self.want_status(ctx)

    def prepared(self, view: int, seq: int) -> PrePrepare | None:
        """prepared(m, v, n, i): the pre-prepare and 2f matching prepares from distinct backups."""
        pp = self.pre_prepares.get((view, seq))
        if pp is None:
            return None
        votes = self.prepares.get((view, seq), {})
        count = sum(1 for p in votes.values() if p.digest == pp.digest)
        return pp if count >= self.prepare_quorum else None

    def committed_local(self, view: int, seq: int) -> PrePrepare | None:
        """committed-local(m, v, n, i): prepared and 2f+1 matching commits."""
        pp = self.prepared(view, seq)
        if pp is None:
            return None
        votes = self.commits.get((view, seq), {})
        count = sum(1 for c in votes.values() if c.digest == pp.digest)
        return pp if count >= self.quorum else None

    def progress(self, ctx: Context, view: int, seq: int) -> None:
        pp = self.prepared(view, seq)
        if pp is None:
            return
        if (view, seq) not in self.sent_commit:
            self.sent_commit.add((view, seq))
            commit = Commit(view, seq, pp.digest, ctx.id)
            self.log_vote(ctx, self.commits, "commit", commit)
            self.multicast(ctx, commit)
        if seq in self.committed or seq <= self.last_exec:
            return
        if self.committed_local(view, seq) is not None:
            votes = self.commits[(view, seq)]
            proof = tuple(votes[s] for s in sorted(votes) if votes[s].digest == pp.digest)
            req = self.requests.get(pp.digest) if pp.digest != NULL else None
            self.certs[seq] = CommitCert(pp, req, proof)
            self.committed[seq] = (view, pp.digest)
            self.execute_ready(ctx)

    # ------------------------------------------------------------------ execution
    def execute_ready(self, ctx: Context) -> None:
        executed = False
        while self.last_exec + 1 in self.committed:
            seq = self.last_exec + 1
            view, digest = self.committed[seq]
            req = self.requests.get(digest) if digest != NULL else None
            if digest != NULL and req is None:
                break  # the request itself has not arrived yet
            del self.committed[seq]
            self.execute_entry(ctx, seq, digest, req, replay=False, view=view)
            executed = True
        if executed and not self.in_view_change:
            ctx.cancel_timer("view-change")
            self.vc_timeout = self.base_timeout
            self.start_request_timer(ctx)

    def execute_entry(
        self,
        ctx: Context,
        seq: int,
        digest: str,
        req: Request | None,
        replay: bool,
        transferred: bool = False,
        view: int | None = None,
    ) -> None:
        """Execute the request at ``seq`` (exactly once per client timestamp) and reply."""
        self.last_exec = seq
        self.log.append((seq, digest, req))
        self.states.append(chain_digest(self.states[-1], seq, digest))
        result = None
        if req is not None:
            last = self.last_reply.get(req.client)
            if last is None or req.timestamp > last[0]:
                self.applied += 1
                self.last_reply[req.client] = (req.timestamp, self.applied)
            result = self.last_reply[req.client]
            # leave the queue: this request, and the client's older ones it superseded (a
            # client's timestamps only grow, so those can never take effect; waiting for them
            # would run this replica into view change after view change alone)
            done = [d for d, r in self.pending.items() if r.client == req.client]
            newest = result[0]
            for d in sorted(done):
                if self.pending[d].timestamp <= newest:
                    self.forget_waiting(ctx, d, replay)
            self.forget_waiting(ctx, digest, replay)
        if replay:
            return
        ctx.storage.put("log", tuple(self.log))
        # the result this replica answers with (None: an older timestamp of the client, which
        # takes no effect and gets no reply); the client-side check compares accepted results
        # with these
        answer = None
        if req is not None and result is not None and result[0] == req.timestamp:
            answer = result[1]
        ctx.record(
            "execute",
            view=self.view if view is None else view,
            seq=seq,
            digest=digest,
            request=req.as_list() if req is not None else None,
            transferred=transferred,
            result=answer,
        )
        if req is not None and answer is not None:
            self.reply(ctx, Reply(self.view, req.timestamp, req.client, answer, ctx.id))
        if seq % self.k == 0:
            cp = Checkpoint(seq, self.states[seq], ctx.id)
            self.log_checkpoint(ctx, cp)
            self.multicast(ctx, cp)
            self.check_stable(ctx, seq)

    # ------------------------------------------------------------------ checkpoints
    def on_checkpoint(self, ctx: Context, cp: Checkpoint) -> None:
        if cp.seq <= self.stable_seq or cp.sender not in ctx.servers:
            return
        self.log_checkpoint(ctx, cp)
        self.check_stable(ctx, cp.seq)

    def checkpoint_proof(self, seq: int, state: str) -> tuple[Checkpoint, ...]:
        votes = self.checkpoints.get(seq, {})
        return tuple(votes[s] for s in sorted(votes) if votes[s].state == state)

    def check_stable(self, ctx: Context, seq: int) -> None:
        if seq <= self.stable_seq:
            return
        votes = self.checkpoints.get(seq, {})
        by_state: dict[str, int] = {}
        for cp in votes.values():
            by_state[cp.state] = by_state.get(cp.state, 0) + 1
        for state in sorted(by_state):
            if by_state[state] < self.quorum:
                continue
            proof = self.checkpoint_proof(seq, state)
            if seq <= self.last_exec:
                if self.states[seq] == state:
                    self.make_stable(ctx, seq, proof)
            else:
                self.want_status(ctx)  # behind a stable checkpoint: state transfer
            return

    def make_stable(self, ctx: Context, seq: int, proof: tuple[Checkpoint, ...]) -> None:
        """The checkpoint is stable: discard the log up to it, move the watermarks."""
        ctx.sometimes("pbft: a checkpoint becomes stable")
        self.stable_seq = seq
        self.stable_proof = proof
        ctx.storage.put("stable", (seq, proof))
        for table in (self.pre_prepares, self.prepares, self.commits):
            for key in [k for k in table if k[1] <= seq]:
                del table[key]
        for key in [k for k in self.sent_commit if k[1] <= seq]:
            self.sent_commit.discard(key)
        for s in [s for s in self.checkpoints if s < seq]:
            del self.checkpoints[s]
        for s in [s for s in self.certs if s <= seq]:
            del self.certs[s]
        for key, _ in ctx.storage.items():
            if not isinstance(key, tuple):
                continue
            if key[0] in ("pp", "prep", "commit") and key[2] <= seq:
                ctx.storage.delete(key)
            elif key[0] == "cp" and key[1] < seq:
                ctx.storage.delete(key)
        ctx.record("stable-checkpoint", seq=seq)
        if self.primary(ctx, self.view) == ctx.id and not self.in_view_change:
            self.assign(ctx)  # the high watermark moved

    def valid_checkpoint_proof(
        self, ctx: Context, seq: int, proof: tuple[Checkpoint, ...]
    ) -> str | None:
        """The state digest a proof certifies (2f+1 distinct senders, same seq and state)."""
        if seq == 0:
            return GENESIS
        senders = {cp.sender for cp in proof if cp.seq == seq and cp.sender in ctx.servers}
        states = {cp.state for cp in proof}
        if len(states) != 1 or len(senders) < self.quorum or len(senders) != len(proof):
            return None
        return next(iter(states))

    # ------------------------------------------------------------------ catching up
    def on_commit_cert(self, ctx: Context, cert: CommitCert) -> None:
        pp = cert.pre_prepare
        if pp.seq <= self.last_exec:
            return
        if pp.seq in self.committed:
            # committed, but the request itself may be missing (lost in a crash): take it
            req = cert.request
            if (
                self.committed[pp.seq][1] == pp.digest
                and pp.digest not in self.requests
                and req is not None
                and self.valid_request(ctx, req)
                and request_digest(req) == pp.digest
            ):
                self.remember_request(ctx, pp.digest, req)
                self.execute_ready(ctx)
            return
        if pp.sender != self.primary(ctx, pp.view):
            return
        if pp.digest != NULL:
            req = cert.request
            if req is None or not self.valid_request(ctx, req):
                return
            if request_digest(req) != pp.digest and ctx.bug != "no-digest-check":
                return
        senders = {
            c.sender
            for c in cert.commits
            if (c.view, c.seq, c.digest) == (pp.view, pp.seq, pp.digest) and c.sender in ctx.servers
        }
        if len(senders) < self.quorum:
            return
        if cert.request is not None and pp.digest != NULL and pp.digest not in self.requests:
            self.remember_request(ctx, pp.digest, cert.request)
        self.certs[pp.seq] = cert
        self.committed[pp.seq] = (pp.view, pp.digest)
        self.execute_ready(ctx)

    def on_state_transfer(self, ctx: Context, st: StateTransfer) -> None:
        if not st.checkpoints:
            return
        seq = st.checkpoints[0].seq
        state = self.valid_checkpoint_proof(ctx, seq, st.checkpoints)
        if state is None or seq <= self.last_exec or st.start > self.last_exec + 1:
            return
        entries = [e for e in st.entries if e[0] > self.last_exec]
        if not entries or entries[0][0] != self.last_exec + 1 or entries[-1][0] != seq:
            return
        h = self.states[-1]
        for i, (s, d, req) in enumerate(entries):
            if s != self.last_exec + 1 + i:
                return
            if req is not None and (not self.valid_request(ctx, req) or request_digest(req) != d):
                return
            h = chain_digest(h, s, d)
        if h != state:
            return  # does not match what 2f+1 replicas certified
        ctx.sometimes("pbft: a replica catches up by state transfer")
        for s, d, req in entries:
            self.committed.pop(s, None)
            self.execute_entry(ctx, s, d, req, replay=False, transferred=True)
        self.make_stable(ctx, seq, st.checkpoints)
        self.execute_ready(ctx)

    def on_status(self, ctx: Context, st: Status) -> None:
        """Answer a peer's status with what it lacks (only records already signed)."""
        peer = st.sender
        if peer not in ctx.servers or peer == ctx.id:
            return
        out: list[Any] = []
        if self.stable_seq > st.last_executed and self.stable_proof:
            start = st.last_executed + 1
            entries = tuple(e for e in self.log if start <= e[0] <= self.stable_seq)
            out.append(StateTransfer(self.stable_proof, start, entries))
        for seq in sorted(self.certs):
            if seq > st.last_executed:
                out.append(self.certs[seq])
        for seq in sorted(self.checkpoints):  # lost checkpoints would freeze the watermarks
            mine_cp = self.checkpoints[seq].get(ctx.id)
            if seq > st.stable_seq and mine_cp is not None:
                out.append(mine_cp)
        if st.view < self.view and not self.in_view_change and self.view in self.new_views:
            out.append(self.new_views[self.view])
        if st.view == self.view and not st.in_view_change and not self.in_view_change:
            for (v, s), pp in sorted(self.pre_prepares.items()):
                if v != self.view or s <= st.last_executed:
                    continue
                if pp.sender == ctx.id:
                    out.append(pp)
                    req = self.requests.get(pp.digest)
                    if req is not None and pp.digest != NULL:
                        out.append(req)
                mine = self.prepares.get((v, s), {}).get(ctx.id)
                if mine is not None:
                    out.append(mine)
                mine_c = self.commits.get((v, s), {}).get(ctx.id)
                if mine_c is not None:
                    out.append(mine_c)
        if st.in_view_change and st.view == self.view and not self.in_view_change:
            nv = self.new_views.get(self.view)
            if nv is not None:
                out.append(nv)
        if st.in_view_change and st.view >= self.view:
            mine_vc = self.view_changes.get(st.view, {}).get(ctx.id)
            if mine_vc is not None:
                out.append(mine_vc)
        if out:
            self.send(ctx, peer, Bundle(tuple(out)))

    def has_work(self) -> bool:
        if self.pending or self.in_view_change or self.committed:
            return True
        # a number of this view above what we executed: others may be ahead of us
        return any(v == self.view and s > self.last_exec for v, s in self.pre_prepares)

    # ------------------------------------------------------------------ timers
    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "view-change":
            if not self.pending:
                return  # nothing waits: no reason to move (a lone replica would run away)
            if self.in_view_change:
                self.vc_timeout *= 2  # no NEW-VIEW in time: try the next view, wait longer
            self.start_view_change(ctx, self.view + 1)
        elif name == "status":
            if self.has_work():
                self.multicast(
                    ctx,
                    Status(self.view, self.in_view_change, self.last_exec, self.stable_seq, ctx.id),
                )
                waiting = tuple(self.pending[d] for d in sorted(self.pending))
                if self.in_view_change:
                    mine = self.view_changes.get(self.view, {}).get(ctx.id)
                    if mine is not None:
                        self.multicast(ctx, mine)
                    if waiting:  # whoever orders next must know what waits
                        self.multicast(ctx, Bundle(waiting))
                elif waiting and self.primary(ctx, self.view) != ctx.id:
                    self.send(ctx, self.primary(ctx, self.view), Bundle(waiting))
                # back off with the view-change timeout, so a lone replica does not spin
                backoff = max(1, self.vc_timeout // self.base_timeout)
                ctx.set_timer("status", self.status_interval * backoff)

    # ------------------------------------------------------------------ view change
    def prepared_set(self) -> tuple[PreparedCert, ...]:
        """P: for every seq above the stable checkpoint, the certificate prepared in the
        highest view."""
        best: dict[int, PreparedCert] = {}
        for v, s in sorted(self.pre_prepares):
            if s <= self.stable_seq:
                continue
            pp = self.prepared(v, s)
            if pp is None:
                continue
            votes = self.prepares[(v, s)]
            proof = tuple(votes[x] for x in sorted(votes) if votes[x].digest == pp.digest)
            req = self.requests.get(pp.digest) if pp.digest != NULL else None
            if s not in best or best[s].pre_prepare.view < v:
                best[s] = PreparedCert(pp, proof, req)
        return tuple(best[s] for s in sorted(best))

    def start_view_change(self, ctx: Context, view: int) -> None:
        self.view = view
        self.in_view_change = True
        ctx.storage.put("view", view)
        ctx.storage.put("in_view_change", True)
        self.assigned = set()
        vc = ViewChange(view, self.stable_seq, self.stable_proof, self.prepared_set(), ctx.id)
        # the view-change safety argument (Castro & Liskov 4.4): prepared certificates survive
        ctx.sometimes("pbft: a view change carries a prepared certificate", bool(vc.prepared))
        self.log_view_change(ctx, vc)
        ctx.record("view-change", view=view)
        self.multicast(ctx, vc)
        ctx.set_timer("view-change", self.vc_timeout)
        self.want_status(ctx)
        self.try_new_view(ctx, view)

    def valid_view_change(self, ctx: Context, vc: ViewChange) -> bool:
        if vc.sender not in ctx.servers:
            return False
        if self.valid_checkpoint_proof(ctx, vc.stable_seq, vc.checkpoints) is None:
            return False
        for cert in vc.prepared:
            pp = cert.pre_prepare
            if pp.view >= vc.view or pp.sender != self.primary(ctx, pp.view):
                return False
            if not (vc.stable_seq < pp.seq <= vc.stable_seq + self.window):
                return False
            senders = {
                p.sender
                for p in cert.prepares
                if (p.view, p.seq, p.digest) == (pp.view, pp.seq, pp.digest)
                and p.sender in ctx.servers
                and p.sender != pp.sender
            }
            if len(senders) < self.prepare_quorum:
                return False
            if pp.digest != NULL:
                req = cert.request
                if req is None or not self.valid_request(ctx, req):
                    return False
                if request_digest(req) != pp.digest and ctx.bug != "no-digest-check":
                    return False
        return True

    def on_view_change(self, ctx: Context, vc: ViewChange) -> None:
        if vc.view < self.view or (vc.view == self.view and not self.in_view_change):
            # a peer behind us: if we made this view, give it the NEW-VIEW
            nv = self.new_views.get(self.view)
            if nv is not None and vc.view == self.view and vc.sender != ctx.id:
                self.send(ctx, vc.sender, nv)
            return
        if not self.valid_view_change(ctx, vc):
            # a faulty replica's false claims: a checkpoint it cannot prove, a prepared
            # certificate without 2f prepares from backups or whose pre-prepare is not the
            # primary's, a request that does not match its digest
            ctx.sometimes("pbft: a replica refuses a view change it cannot verify")
            return
        self.log_view_change(ctx, vc)
        # liveness rule: f+1 view changes for higher views make us join the smallest of them
        if vc.view > self.view or not self.in_view_change:
            higher = {
                s: v for v, table in self.view_changes.items() if v > self.view for s in table
            }
            if len(higher) >= self.f + 1:
                self.start_view_change(ctx, min(higher.values()))
                return
        if vc.view == self.view and self.in_view_change:
            self.try_new_view(ctx, vc.view)

    def compute_o(
        self, ctx: Context, view: int, vcs: tuple[ViewChange, ...]
    ) -> tuple[tuple[PrePrepare, ...], tuple[Request, ...], int]:
        """O: a pre-prepare in the new view for every seq in (min-s, max-s]."""
        min_s = max(vc.stable_seq for vc in vcs)
        best: dict[int, PreparedCert] = {}
        if ctx.bug != "view-change-drops-prepared":
            for vc in vcs:
                for cert in vc.prepared:
                    s = cert.pre_prepare.seq
                    if s <= min_s:
                        continue
                    if s not in best or best[s].pre_prepare.view < cert.pre_prepare.view:
                        best[s] = cert
        max_s = max(best, default=min_s)
        primary = self.primary(ctx, view)
        pps = []
        reqs = []
        for s in range(min_s + 1, max_s + 1):
            cert = best.get(s)
            if cert is None:
                pps.append(PrePrepare(view, s, NULL, primary))
            else:
                pps.append(PrePrepare(view, s, cert.pre_prepare.digest, primary))
                if cert.request is not None:
                    reqs.append(cert.request)
        return tuple(pps), tuple(reqs), min_s

    def try_new_view(self, ctx: Context, view: int) -> None:
        if self.primary(ctx, view) != ctx.id or view in self.new_views:
            return
        table = self.view_changes.get(view, {})
        if len(table) < self.quorum or ctx.id not in table:
            return
        vcs = tuple(table[s] for s in sorted(table))
        pps, reqs, _ = self.compute_o(ctx, view, vcs)
        nv = NewView(view, vcs, pps, reqs, ctx.id)
        self.multicast(ctx, nv)
        self.enter_view(ctx, nv)

    def on_new_view(self, ctx: Context, nv: NewView) -> None:
        if nv.view < self.view or (nv.view == self.view and not self.in_view_change):
            return
        if nv.sender != self.primary(ctx, nv.view) or nv.sender == ctx.id:
            ctx.sometimes(
                "pbft: a replica ignores a new view from a replica that is not its primary",
                nv.sender != self.primary(ctx, nv.view),
            )
            return
        senders = {vc.sender for vc in nv.view_changes if vc.view == nv.view}
        if len(senders) < self.quorum or len(senders) != len(nv.view_changes):
            return
        if not all(self.valid_view_change(ctx, vc) for vc in nv.view_changes):
            return
        pps, _, _ = self.compute_o(ctx, nv.view, nv.view_changes)
        if pps != nv.pre_prepares:
            return  # the primary did not build O from V as the protocol says
        self.enter_view(ctx, nv)

    def enter_view(self, ctx: Context, nv: NewView) -> None:
        view = nv.view
        self.view = view
        self.in_view_change = False
        self.new_views[view] = nv
        ctx.storage.put(("nv", view), nv)
        ctx.storage.put("view", view)
        ctx.storage.put("in_view_change", False)
        ctx.record("new-view", view=view, o=[[pp.seq, pp.digest] for pp in nv.pre_prepares])
        ctx.sometimes(
            "pbft: a new view re-proposes a request prepared in an earlier view",
            any(pp.digest != NULL for pp in nv.pre_prepares),
        )
        ctx.sometimes(
            "pbft: a new view fills a gap with a null request",
            any(pp.digest == NULL for pp in nv.pre_prepares),
        )
        ctx.cancel_timer("view-change")
        for req in nv.requests:
            d = request_digest(req)
            if self.valid_request(ctx, req) and d not in self.requests:
                self.remember_request(ctx, d, req)
        # adopt the latest stable checkpoint proof carried by V (we may need state transfer)
        best = max(nv.view_changes, key=lambda vc: vc.stable_seq)
        if best.stable_seq > self.stable_seq and best.stable_seq <= self.last_exec:
            if self.states[best.stable_seq] == (
                self.valid_checkpoint_proof(ctx, best.stable_seq, best.checkpoints)
            ):
                self.make_stable(ctx, best.stable_seq, best.checkpoints)
        primary = self.primary(ctx, view) == ctx.id
        self.assigned = set()
        top = max([pp.seq for pp in nv.pre_prepares], default=best.stable_seq)
        for pp in nv.pre_prepares:
            if pp.digest != NULL:
                self.assigned.add(pp.digest)
            if pp.seq <= self.stable_seq:
                continue
            self.pre_prepares[(view, pp.seq)] = pp
            ctx.storage.put(("pp", view, pp.seq), pp)
            if not primary:
                prepare = Prepare(view, pp.seq, pp.digest, ctx.id)
                self.log_vote(ctx, self.prepares, "prep", prepare)
                self.multicast(ctx, prepare)
            self.progress(ctx, view, pp.seq)
        if best.stable_seq > self.last_exec:
            self.want_status(ctx)
        if primary:
            self.next_seq = max(top, self.stable_seq, best.stable_seq)
            ctx.storage.put("next_seq", self.next_seq)
            self.assign(ctx)
        self.start_request_timer(ctx)
        if self.pending:
            self.want_status(ctx)


class Client(Node):
    """Issues ``ops`` operations one at a time; accepts f+1 matching replies; on timeout
    retransmits to every replica, and gives up (``info``) after ``retries`` retransmissions."""

    def __init__(self, ops: int, timeout: int, retries: int, think: bool = True) -> None:
        # exhaustive runs narrow the workload: ``think=False`` invokes each operation at once
        # (no think timer); ``timeout <= 0`` waits for the replies (no timeout timer)
        self.ops_left = ops
        self.timeout = timeout
        self.retries = retries
        self.think = think
        self.timestamp = 0
        self.view = 0
        self.current: Request | None = None
        self.tries = 0
        self.replies: dict[str, tuple[int, int]] = {}
        # the binding's quiet tail (faults stopped): retransmit until answered, never give up
        self.patient = False

    def state(self) -> Any:
        return (
            self.patient,
            self.ops_left,
            self.timestamp,
            self.view,
            self.current,
            self.tries,
            tuple(sorted(self.replies.items())),
        )

    def describe(self) -> dict[str, Any]:
        """For the study page: the request in flight, its tries and the replies so far."""
        from treadle.impl.pbft.describe import describe_client

        return describe_client(self)

    def on_start(self, ctx: Context) -> None:
        self.f = int(ctx.config["f"])
        if self.think:
            ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
        else:
            self.invoke(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "think":
            self.invoke(ctx)
        elif name == "tail":
            self.start_tail(ctx)
        elif name == "timeout" and self.current is not None:
            if self.patient or self.tries <= self.retries:
                self.tries += 1
                for dst in ctx.servers:
                    ctx.send(dst, self.current)
                ctx.set_timer("timeout", self.timeout)
            else:
                req = self.current
                ctx.info("append", req.op, timestamp=req.timestamp)
                self.current = None
                self.after(ctx)

    def start_tail(self, ctx: Context) -> None:
        """The binding's quiet tail: the faults stopped, and with at most f faulty replicas PBFT
        promises the client a reply (Castro & Liskov, section 4.5). An open operation is
        retransmitted to every replica at once; an idle client gets one more operation. Either
        way the client now waits for the reply (client progress check)."""
        self.patient = True
        if self.current is not None:
            self.tries = 0
            for dst in ctx.servers:
                ctx.send(dst, self.current)
            ctx.set_timer("timeout", self.timeout)
            return
        self.ops_left += 1
        ctx.cancel_timer("think")
        self.invoke(ctx)

    def invoke(self, ctx: Context) -> None:
        if self.ops_left <= 0:
            return
        self.ops_left -= 1
        self.timestamp += 1
        req = Request(ctx.id, self.timestamp, f"{ctx.id}-{self.timestamp}")
        self.current = req
        self.tries = 0
        self.replies = {}
        ctx.invoke("append", req.op, timestamp=req.timestamp)
        ctx.send(ctx.servers[self.view % len(ctx.servers)], req)
        if self.timeout > 0:
            ctx.set_timer("timeout", self.timeout)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        req = self.current
        if type(msg) is not Reply or req is None or msg.timestamp != req.timestamp:
            return
        if msg.sender != src or src not in ctx.servers or msg.client != ctx.id:
            return
        self.replies[src] = (msg.view, msg.result)
        # f+1 matching replies matter only when some replica answers something else
        ctx.sometimes(
            "pbft: a client receives conflicting replies",
            len({r for _, r in self.replies.values()}) > 1,
        )
        matching = sorted(s for s, (_, r) in self.replies.items() if r == msg.result)
        # f+1 matching replies from distinct replicas: at least one is from a correct replica
        # (the seeded bug takes f, so one faulty replica can make the client accept anything)
        needed = self.f + (0 if ctx.bug == "client-accepts-f-replies" else 1)
        if len(matching) >= needed:
            self.view = max(self.view, msg.view)
            counted = [[s, self.replies[s][0], self.replies[s][1]] for s in matching]
            ctx.ok("append", req.op, timestamp=req.timestamp, result=msg.result, replies=counted)
            ctx.cancel_timer("timeout")
            self.current = None
            self.after(ctx)

    def after(self, ctx: Context) -> None:
        if self.ops_left > 0:
            if self.think:
                ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
            else:
                self.invoke(ctx)
