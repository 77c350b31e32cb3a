"""Messages between clients, the store and the projector (immutable values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: event data travels as sorted (key, value) pairs so that messages stay hashable
Data = tuple[tuple[str, Any], ...]


def freeze(data: dict[str, Any]) -> Data:
    return tuple(sorted(data.items()))


@dataclass(frozen=True)
class NewEvent:
    event_id: str
    type: str
    data: Data = ()


@dataclass(frozen=True)
class Recorded:
    """An event as stored: its global position and its version in its stream."""

    position: int
    stream: str
    version: int
    event_id: str
    type: str
    data: Data = ()


@dataclass(frozen=True)
class Append:
    req: int
    stream: str
    #: "any", "no-stream" (the stream has no event yet) or an exact version (0 = empty stream)
    expected: Any
    events: tuple[NewEvent, ...]


@dataclass(frozen=True)
class AppendReply:
    req: int
    ok: bool
    first_version: int = 0
    last_version: int = 0
    positions: tuple[int, ...] = ()
    #: the stream's version when an append was refused (wrong expected version)
    actual: int = 0
    error: str = ""


@dataclass(frozen=True)
class Read:
    req: int
    stream: str
    #: first version wanted; None means "after the snapshot" (version 1 without one)
    from_version: int | None
    with_snapshot: bool


@dataclass(frozen=True)
class ReadReply:
    req: int
    start: int
    events: tuple[Recorded, ...]
    #: (version, state) of the stream's latest snapshot, when asked for and one exists
    snapshot: tuple[int, Any] | None


@dataclass(frozen=True)
class SaveSnapshot:
    stream: str
    version: int
    state: Any


@dataclass(frozen=True)
class Subscribe:
    from_position: int


@dataclass(frozen=True)
class Deliver:
    events: tuple[Recorded, ...]


@dataclass(frozen=True)
class Commit:
    """Seeded bug ``non-atomic-version-check`` only: the second half of an append, sent by the
    store to itself after checking the expected version."""

    client: str
    append: Append
    first_version: int
