"""What the study page shows of a PBFT replica or client (``Node.describe()``).

In the terms of Castro & Liskov (TOCS 2002, section 4): the view and its primary, whether a view
change is under way, the low and high water marks h and H = h + L, the stable checkpoint and its
proof, the last executed sequence number, and for every sequence number the replica still holds
messages for, how far it got: pre-prepared, prepared (the pre-prepare and 2f matching prepares),
committed-local (2f+1 matching commits) or executed (with the last few executions below the
checkpoint, from the execution log). A summary, not the message sets: the full
sets make a page of thousands of steps slow to build and unreadable, and the verdicts name
sequence numbers, so the page highlights the row they are about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from treadle.impl.pbft.node import Client, Replica


#: executions shown below the stable checkpoint (their messages are collected, the execution log
#: keeps them): an Agreement verdict names a sequence number a replica may have checkpointed since
EXECUTED_SHOWN = 8


def _digest(d: str) -> str:
    return d[:8]


def _phase(r: Replica, seq: int, executed: dict[int, str]) -> str:
    """The furthest phase ``seq`` reached at ``r``, in the highest view r holds it for."""
    if seq <= r.last_exec:
        return f"executed {_digest(executed[seq])}" if seq in executed else "executed"
    views = sorted(
        {v for (v, s) in r.pre_prepares if s == seq}
        | {v for (v, s) in r.prepares if s == seq}
        | {v for (v, s) in r.commits if s == seq},
        reverse=True,
    )
    if seq in r.committed:
        view, digest = r.committed[seq]
        return f"committed v{view} {_digest(digest)}"
    if not views:
        return "?"
    view = views[0]
    pp = r.pre_prepares.get((view, seq))
    prepares = r.prepares.get((view, seq), {})
    commits = r.commits.get((view, seq), {})
    if pp is None:
        head = f"v{view} no pre-prepare"
        matching_p, matching_c = len(prepares), len(commits)
    else:
        matching_p = sum(p.digest == pp.digest for p in prepares.values())
        matching_c = sum(c.digest == pp.digest for c in commits.values())
        prepared = matching_p >= r.prepare_quorum
        head = f"{'prepared' if prepared else 'pre-prepared'} v{view} {_digest(pp.digest)}"
    return f"{head}, prepares {matching_p}/{r.prepare_quorum}, commits {matching_c}/{r.quorum}"


def describe_replica(r: Replica) -> dict[str, Any]:
    if not hasattr(r, "window"):
        return {"status": "not started"}  # setup() runs in on_start
    low = r.stable_seq
    d: dict[str, Any] = {}
    servers = getattr(r, "servers", ())
    if servers:
        primary = servers[r.view % len(servers)]
        d["role"] = (
            "primary" if primary == getattr(r, "me", None) else f"backup (primary {primary})"
        )
    if getattr(r, "byzantine", False):
        d["byzantine"] = getattr(r, "mode", "?")
    d["view"] = r.view
    d["status"] = f"view change to v{r.view}" if r.in_view_change else "normal"
    d["last_executed"] = r.last_exec
    d["watermarks"] = f"h={low}, H={low + r.window}"
    d["checkpoint"] = f"stable at {low} ({len(r.stable_proof)} proofs)"
    pending_checkpoints = {s: len(m) for s, m in r.checkpoints.items() if s > low}
    if pending_checkpoints:
        d["checkpoints"] = {
            str(s): f"{n}/{r.quorum}" for s, n in sorted(pending_checkpoints.items())
        }
    seqs = {s for (_v, s) in r.pre_prepares} | {s for (_v, s) in r.prepares}
    seqs |= {s for (_v, s) in r.commits} | set(r.committed)
    executed: dict[int, str] = {}
    for seq, digest, _request in reversed(r.log):  # the log's tail: what a verdict is about
        if seq <= low and len(executed) >= EXECUTED_SHOWN:
            break
        executed[seq] = digest
    seqs |= set(executed)
    d["seq"] = {str(s): _phase(r, s, executed) for s in sorted(seqs)}
    if r.pending:
        d["pending"] = sorted(f"{q.client}#{q.timestamp} {q.op}" for q in r.pending.values())
    if r.view_changes:
        d["view_changes"] = {
            f"v{v}": f"{len(m)} from {', '.join(sorted(m))}"
            for v, m in sorted(r.view_changes.items())
        }
    if r.new_views:
        d["new_view"] = f"v{max(r.new_views)}"
    if servers and not r.in_view_change and d.get("role") == "primary":
        d["next_seq"] = r.next_seq
    d["applied"] = r.applied
    return d


def describe_client(c: Client) -> dict[str, Any]:
    d: dict[str, Any] = {"view": c.view, "ops_left": c.ops_left}
    if c.current is not None:
        q = c.current
        d["request"] = f"#{q.timestamp} {q.op}"
        d["tries"] = f"{c.tries} of {c.retries + 1}"
        d["replies"] = {who: f"v{v} -> {res}" for who, (v, res) in sorted(c.replies.items())}
    else:
        d["request"] = None
    return d
