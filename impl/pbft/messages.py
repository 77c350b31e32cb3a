"""PBFT messages (Castro & Liskov, OSDI 1999, section 4; TOCS 2002, section 4).

Authentication model: every protocol record carries ``sender``, the replica (or client) that
"signed" it. Records are immutable values that may be forwarded (signatures are transferable, as
with the paper's public-key variant), so certificates (prepared certificates, checkpoint proofs,
the V set of a NEW-VIEW) are tuples of such records and a receiver checks them as sets of records
from distinct senders. Unforgeability holds by construction: node code (correct or Byzantine)
only ever builds a record with ``sender=ctx.id``; a Byzantine replica may build any record under
its own id and may forward (replay) records it received, but never builds one under another id.
The envelope :class:`Bundle` is unsigned: its contents are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: digest of the null request the new primary uses to fill gaps in a NEW-VIEW's O set
NULL = "null"


@dataclass(frozen=True)
class Request:
    """<REQUEST, o, t, c>: operation o, timestamp t, client c (signed by the client)."""

    client: str
    timestamp: int
    op: str

    def as_list(self) -> list[object]:
        return [self.client, self.timestamp, self.op]


def request_digest(req: Request) -> str:
    """D(m): sha256 of the request's canonical encoding."""
    text = f"{req.client}\x1f{req.timestamp}\x1f{req.op}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chain_digest(previous: str, seq: int, digest: str) -> str:
    """State digest after executing ``digest`` at ``seq`` (a hash chain over the execution log;
    checkpoints certify it and state transfer verifies against it)."""
    return hashlib.sha256(f"{previous}:{seq}:{digest}".encode()).hexdigest()[:16]


GENESIS = "genesis"


@dataclass(frozen=True)
class PrePrepare:
    view: int
    seq: int
    digest: str
    sender: str


@dataclass(frozen=True)
class Prepare:
    view: int
    seq: int
    digest: str
    sender: str


@dataclass(frozen=True)
class Commit:
    view: int
    seq: int
    digest: str
    sender: str


@dataclass(frozen=True)
class Reply:
    view: int
    timestamp: int
    client: str
    result: int
    sender: str


@dataclass(frozen=True)
class Checkpoint:
    """<CHECKPOINT, n, d, i>: replica i's state digest d after executing n."""

    seq: int
    state: str
    sender: str


@dataclass(frozen=True)
class PreparedCert:
    """An element of a VIEW-CHANGE's P set: a pre-prepare and 2f matching prepares."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]
    request: Request | None


@dataclass(frozen=True)
class ViewChange:
    """<VIEW-CHANGE, v+1, n, C, P, i>."""

    view: int
    stable_seq: int
    checkpoints: tuple[Checkpoint, ...]  # C: 2f+1 matching checkpoints for stable_seq
    prepared: tuple[PreparedCert, ...]  # P
    sender: str


@dataclass(frozen=True)
class NewView:
    """<NEW-VIEW, v+1, V, O>; ``requests`` carries the requests the O set refers to."""

    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    requests: tuple[Request, ...]
    sender: str


@dataclass(frozen=True)
class CommitCert:
    """A committed certificate (a pre-prepare with 2f+1 matching commits), forwarded to a replica
    that fell behind: it executes the request without waiting for the messages it lost."""

    pre_prepare: PrePrepare
    request: Request | None
    commits: tuple[Commit, ...]


@dataclass(frozen=True)
class StateTransfer:
    """A stable checkpoint's proof and the execution log entries (seq, digest, request) from
    ``start`` up to it; the receiver recomputes the state digest before installing."""

    checkpoints: tuple[Checkpoint, ...]
    start: int
    entries: tuple[tuple[int, str, Request | None], ...]


@dataclass(frozen=True)
class Status:
    """Retransmission trigger (as in the BFT library): where the sender is."""

    view: int
    in_view_change: bool
    last_executed: int
    stable_seq: int
    sender: str


@dataclass(frozen=True)
class Bundle:
    """An unsigned envelope for several records (e.g. a pre-prepare and its request)."""

    records: tuple[object, ...]
