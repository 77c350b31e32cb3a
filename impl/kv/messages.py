"""Messages of the kv store: frozen dataclasses (the network may duplicate them, exhaustive
search hashes them).

A version is a tuple ``(counter, writer, incarnation)``: compared as a tuple, unique per write
(the writer's id and its incarnation break ties), totally ordered per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Version = tuple  # (counter, writer node id, writer incarnation); () = never written


@dataclass(frozen=True)
class Cfg:
    """A ring configuration. ``old`` is set while a membership change is in flight (joint:
    quorums are needed in both the old and the new preference lists)."""

    epoch: int
    members: tuple[str, ...]
    old: tuple[str, ...] | None = None


# client <-> coordinator
@dataclass(frozen=True)
class ClientReq:
    seq: int
    f: str  # get | put | delete
    key: str
    value: Any


@dataclass(frozen=True)
class ClientResp:
    seq: int
    ok: bool
    value: Any
    version: Version


# coordinator <-> replicas
@dataclass(frozen=True)
class Read:
    op: tuple
    key: str
    cfg: Cfg


@dataclass(frozen=True)
class ReadResp:
    op: tuple
    key: str
    version: Version
    value: Any


@dataclass(frozen=True)
class Write:
    op: tuple | None  # None: a fire-and-forget read repair
    key: str
    version: Version
    value: Any
    cfg: Cfg
    repair: bool = False


@dataclass(frozen=True)
class WriteAck:
    op: tuple
    key: str
    version: Version
    for_node: (
        str  # the replica this ack stands for (a fallback acks for the replica it holds a hint for)
    )


@dataclass(frozen=True)
class Nack:
    """The sender's configuration is stale: here is the current one."""

    op: tuple | None
    cfg: Cfg


# hinted handoff
@dataclass(frozen=True)
class HintedWrite:
    op: tuple
    target: str
    key: str
    version: Version
    value: Any


@dataclass(frozen=True)
class Handoff:
    target: str
    key: str
    version: Version
    value: Any
    cfg: Cfg


@dataclass(frozen=True)
class HandoffAck:
    target: str
    key: str
    version: Version


# anti-entropy
@dataclass(frozen=True)
class Digest:
    cfg: Cfg
    versions: tuple  # ((key, version), ...)


@dataclass(frozen=True)
class SyncReply:
    items: tuple  # ((key, version, value), ...) newer at the replier
    wants: tuple  # keys newer at the digest's sender


@dataclass(frozen=True)
class SyncPush:
    items: tuple


# membership
@dataclass(frozen=True)
class ConfigMsg:
    cfg: Cfg


@dataclass(frozen=True)
class ConfigAck:
    epoch: int


@dataclass(frozen=True)
class Transfer:
    epoch: int
    items: tuple  # ((key, version, value), ...)


@dataclass(frozen=True)
class TransferAck:
    epoch: int


@dataclass(frozen=True)
class TransferDone:
    epoch: int


# audit (the final read of every replica, after the faults stop)
@dataclass(frozen=True)
class AuditReq:
    key: str


@dataclass(frozen=True)
class AuditResp:
    key: str
    cfg: Cfg
    version: Version
    value: Any
