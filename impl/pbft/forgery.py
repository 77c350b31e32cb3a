"""What a faulty PBFT replica can claim under its own signature: one lie per message.

:func:`forge` takes a message a faulty replica is about to send and returns a variant that lies
in one field drawn with ``ctx.random``, with the field's name, or None when this message gives it
nothing to lie about. Every kind a replica sends has a forger: PRE-PREPARE, PREPARE, COMMIT
(wrong view, a sequence number outside the watermarks or another one inside, another digest),
CHECKPOINT (a wrong state digest, a checkpoint it never reached), VIEW-CHANGE (a stable
checkpoint it cannot prove, a proof made of its own checkpoint only, a prepared certificate
built only from its own messages, its prepared certificates withheld), NEW-VIEW (O not computed
from V, V short of a quorum, the requests withheld), REPLY (wrong result, timestamp, view or
client, or an older reply of its own replayed), STATUS (a wrong view, view-change flag, last
executed or stable checkpoint), committed certificates and state transfers it forwards (another
request body, its own pre-prepare and commit in place of the certificate, entries that do not
hash to the certified state), relayed client requests (another client request it has seen) and
bundles (one of their records).

The authentication model (:mod:`treadle.impl.pbft.messages`) holds: a record another replica or a
client signed is never altered, only withheld or replaced by another genuine record; every
record built here carries the faulty replica's own id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treadle.impl.pbft.messages import (
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
)

from treadle.node import Context

if TYPE_CHECKING:
    from treadle.impl.pbft.byzantine import ByzantineReplica

Lie = tuple[Any, str]  # (the forged message, the field it lies in)


def forge(node: ByzantineReplica, ctx: Context, msg: Any) -> Lie | None:
    forger = FORGERS.get(type(msg))
    return forger(node, ctx, msg) if forger is not None else None


# ------------------------------------------------------------------ made-up values
def made_up_state(state: str, seq: int) -> str:
    """A state digest no correct replica computes (the chain of a request nobody issued)."""
    return chain_digest(state, seq, "forged")


def other_view(ctx: Context, view: int) -> int:
    if view > 0 and ctx.random.randint(0, 1):
        return view - 1
    return view + 1 + ctx.random.randint(0, 1)


def outside_watermarks(node: ByzantineReplica, ctx: Context) -> int:
    """At or below the low watermark h, or above the high one h + L (as this replica sees them)."""
    if ctx.random.randint(0, 1):
        return node.stable_seq
    return node.stable_seq + node.window + 1 + ctx.random.randint(0, node.window)


def other_request(node: ByzantineReplica, ctx: Context, but: Request | None) -> Request | None:
    """Another genuine client request this replica has seen (it cannot make one up)."""
    options = sorted(
        (r for r in node.requests.values() if r != but), key=lambda r: (r.client, r.timestamp)
    )
    return ctx.random.choice(options) if options else None


# ------------------------------------------------------------------ the normal case
def forge_vote(node: ByzantineReplica, ctx: Context, msg: Any) -> Lie | None:
    """PRE-PREPARE, PREPARE, COMMIT: (view, seq, digest, sender)."""
    if msg.sender != ctx.id:
        return None
    kind = type(msg)
    field = ctx.random.choice(("view", "seq", "seq-outside-watermarks", "digest"))
    if field == "view":
        return kind(other_view(ctx, msg.view), msg.seq, msg.digest, ctx.id), field
    if field == "seq-outside-watermarks":
        return kind(msg.view, outside_watermarks(node, ctx), msg.digest, ctx.id), field
    if field == "seq":
        seq = node.stable_seq + 1 + ctx.random.randint(0, node.window - 1)
        if seq == msg.seq:
            return None
        return kind(msg.view, seq, msg.digest, ctx.id), field
    digest, _ = node.other_digest(ctx, msg.digest)
    if digest == msg.digest:
        return None
    return kind(msg.view, msg.seq, digest, ctx.id), field


def forge_checkpoint(node: ByzantineReplica, ctx: Context, cp: Checkpoint) -> Lie | None:
    if cp.sender != ctx.id:
        return None
    if ctx.random.randint(0, 1):
        return Checkpoint(cp.seq, made_up_state(cp.state, cp.seq), ctx.id), "state"
    ahead = cp.seq + node.k * (1 + ctx.random.randint(0, 1))  # a checkpoint it never reached
    return Checkpoint(ahead, made_up_state(cp.state, ahead), ctx.id), "seq"


def forge_reply(node: ByzantineReplica, ctx: Context, r: Reply) -> Lie | None:
    if r.sender != ctx.id:
        return None
    field = ctx.random.choice(("result", "timestamp", "view", "client", "replay"))
    if field == "replay":  # an older reply of its own to this client, sent again
        old = [x for x in node.replies_sent.get(r.client, ()) if x != r]
        return (ctx.random.choice(old), field) if old else None
    if field == "result":
        result = r.result + 1 + ctx.random.randint(0, 2)
        return Reply(r.view, r.timestamp, r.client, result, ctx.id), field
    if field == "timestamp":
        ts = r.timestamp + (1 if ctx.random.randint(0, 1) else -1)
        return Reply(r.view, ts, r.client, r.result, ctx.id), field
    if field == "view":
        view = r.view + 1 + ctx.random.randint(0, 4)
        return Reply(view, r.timestamp, r.client, r.result, ctx.id), field
    others = [c for c in ctx.clients if c != r.client]
    if not others:
        return None
    return Reply(r.view, r.timestamp, ctx.random.choice(others), r.result, ctx.id), field


def forge_status(node: ByzantineReplica, ctx: Context, st: Status) -> Lie | None:
    """A STATUS that makes its peers send what it does not need, or withhold what it does."""
    if st.sender != ctx.id:
        return None
    field = ctx.random.choice(("view", "in-view-change", "last-executed", "stable-seq"))
    view, vc, last, stable = st.view, st.in_view_change, st.last_executed, st.stable_seq
    if field == "view":
        view = other_view(ctx, view)
    elif field == "in-view-change":
        vc = not vc
    elif field == "last-executed":
        last = ctx.random.randint(0, last + node.window)
    else:
        stable = ctx.random.randint(0, stable + node.window)
    lie = Status(view, vc, last, stable, ctx.id)
    return (lie, field) if lie != st else None


# ------------------------------------------------------------------ view changes
def false_certificate(node: ByzantineReplica, ctx: Context, vc: ViewChange) -> PreparedCert:
    """A prepared certificate built only from its own messages: a pre-prepare it signed in the
    view just below (so that, if believed, it would win over any real one in O) and its own
    prepare, for a number in the watermarks, for another request or the null request."""
    seq = vc.stable_seq + 1 + ctx.random.randint(0, node.window - 1)
    view = max(vc.view - 1, 0)
    digest, req = node.other_digest(ctx, "")
    pp = PrePrepare(view, seq, digest, ctx.id)
    return PreparedCert(pp, (Prepare(view, seq, digest, ctx.id),), req)


def forge_view_change(node: ByzantineReplica, ctx: Context, vc: ViewChange) -> Lie | None:
    if vc.sender != ctx.id:
        return None
    field = ctx.random.choice(
        ("view", "stable-seq", "checkpoints", "prepared", "withhold-prepared")
    )
    view, stable, proof, prepared = vc.view, vc.stable_seq, vc.checkpoints, vc.prepared
    if field == "view":
        view = vc.view + 1
    elif field == "stable-seq":  # a checkpoint it cannot prove (the old proof, a later number)
        stable = vc.stable_seq + node.k
    elif field == "checkpoints":  # a "proof" of its own checkpoint only, for a made-up state
        stable = vc.stable_seq if vc.stable_seq > 0 else node.k
        proof = (Checkpoint(stable, made_up_state(node.states[-1], stable), ctx.id),)
        prepared = tuple(c for c in prepared if c.pre_prepare.seq > stable)
    elif field == "prepared":
        cert = false_certificate(node, ctx, vc)
        keep = tuple(c for c in prepared if c.pre_prepare.seq != cert.pre_prepare.seq)
        prepared = tuple(sorted((*keep, cert), key=lambda c: c.pre_prepare.seq))
    else:  # claims to have prepared nothing
        if not prepared:
            return None
        prepared = ()
    return ViewChange(view, stable, proof, prepared, ctx.id), field


def forge_new_view(node: ByzantineReplica, ctx: Context, nv: NewView) -> Lie | None:
    """As the new primary: an O not computed from V, a V short of a quorum, requests withheld."""
    if nv.sender != ctx.id:
        return None
    field = ctx.random.choice(("pre-prepares", "view-changes", "requests"))
    vcs, pps, reqs = nv.view_changes, nv.pre_prepares, nv.requests
    if field == "pre-prepares":
        if pps and ctx.random.randint(0, 1):
            i = ctx.random.randint(0, len(pps) - 1)
            pp = pps[i]
            digest, _ = node.other_digest(ctx, pp.digest)
            if digest == pp.digest:  # nothing else to propose: leave the number out
                pps = pps[:i] + pps[i + 1 :]
            else:
                pps = pps[:i] + (PrePrepare(pp.view, pp.seq, digest, ctx.id),) + pps[i + 1 :]
        else:  # one more number than V asks for
            top = max([pp.seq for pp in pps], default=max(vc.stable_seq for vc in vcs))
            pps = (*pps, PrePrepare(nv.view, top + 1, NULL, ctx.id))
    elif field == "view-changes":
        if not vcs:
            return None
        i = ctx.random.randint(0, len(vcs) - 1)
        vcs = vcs[:i] + vcs[i + 1 :]
    else:
        if not reqs:
            return None
        reqs = ()
    return NewView(nv.view, vcs, pps, reqs, ctx.id), field


# ------------------------------------------------------------------ what it forwards
def forge_commit_cert(node: ByzantineReplica, ctx: Context, cert: CommitCert) -> Lie | None:
    """A committed certificate holds others' commits: it cannot alter those, only withhold them,
    attach another request, or put its own pre-prepare and commit in their place."""
    pp = cert.pre_prepare
    field = ctx.random.choice(("request", "pre-prepare", "commits"))
    if field == "request":
        req = other_request(node, ctx, cert.request)
        if req is None:
            return None
        return CommitCert(pp, req, cert.commits), field
    if field == "pre-prepare":
        digest, req = node.other_digest(ctx, pp.digest)
        mine = PrePrepare(pp.view, pp.seq, digest, ctx.id)
        return CommitCert(mine, req, (Commit(pp.view, pp.seq, digest, ctx.id),)), field
    commits = cert.commits[: ctx.random.randint(0, max(len(cert.commits) - 1, 0))]
    return CommitCert(pp, cert.request, commits), field


def forge_state_transfer(node: ByzantineReplica, ctx: Context, st: StateTransfer) -> Lie | None:
    field = ctx.random.choice(("entries", "checkpoints", "start"))
    if field == "entries":
        if not st.entries:
            return None
        i = ctx.random.randint(0, len(st.entries) - 1)
        seq, digest, req = st.entries[i]
        other, body = node.other_digest(ctx, digest)
        if other == digest:  # nothing else to put there: leave the entry out
            entries = st.entries[:i] + st.entries[i + 1 :]
        else:
            entries = st.entries[:i] + ((seq, other, body),) + st.entries[i + 1 :]
        return StateTransfer(st.checkpoints, st.start, entries), field
    if field == "checkpoints":
        seq = st.checkpoints[0].seq if st.checkpoints else node.k
        state = made_up_state(node.states[-1], seq)
        return StateTransfer((Checkpoint(seq, state, ctx.id),), st.start, st.entries), field
    return StateTransfer(st.checkpoints, st.start + 1, st.entries), field


def forge_request(node: ByzantineReplica, ctx: Context, req: Request) -> Lie | None:
    """A relayed client request: it cannot sign as the client, so another genuine one."""
    other = other_request(node, ctx, req)
    return (other, "request") if other is not None else None


def forge_bundle(node: ByzantineReplica, ctx: Context, b: Bundle) -> Lie | None:
    """Lie in one record of the bundle; a record another replica signed is withheld instead."""
    if not b.records:
        return None
    i = ctx.random.randint(0, len(b.records) - 1)
    rec = b.records[i]
    signer = getattr(rec, "sender", None)
    lie = forge(node, ctx, rec) if signer in (ctx.id, None) else None
    if lie is None:
        return Bundle(b.records[:i] + b.records[i + 1 :]), f"{type(rec).__name__}:withheld"
    forged, field = lie
    return Bundle(b.records[:i] + (forged,) + b.records[i + 1 :]), f"{type(rec).__name__}.{field}"


FORGERS: dict[type, Any] = {
    PrePrepare: forge_vote,
    Prepare: forge_vote,
    Commit: forge_vote,
    Checkpoint: forge_checkpoint,
    ViewChange: forge_view_change,
    NewView: forge_new_view,
    Reply: forge_reply,
    Status: forge_status,
    CommitCert: forge_commit_cert,
    StateTransfer: forge_state_transfer,
    Request: forge_request,
    Bundle: forge_bundle,
}
