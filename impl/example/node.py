"""A primary-backup register: the engine's own example system.

n1 is the primary; the other servers are backups. The primary orders every update, replicates it
and applies it once a majority (itself included) holds it, then replies. Reads are answered by the
primary from applied state, which makes single-register operations linearizable. Clients retry
with the same sequence number (the primary deduplicates), and give up with ``info`` after a few
tries, as Jepsen clients do.

Seeded bug ``stale-read``: clients send reads to any server, and backups answer from their own
copy, which may lag the primary: a read can miss an acknowledged write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.node import Context, Node

PRIMARY = "n1"


@dataclass(frozen=True)
class Request:
    client: str
    seq: int
    f: str  # read | write | cas
    value: Any


@dataclass(frozen=True)
class Reply:
    seq: int
    ok: bool
    value: Any


@dataclass(frozen=True)
class Replicate:
    version: int
    value: Any


@dataclass(frozen=True)
class Ack:
    version: int


class Server(Node):
    def __init__(self) -> None:
        self.value: Any = None
        self.version = 0
        self.dedup: dict[str, tuple[int, Reply]] = {}
        self.queue: list[Request] = []
        self.inflight: tuple[Request, int, Any, Reply] | None = None
        self.acks: set[str] = set()

    def on_start(self, ctx: Context) -> None:
        self.version, self.value = ctx.storage.get("register", (0, None))
        self.dedup = dict(ctx.storage.get("dedup", ()))

    def state(self) -> Any:
        return (
            self.version,
            self.value,
            tuple(sorted(self.dedup.items())),
            tuple(self.queue),
            self.inflight,
            tuple(sorted(self.acks)),
        )

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, Request):
            self.on_request(ctx, msg)
        elif isinstance(msg, Replicate):
            if msg.version > self.version:
                self.version, self.value = msg.version, msg.value
                ctx.storage.put("register", (self.version, self.value))
            ctx.send(src, Ack(msg.version))
        elif isinstance(msg, Ack) and self.inflight and msg.version == self.inflight[1]:
            self.acks.add(src)
            if 2 * (len(self.acks) + 1) > len(ctx.servers):
                self.commit(ctx)

    def on_request(self, ctx: Context, req: Request) -> None:
        if req.f == "read":
            # only the primary is up to date; a backup answering is the seeded bug
            if ctx.id == PRIMARY or ctx.bug == "stale-read":
                ctx.send(req.client, Reply(req.seq, True, self.value))
            return
        if ctx.id != PRIMARY:
            return
        done = self.dedup.get(req.client)
        if done is not None and done[0] == req.seq:
            ctx.send(req.client, done[1])  # a retry of an applied request: answer again
            return
        if any(q.client == req.client and q.seq == req.seq for q in self.queue):
            return
        if (
            self.inflight
            and self.inflight[0].client == req.client
            and self.inflight[0].seq == req.seq
        ):
            return
        self.queue.append(req)
        self.next(ctx)

    def next(self, ctx: Context) -> None:
        if self.inflight or not self.queue:
            return
        req = self.queue.pop(0)
        if req.f == "write":
            new, reply = req.value, Reply(req.seq, True, req.value)
        else:  # cas [expected, new]
            expected, new = req.value
            if self.value != expected:
                self.finish(ctx, req, Reply(req.seq, False, req.value))
                self.next(ctx)
                return
            reply = Reply(req.seq, True, req.value)
        self.inflight = (req, self.version + 1, new, reply)
        self.acks = set()
        ctx.broadcast(Replicate(self.version + 1, new))
        ctx.set_timer("resend", 8)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "resend" and self.inflight:
            ctx.broadcast(Replicate(self.inflight[1], self.inflight[2]))
            ctx.set_timer("resend", 8)

    def commit(self, ctx: Context) -> None:
        assert self.inflight is not None
        req, version, new, reply = self.inflight
        self.inflight = None
        ctx.cancel_timer("resend")
        self.version, self.value = version, new
        ctx.storage.put("register", (version, new))
        self.finish(ctx, req, reply)
        self.next(ctx)

    def finish(self, ctx: Context, req: Request, reply: Reply) -> None:
        self.dedup[req.client] = (req.seq, reply)
        ctx.storage.put("dedup", tuple(sorted(self.dedup.items())))
        ctx.send(req.client, reply)


class Client(Node):
    """Issues ``ops`` random operations, one at a time, retrying on timeout.

    For small exhaustive configurations the workload can be narrowed: ``script`` fixes the
    operations (e.g. ``("write", "read")``: one per entry, in order, instead of ``ops`` random
    ones), ``value_range`` bounds the values drawn (0..value_range), and ``think=False`` invokes
    each operation at once instead of after a random think time (a timer). The defaults are the
    random workload.
    """

    def __init__(
        self,
        ops: int,
        timeout: int = 25,
        retries: int = 2,
        script: tuple[str, ...] = (),
        value_range: int = 4,
        think: bool = True,
    ) -> None:
        self.ops_left = len(script) if script else ops
        self.timeout = timeout
        self.retries = retries
        self.script = script
        self.value_range = value_range
        self.think = think
        self.seq = 0
        self.current: Request | None = None
        self.tries = 0

    def state(self) -> Any:
        return (self.ops_left, self.seq, self.current, self.tries)

    def on_start(self, ctx: Context) -> None:
        if self.think:
            ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
        else:
            self.invoke(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "think":
            self.invoke(ctx)
        elif name == "timeout" and self.current is not None:
            if self.tries <= self.retries:
                self.send(ctx)
            else:
                op = self.current
                ctx.info(op.f, op.value)
                self.current = None
                self.after(ctx)

    def invoke(self, ctx: Context) -> None:
        if self.ops_left <= 0:
            return
        self.ops_left -= 1
        self.seq += 1
        if self.script:
            kind = ("read", "write", "cas").index(self.script[self.seq - 1])
        else:
            kind = ctx.random.randint(0, 2)
        top = self.value_range
        if kind == 0:
            req = Request(ctx.id, self.seq, "read", None)
        elif kind == 1:
            req = Request(ctx.id, self.seq, "write", ctx.random.randint(0, top))
        else:
            req = Request(
                ctx.id, self.seq, "cas", [ctx.random.randint(0, top), ctx.random.randint(0, top)]
            )
        self.current = req
        self.tries = 0
        ctx.invoke(req.f, req.value)
        self.send(ctx)

    def send(self, ctx: Context) -> None:
        assert self.current is not None
        self.tries += 1
        target = PRIMARY
        if self.current.f == "read" and ctx.bug == "stale-read":
            target = ctx.random.choice(ctx.servers)
        ctx.send(target, self.current)
        ctx.set_timer("timeout", self.timeout)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        op = self.current
        if not isinstance(msg, Reply) or op is None or msg.seq != op.seq:
            return  # a late reply to an operation already given up on
        if msg.ok:
            ctx.ok(op.f, msg.value)
        else:
            ctx.fail(op.f, op.value)
        ctx.cancel_timer("timeout")
        self.current = None
        self.after(ctx)

    def after(self, ctx: Context) -> None:
        if self.ops_left > 0:
            if self.think:
                ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
            else:
                self.invoke(ctx)
