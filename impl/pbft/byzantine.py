"""Faulty PBFT replicas: every way one may misbehave under its own signature.

A :class:`ByzantineReplica` runs the protocol of :class:`~treadle.impl.pbft.node.Replica` and lies
in the way its mode says (``byzantine_mode``; ``mix`` draws one per run with ``ctx.random``, so it
is recorded, replayed and shrunk). It signs only as itself: it cannot build a record under another
replica's or a client's id, but it may lie in every field it authors, withhold, replay, and send
different things to different replicas. The modes (docs/pbft.md, "Byzantine replicas"):

* ``silent``: sends nothing (a crashed replica that never recovers);
* ``equivocate``: as primary, two pre-prepares for one (v, n), one per half of the replicas; as a
  backup, votes for whatever each replica prepared and proposes ahead in the next view it leads;
* ``conflicting``: prepares and commits with different digests to different replicas;
* ``replay``: forwards old records it received (any view, any kind) to random replicas;
* ``wrong-digest``: pre-prepares, prepares and commits whose digest is not the request's;
* ``wrong-result``: replies to clients with made-up results;
* ``forge``: every message it sends, of every kind, to replicas and to clients, lies in one
  drawn field with probability 1/2, drawn per destination (so it also equivocates):
  :mod:`treadle.impl.pbft.forgery`;
* ``usurp``: acts as the primary of views it does not lead: pre-prepares (with its own prepare
  and commit) as a backup, racing the primary for its numbers and ordering requests ahead of it,
  NEW-VIEWs for view changes it is not the new primary of, and VIEW-CHANGEs claiming what it
  pre-prepared so as prepared; as the real primary it orders nothing, so the others replace it.

The modes are appended, never reordered: a saved trace records the index ``mix`` drew.
"""

from __future__ import annotations

from typing import Any

from treadle.impl.pbft.forgery import forge
from treadle.impl.pbft.messages import (
    NULL,
    Bundle,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
    request_digest,
)
from treadle.impl.pbft.node import Replica

from treadle.node import Context

BYZANTINE_MODES = (
    "silent",
    "equivocate",
    "conflicting",
    "replay",
    "wrong-digest",
    "wrong-result",
    "forge",
    "usurp",
)


class ByzantineReplica(Replica):
    """A faulty replica: it runs the protocol and lies in the configured way, always under its
    own identity (it cannot sign as another replica or a client)."""

    byzantine = True

    def on_start(self, ctx: Context) -> None:
        mode = ctx.storage.get("mode")
        if mode is None:
            mode = ctx.config["byzantine_mode"]
            if mode == "mix":
                mode = ctx.random.choice(BYZANTINE_MODES)
            if mode not in BYZANTINE_MODES:
                raise ValueError(f"unknown byzantine_mode {mode!r}")
            ctx.storage.put("mode", mode)
        self.mode = mode
        self.seen: list[Any] = []
        # usurp: the pre-prepares it sent for numbers of views it does not lead, and the views
        # it sent a NEW-VIEW for without being their primary
        self.usurped: dict[tuple[int, int], tuple[PrePrepare, Request | None]] = {}
        self.usurped_views: set[int] = set()
        # forge: the genuine replies it sent each client (to replay an older one)
        self.replies_sent: dict[str, list[Reply]] = {}
        ctx.record("byzantine", mode=mode)
        super().on_start(ctx)

    def state(self) -> Any:
        if self.mode == "usurp":
            usurped = (tuple(sorted(self.usurped)), tuple(sorted(self.usurped_views)))
            return (self.mode, super().state(), usurped)
        if self.mode == "forge":
            replies = tuple((c, tuple(r)) for c, r in sorted(self.replies_sent.items()))
            return (self.mode, super().state(), replies)
        return (self.mode, super().state())

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if self.mode == "silent":
            return
        if self.mode == "wrong-result" and type(msg) is Request and src == msg.client:
            # answer at once with a made-up result, before anything is ordered
            guess = 1 + ctx.random.randint(0, self.applied + 2)
            ctx.send(src, Reply(self.view, msg.timestamp, msg.client, guess, ctx.id))
        if self.mode == "replay":
            records = msg.records if isinstance(msg, Bundle) else (msg,)
            for rec in records:
                if type(rec) in (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView):
                    self.seen.append(rec)
            del self.seen[:-40]
            if self.seen and ctx.random.randint(0, 2) == 0:
                old = ctx.random.choice(self.seen)
                ctx.send(ctx.random.choice(ctx.peers), old)
        super().on_message(ctx, src, msg)
        if self.mode in ("equivocate", "conflicting"):
            self.echo(ctx, src, msg)
        if self.mode == "equivocate":
            self.propose_ahead(ctx, msg)
        if self.mode == "usurp":
            self.usurp(ctx, msg)

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.mode == "silent":
            return
        super().on_timer(ctx, name)

    def echo(self, ctx: Context, src: str, msg: Any) -> None:
        """Agree with everyone: prepare and commit whatever digest each replica prepared."""
        records = msg.records if isinstance(msg, Bundle) else (msg,)
        for rec in records:
            if type(rec) is Prepare and rec.sender == src:
                ctx.send(src, Prepare(rec.view, rec.seq, rec.digest, ctx.id))
                ctx.send(src, Commit(rec.view, rec.seq, rec.digest, ctx.id))
            elif type(rec) is Commit and rec.sender == src:
                ctx.send(src, Commit(rec.view, rec.seq, rec.digest, ctx.id))

    def propose_ahead(self, ctx: Context, msg: Any) -> None:
        """Seeing another primary's pre-prepare, propose something else for the same number in
        the next view this replica leads (correct replicas ignore a view they are not in)."""
        records = msg.records if isinstance(msg, Bundle) else (msg,)
        for rec in records:
            if type(rec) is not PrePrepare or rec.sender == ctx.id:
                continue
            view = rec.view + 1
            while self.primary(ctx, view) != ctx.id:
                view += 1
            d2, req2 = self.other_digest(ctx, rec.digest)
            alt = PrePrepare(view, rec.seq, d2, ctx.id)
            self.multicast(ctx, Bundle((alt, req2)) if req2 is not None else alt)

    def other_digest(self, ctx: Context, digest: str) -> tuple[str, Request | None]:
        """Another request this replica knows (it cannot make one up), or the null request."""
        options = sorted(d for d in self.requests if d != digest)
        if not options or ctx.random.randint(0, 2) == 0:
            return NULL, None
        d = ctx.random.choice(options)
        return d, self.requests[d]

    def send_pre_prepare(self, ctx: Context, pp: PrePrepare, req: Request | None) -> None:
        if self.mode == "equivocate":
            # two pre-prepares for one (view, seq): one per half of the replicas (Twins)
            d2, req2 = self.other_digest(ctx, pp.digest)
            alt = PrePrepare(pp.view, pp.seq, d2, ctx.id)
            for dst in ctx.peers:
                if ctx.random.randint(0, 1):
                    ctx.send(dst, Bundle((alt, req2)) if req2 is not None else alt)
                else:
                    ctx.send(dst, Bundle((pp, req)) if req is not None else pp)
        elif self.mode == "wrong-digest":
            # the digest of one request with the body of another
            d2, req2 = self.other_digest(ctx, pp.digest)
            for dst in ctx.peers:
                if req2 is not None and ctx.random.randint(0, 1):
                    ctx.send(dst, Bundle((pp, req2)))
                elif ctx.random.randint(0, 1):
                    ctx.send(dst, Bundle((PrePrepare(pp.view, pp.seq, d2, ctx.id), req)))
                else:
                    ctx.send(dst, Bundle((pp, req)) if req is not None else pp)
        else:
            super().send_pre_prepare(ctx, pp, req)

    def reply(self, ctx: Context, reply: Reply) -> None:
        if self.mode == "wrong-result":
            # signed by itself, so allowed: a result off by one (clients need f+1 matching)
            reply = Reply(reply.view, reply.timestamp, reply.client, reply.result + 1, ctx.id)
        super().reply(ctx, reply)

    def multicast(self, ctx: Context, msg: Any) -> None:
        if self.mode in ("conflicting", "wrong-digest") and type(msg) in (Prepare, Commit):
            for dst in ctx.peers:
                d = msg.digest
                if ctx.random.randint(0, 1):
                    d, _ = self.other_digest(ctx, d)
                ctx.send(dst, type(msg)(msg.view, msg.seq, d, ctx.id))
            return
        super().multicast(ctx, msg)

    def send(self, ctx: Context, dst: str, msg: Any) -> None:
        if self.mode == "forge":
            genuine = msg
            if ctx.random.randint(0, 1):
                lie = forge(self, ctx, msg)
                if lie is not None:
                    ctx.record("forged", message=type(msg).__name__, field=lie[1], to=dst)
                    msg = lie[0]
            if type(genuine) is Reply:
                sent = self.replies_sent.setdefault(genuine.client, [])
                if genuine not in sent:
                    sent.append(genuine)
                    del sent[:-4]  # a few are enough to replay
        ctx.send(dst, msg)

    # ------------------------------------------------------------------ usurp
    def assign(self, ctx: Context) -> None:
        if self.mode == "usurp":
            return  # as the real primary it orders nothing: the backups will replace it
        super().assign(ctx)

    def usurp(self, ctx: Context, msg: Any) -> None:
        records = msg.records if type(msg) is Bundle else (msg,)
        for rec in records:
            t = type(rec)
            if t is ViewChange and rec.sender != ctx.id:
                self.usurp_new_view(ctx, rec)
            elif self.in_view_change or self.primary(ctx, self.view) == ctx.id:
                continue
            elif t is PrePrepare and rec.sender != ctx.id and rec.view == self.view:
                # race the primary for the number it just used, with another request
                digest, req = self.other_digest(ctx, rec.digest)
                self.usurp_pre_prepare(ctx, rec.seq, digest, req)
            elif t is Request and self.valid_request(ctx, rec) and ctx.random.randint(0, 1):
                # order a request before the primary does, at the next number it sees free
                self.usurp_pre_prepare(ctx, None, request_digest(rec), rec)

    def usurp_pre_prepare(
        self, ctx: Context, seq: int | None, digest: str, req: Request | None
    ) -> None:
        """A pre-prepare for (its view, seq) although it is not that view's primary, with its
        own prepare and commit for it, as a backup that accepted it would send them."""
        view = self.view
        if seq is None:
            used = [s for (v, s) in (*self.pre_prepares, *self.usurped) if v == view]
            seq = max([self.last_exec, self.stable_seq, *used]) + 1
        if not self.in_window(seq) or (view, seq) in self.usurped:
            return
        pp = PrePrepare(view, seq, digest, ctx.id)
        self.usurped[(view, seq)] = (pp, req)
        body = (pp, req) if req is not None and digest != NULL else (pp,)
        votes = (Prepare(view, seq, digest, ctx.id), Commit(view, seq, digest, ctx.id))
        ctx.record("usurped", message="PrePrepare", view=view, seq=seq, digest=digest)
        for dst in ctx.peers:
            ctx.send(dst, Bundle((*body, *votes)))

    def usurp_new_view(self, ctx: Context, vc: ViewChange) -> None:
        """A NEW-VIEW for a view it is not the primary of, as soon as it holds a quorum of
        VIEW-CHANGEs for it (O computed from them, under its own signature)."""
        view = vc.view
        if self.primary(ctx, view) == ctx.id or view in self.usurped_views:
            return
        table = dict(self.view_changes.get(view, {}))
        table.setdefault(vc.sender, vc)
        if len(table) < self.quorum:
            return
        self.usurped_views.add(view)
        vcs = tuple(table[s] for s in sorted(table))
        pps, reqs, _ = self.compute_o(ctx, view, vcs)
        mine = tuple(PrePrepare(view, pp.seq, pp.digest, ctx.id) for pp in pps)
        ctx.record("usurped", message="NewView", view=view)
        self.multicast(ctx, NewView(view, vcs, mine, reqs, ctx.id))

    def prepared_set(self) -> tuple[PreparedCert, ...]:
        """usurp: its VIEW-CHANGE also claims what it pre-prepared without being primary as
        prepared, with a certificate of its own prepare only."""
        certs = super().prepared_set()
        if self.mode != "usurp":
            return certs
        best = {c.pre_prepare.seq: c for c in certs}
        for (_, seq), (pp, req) in sorted(self.usurped.items()):
            if seq > self.stable_seq and seq not in {c.pre_prepare.seq for c in certs}:
                prepare = Prepare(pp.view, pp.seq, pp.digest, self.me)
                best[seq] = PreparedCert(pp, (prepare,), req)
        return tuple(best[s] for s in sorted(best))
