"""The event-store service node.

Streams keyed by aggregate id, each a sequence of events with versions 1, 2, 3, ...; every event
also gets a global position (1, 2, 3, ... across all streams). Appends carry an expected version
(``"any"``, ``"no-stream"`` or an exact version) checked atomically with the write: optimistic
concurrency. Event ids make appends idempotent: a retried append whose first event id is already
stored is answered with the original result and appends nothing.

Durability: every event is written to a write-ahead log on the node's storage, one record per
global position, ``("wal", position) -> (crc32, payload)``. Writes are made durable by group
commit: a ``flush`` timer syncs the storage and only then sends the replies that depended on the
writes (acknowledgements, but also reads and refusals that saw them). A record is written in two
parts (first half, then whole), so a crash with ``torn_writes`` can leave a half record whose
checksum does not match: recovery scans the log from position 1, stops at the first missing or
torn record and deletes it, then rebuilds the stream index from what survived. An append is
atomic: each record names its place in its append's batch (index, size), and recovery also
drops the records of a batch the crash kept only part of (their siblings were unsynced), so a
retry finds either all of its events or none.

Subscriptions: a subscriber sends ``Subscribe(from_position)``; the store pushes the durable
events from there and, after each sync, the new ones. Subscribers re-subscribe periodically,
which repairs lost messages and store restarts.

Protocol events recorded (the checker's input; see docs/eventstore.md):
``appended`` {stream, version, position, event_id, event_type, data, expected, batch},
``rejected`` {stream, expected, actual, event_ids}, ``deduplicated`` {stream, event_ids,
first_version}, ``snapshot_saved`` {stream, version, state}, ``recovered`` {position, torn}.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from treadle.impl.eventstore.aggregates import to_json
from treadle.impl.eventstore.messages import (
    Append,
    AppendReply,
    Commit,
    Deliver,
    Read,
    ReadReply,
    Recorded,
    SaveSnapshot,
    Subscribe,
)

from treadle.node import Context, Node

#: at most this many events per subscription push
PUSH_BATCH = 16


def expected_matches(expected: Any, current: int) -> bool:
    if expected == "any":
        return True
    if expected == "no-stream":
        return current == 0
    return expected == current


def encode(entry: Recorded, batch: int = 0, size: int = 1) -> str:
    """A WAL payload: the event and its place in its append (index ``batch`` of ``size``)."""
    return json.dumps(
        [entry.stream, entry.version, entry.event_id, entry.type, dict(entry.data), batch, size],
        separators=(",", ":"),
        sort_keys=True,
    )


def decode(position: int, payload: str) -> tuple[Recorded, int, int]:
    """The event of a WAL payload, with its index in its append's batch and the batch's size."""
    stream, version, event_id, type_, data, *place = json.loads(payload)
    batch, size = place if len(place) == 2 else (0, 1)
    entry = Recorded(position, stream, version, event_id, type_, tuple(sorted(data.items())))
    return entry, batch, size


def checksum(payload: str) -> int:
    return zlib.crc32(payload.encode("utf-8"))


class Store(Node):
    manual_sync = True

    def __init__(self) -> None:
        self.log: list[Recorded] = []  # log[p - 1] is the event at global position p
        self.streams: dict[str, list[int]] = {}  # stream -> positions, in version order
        self.ids: dict[str, int] = {}  # event id -> position
        self.snapshots: dict[str, tuple[int, Any]] = {}  # stream -> (version, state)
        self.durable = 0  # the last synced position
        self.dirty = False  # writes not yet synced
        self.outbox: list[tuple[str, Any]] = []  # replies held until the next sync
        self.subscribers: dict[str, int] = {}  # subscriber -> next position to push

    def state(self) -> Any:
        return (
            tuple(self.log),
            tuple(sorted(self.snapshots.items())),
            self.durable,
            self.dirty,
            tuple(self.outbox),
            tuple(sorted(self.subscribers.items())),
        )

    # ------------------------------------------------------------------ recovery
    def on_start(self, ctx: Context) -> None:
        self.recover(ctx)

    def on_restart(self, ctx: Context) -> None:
        torn = self.recover(ctx)
        ctx.record("recovered", position=len(self.log), torn=torn)

    def recover(self, ctx: Context) -> int | None:
        """Rebuild the index from the WAL; returns the position of a torn record dropped."""
        storage = ctx.storage
        position = 1
        torn = None
        kept: list[Recorded] = []
        unfinished = 0  # records at the end of the log whose batch continues past them
        while True:
            record = storage.get(("wal", position))
            if record is None:
                break
            crc, payload = record
            if checksum(payload) != crc:
                ctx.sometimes("eventstore: recovery drops a torn WAL record")
                torn = position  # a half-written record: drop it and anything after it
                break
            entry, batch, size = decode(position, payload)
            kept.append(entry)
            unfinished = batch + 1 if batch + 1 < size else 0
            position += 1
        if unfinished:
            # the crash kept only the first events of an append (the rest were unsynced): the
            # append is atomic, so they go too; its client was never answered and retries
            ctx.sometimes("eventstore: recovery drops a partly written append")
            del kept[-unfinished:]
        for entry in kept:
            self.index(entry)
        p = len(kept) + 1
        while storage.get(("wal", p)) is not None:  # the torn record, an unfinished batch
            storage.delete(("wal", p))
            p += 1
        for stream, version, state in storage.get("snapshots", ()):
            # a snapshot never refers past its stream (it is written after the events it folds)
            if version <= len(self.streams.get(stream, ())):
                ctx.sometimes("eventstore: a snapshot survives a restart")
                self.snapshots[stream] = (version, state)
        storage.sync()
        self.durable = len(self.log)
        return torn

    def index(self, entry: Recorded) -> None:
        self.log.append(entry)
        self.streams.setdefault(entry.stream, []).append(entry.position)
        self.ids[entry.event_id] = entry.position

    def version(self, stream: str) -> int:
        return len(self.streams.get(stream, ()))

    # ------------------------------------------------------------------ requests
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Append):
            self.on_append(ctx, src, msg)
        elif isinstance(msg, Read):
            self.on_read(ctx, src, msg)
        elif isinstance(msg, SaveSnapshot):
            self.on_snapshot(ctx, msg)
        elif isinstance(msg, Subscribe):
            self.subscribers[src] = msg.from_position
            self.push(ctx, src)
        elif isinstance(msg, Commit):
            self.write(ctx, msg.client, msg.append, msg.first_version)

    def on_append(self, ctx: Context, src: str, m: Append) -> None:
        ids = [e.event_id for e in m.events]
        if ids[0] in self.ids:
            self.on_retry(ctx, src, m, ids)
            return
        current = self.version(m.stream)
        if not expected_matches(m.expected, current):
            # optimistic concurrency: the check that prevents lost updates
            ctx.sometimes("eventstore: an append is refused for a wrong expected version")
            ctx.record(
                "rejected", stream=m.stream, expected=m.expected, actual=current, event_ids=ids
            )
            self.reply(ctx, src, AppendReply(m.req, False, actual=current, error="wrong-version"))
            return
        if ctx.bug == "non-atomic-version-check":
            # the check is done; the write happens in a later step, against the version seen
            # now: another append can pass the same check in between (a lost update)
            ctx.send(ctx.id, Commit(src, m, current + 1))
            return
        self.write(ctx, src, m, current + 1)

    def on_retry(self, ctx: Context, src: str, m: Append, ids: list[str]) -> None:
        """An append whose first event id is stored: a retry. Answer as the first time."""
        first = self.ids[ids[0]]
        entries = self.log[first - 1 : first - 1 + len(ids)]
        if [e.event_id for e in entries] != ids or any(e.stream != m.stream for e in entries):
            self.reply(ctx, src, AppendReply(m.req, False, error="event-id-reused"))
            return
        ctx.sometimes("eventstore: a retried append is answered from the stored events")
        ctx.record("deduplicated", stream=m.stream, event_ids=ids, first_version=entries[0].version)
        reply = AppendReply(
            m.req,
            True,
            entries[0].version,
            entries[-1].version,
            tuple(e.position for e in entries),
        )
        self.reply(ctx, src, reply)

    def write(self, ctx: Context, src: str, m: Append, first_version: int) -> None:
        storage = ctx.storage
        ctx.sometimes("eventstore: a batch of several events appended at once", len(m.events) > 1)
        positions = []
        for i, new in enumerate(m.events):
            entry = Recorded(
                len(self.log) + 1, m.stream, first_version + i, new.event_id, new.type, new.data
            )
            payload = encode(entry, i, len(m.events))
            crc = checksum(payload)
            # the record reaches the disk in two parts: a crash may keep only the first
            storage.put(("wal", entry.position), (crc, payload[: len(payload) // 2]))
            storage.put(("wal", entry.position), (crc, payload))
            if ctx.bug == "non-atomic-version-check" and self.version(m.stream) >= entry.version:
                # the lost update: the version is taken again, the index forgets the first one
                self.streams[m.stream] = self.streams[m.stream][: entry.version - 1]
            self.index(entry)
            positions.append(entry.position)
            ctx.record(
                "appended",
                stream=entry.stream,
                version=entry.version,
                position=entry.position,
                event_id=entry.event_id,
                event_type=entry.type,
                data=dict(entry.data),
                expected=m.expected,
                batch=i,
            )
        self.dirty = True
        reply = AppendReply(
            m.req, True, first_version, first_version + len(m.events) - 1, tuple(positions)
        )
        if ctx.bug == "no-fsync":
            ctx.send(src, reply)  # acknowledged before the flush makes it durable
        else:
            self.reply(ctx, src, reply)
        self.schedule_flush(ctx)

    def on_read(self, ctx: Context, src: str, m: Read) -> None:
        snapshot = self.snapshots.get(m.stream) if m.with_snapshot else None
        if m.from_version is not None:
            start = m.from_version
        else:
            start = snapshot[0] + 1 if snapshot else 1
        positions = self.streams.get(m.stream, [])
        events = tuple(self.log[p - 1] for p in positions[max(start, 1) - 1 :])
        self.reply(ctx, src, ReadReply(m.req, start, events, snapshot))

    def on_snapshot(self, ctx: Context, m: SaveSnapshot) -> None:
        old = self.snapshots.get(m.stream)
        if (old is not None and old[0] >= m.version) or m.version > self.version(m.stream):
            return
        self.snapshots[m.stream] = (m.version, m.state)
        ctx.storage.put(
            "snapshots", tuple((s, v, st) for s, (v, st) in sorted(self.snapshots.items()))
        )
        ctx.record("snapshot_saved", stream=m.stream, version=m.version, state=to_json(m.state))
        self.dirty = True
        self.schedule_flush(ctx)

    # ------------------------------------------------------------------ group commit
    def reply(self, ctx: Context, dst: str, msg: Any) -> None:
        """Send now if nothing unsynced exists, else after the next sync: a reply must never
        reveal a write that a crash could still take back."""
        if self.dirty:
            self.outbox.append((dst, msg))
        else:
            ctx.send(dst, msg)

    def schedule_flush(self, ctx: Context) -> None:
        if not ctx.timer_pending("flush"):
            ctx.set_timer("flush", int(ctx.config["group_commit_delay"]))

    def on_timer(self, ctx: Context, name: str) -> None:
        if name != "flush":
            return
        ctx.storage.sync()
        self.dirty = False
        self.durable = len(self.log)
        outbox, self.outbox = self.outbox, []
        for dst, msg in outbox:
            ctx.send(dst, msg)
        for sub in sorted(self.subscribers):
            self.push(ctx, sub)

    def push(self, ctx: Context, sub: str) -> None:
        """Send the subscriber every durable event from its cursor on, in batches."""
        start = max(self.subscribers[sub], 1)
        while start <= self.durable:
            end = min(self.durable, start + PUSH_BATCH - 1)
            ctx.send(sub, Deliver(tuple(self.log[start - 1 : end])))
            start = end + 1
        self.subscribers[sub] = start
