"""Servers, clients and the admin of the replicated kv store.

Every server can coordinate any request. Replicas of a key are its preference list on the ring
of the current configuration (``Cfg``); during a membership change the configuration is *joint*
and quorums are needed in both the old and the new preference lists.

Strict mode (linearizable single-key get/put/delete) is ABD (Attiya, Bar-Noy, Dolev, JACM 1995),
multi-writer: a put first reads the highest version from a read quorum of R replicas, then
writes ``(highest counter + 1, coordinator, incarnation)`` to a write quorum of W replicas; a get
reads a quorum and, unless W replicas already hold the highest version, writes it back to W
replicas (read repair before returning) so that no later read can see an older value. R + W > N
makes every read quorum meet every write quorum. Replicas reject requests from a lower epoch
(``Nack``), which is what keeps acknowledged writes and reads inside quorums across membership
changes (see ``docs/kv.md``).

Sloppy mode (durability and convergence only) writes ``(max(now, clock + 1), coordinator,
incarnation)`` (last writer wins) to the first W replicas that answer, counting a fallback
node's hinted write for a replica that did not answer (sloppy quorum + hinted handoff, as
Dynamo), reads R replicas and repairs stale ones in the background.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from treadle.impl.kv.messages import (
    AuditReq,
    AuditResp,
    Cfg,
    ClientReq,
    ClientResp,
    ConfigAck,
    ConfigMsg,
    Digest,
    Handoff,
    HandoffAck,
    HintedWrite,
    Nack,
    Read,
    ReadResp,
    SyncPush,
    SyncReply,
    Transfer,
    TransferAck,
    TransferDone,
    Version,
    Write,
    WriteAck,
)
from treadle.impl.kv.ring import Ring

from treadle.node import Context, Node

ADMIN = "admin"
NONE: Version = ()  # the version of a key never written


@lru_cache(maxsize=256)
def ring_of(members: tuple[str, ...], vnodes: int) -> Ring:
    return Ring(members, vnodes)


def mode_of(config: dict[str, Any], bug: str | None) -> str:
    """``auto`` is strict, except for the seeded bug that only sloppy quorums can show."""
    mode = config["mode"]
    if mode == "auto":
        return "sloppy" if bug == "no-handoff" else "strict"
    return mode


def quorums(config: dict[str, Any], bug: str | None) -> tuple[int, int, int]:
    n = int(config["replicas"])
    if mode_of(config, bug) == "strict":
        r, w = int(config["r"]) or n // 2 + 1, int(config["w"]) or n // 2 + 1
        if bug == "sloppy-claims-linearizable":
            r = w = max(1, n // 2)  # R + W <= N: quorums need not meet
    else:
        r, w = int(config["r"]) or 1, int(config["w"]) or 1
    return n, r, w


def initial_cfg(config: dict[str, Any], servers: tuple[str, ...]) -> Cfg:
    return Cfg(0, tuple(servers[: int(config["members"])]))


def jv(version: Version) -> list | None:
    """A version as JSON."""
    return list(version) if version else None


class Op:
    """A request this node coordinates (volatile: lost in a crash, the client times out)."""

    __slots__ = (
        "id",
        "client",
        "seq",
        "f",
        "key",
        "value",
        "phase",
        "cfg",
        "lists",
        "replies",
        "acks",
        "version",
        "wvalue",
        "tries",
        "fallbacks",
    )

    def __init__(self, op_id: tuple, client: str, req: ClientReq):
        self.id = op_id
        self.client = client
        self.seq = req.seq
        self.f = req.f
        self.key = req.key
        self.value = req.value
        self.phase = "read"
        self.cfg: Cfg | None = None
        self.lists: tuple[tuple[str, ...], ...] = ()
        self.replies: dict[str, tuple[Version, Any]] = {}
        self.acks: set[str] = set()
        self.version: Version = NONE
        self.wvalue: Any = None
        self.tries = 0
        self.fallbacks: dict[str, str] = {}

    def targets(self) -> tuple[str, ...]:
        out: list[str] = []
        for lst in self.lists:
            for n in lst:
                if n not in out:
                    out.append(n)
        return tuple(out)

    def snapshot(self) -> tuple:
        return (
            self.id,
            self.f,
            self.key,
            self.phase,
            self.version,
            tuple(sorted(self.replies.items(), key=repr)),
            tuple(sorted(self.acks)),
            self.tries,
        )


class Server(Node):
    def __init__(self) -> None:
        self.cfg = Cfg(0, ())
        self.store: dict[str, tuple[Version, Any]] = {}
        self.hints: dict[tuple[str, str], tuple[Version, Any]] = {}
        self.ops: dict[tuple, Op] = {}
        self.seen: dict[str, int] = {}
        self.issued: dict[str, int] = {}
        self.clock = 0
        self.incarnation = 0
        self.next_op = 0
        self.transferred = 0
        self.transfer_epoch = 0
        self.transfer_pending: dict[str, tuple] = {}
        self.ae_cursor = 0

    # ------------------------------------------------------------------ lifecycle
    def on_start(self, ctx: Context) -> None:
        c = ctx.config
        self.mode = mode_of(c, ctx.bug)
        self.n, self.r, self.w = quorums(c, ctx.bug)
        self.vnodes = int(c["vnodes"])
        self.op_timeout = int(c["op_timeout"])
        self.op_tries = int(c["op_tries"])
        self.ae_interval = int(c["anti_entropy_interval"])
        # sloppy writes take max(now, clock + 1) as their counter ("now", last-writer-wins by
        # time); "lamport" drops now: exhaustive search (asynchronous model) keeps no time
        self.lamport = c["sloppy_clock"] == "lamport"
        st = ctx.storage
        self.cfg = st.get("cfg") or initial_cfg(c, ctx.servers)
        self.incarnation = st.get("incarnation", 0) + 1
        st.put("incarnation", self.incarnation)
        self.transferred = st.get("transferred", 0)
        self.seen = dict(st.get("seen", ()))
        for k, v in st.items():
            if isinstance(k, tuple) and k[0] == "kv":
                self.store[k[1]] = v
                self.clock = max(self.clock, v[0][0])
            elif isinstance(k, tuple) and k[0] == "hint":
                self.hints[(k[1], k[2])] = v
        if self.ae_interval > 0:
            ctx.set_timer("anti-entropy", self.ae_interval)
        if self.hints:
            ctx.set_timer("handoff", 5)
        self.maybe_transfer(ctx)

    def state(self) -> Any:
        return (
            self.cfg,
            tuple(sorted(self.store.items())),
            tuple(sorted(self.hints.items())),
            tuple(sorted(op.snapshot() for op in self.ops.values())),
            tuple(sorted(self.seen.items())),
            self.transferred,
            tuple(sorted(self.transfer_pending)),
            self.ae_cursor,
            # these decide the versions and op ids of later writes: states differing in them
            # must stay apart in exhaustive search
            self.clock,
            tuple(sorted(self.issued.items())),
            self.next_op,
            self.transfer_epoch,
        )

    # ------------------------------------------------------------------ ring helpers
    def pref(self, members: tuple[str, ...], key: str) -> tuple[str, ...]:
        return ring_of(members, self.vnodes).preference_list(key, self.n)

    def lists(self, key: str, cfg: Cfg | None = None) -> tuple[tuple[str, ...], ...]:
        cfg = cfg or self.cfg
        new = self.pref(cfg.members, key)
        if cfg.old is None:
            return (new,)
        return (self.pref(cfg.old, key), new)

    def replica_set(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for lst in self.lists(key):
            out.extend(n for n in lst if n not in out)
        return tuple(out)

    # ------------------------------------------------------------------ storage
    def put_local(self, ctx: Context, key: str, version: Version, value: Any) -> None:
        self.store[key] = (version, value)
        ctx.storage.put(("kv", key), (version, value))
        if version and version[0] > self.clock:
            self.clock = version[0]

    def merge(self, ctx: Context, key: str, version: Version, value: Any) -> bool:
        """Keep the higher version (the only way data enters a replica, except the bug)."""
        cur = self.store.get(key)
        if cur is None or version > cur[0]:
            self.put_local(ctx, key, version, value)
            return True
        return False

    def version_of(self, key: str) -> Version:
        cur = self.store.get(key)
        return cur[0] if cur else NONE

    # ------------------------------------------------------------------ configuration
    def adopt(self, ctx: Context, cfg: Cfg) -> None:
        if cfg.epoch <= self.cfg.epoch:
            return
        self.cfg = cfg
        ctx.sometimes("kv: a server adopts a joint configuration", cfg.old is not None)
        ctx.storage.put("cfg", cfg)
        ctx.record("epoch", epoch=cfg.epoch, members=list(cfg.members), joint=cfg.old is not None)
        if cfg.old is None:
            # the change is complete: every old replica handed its keys over before the admin
            # published this configuration, so keys this node no longer replicates can go
            for key in sorted(self.store):
                if ctx.id not in self.pref(cfg.members, key):
                    del self.store[key]
                    ctx.storage.delete(("kv", key))
        self.maybe_transfer(ctx)

    def fresh(self, ctx: Context, src: str, cfg: Cfg, op: tuple | None) -> bool:
        """Adopt a newer configuration; refuse (Nack) a request made under an older one."""
        if cfg.epoch > self.cfg.epoch:
            self.adopt(ctx, cfg)
        elif cfg.epoch < self.cfg.epoch:
            # what keeps quorums intersecting across membership changes (docs/kv.md)
            ctx.sometimes("kv: a replica refuses a request made under an older configuration")
            ctx.send(src, Nack(op, self.cfg))
            return False
        return True

    def maybe_transfer(self, ctx: Context) -> None:
        """In a joint configuration, hand every key this node stops replicating to the nodes
        that start replicating it; report to the admin once every receiver acknowledged."""
        cfg = self.cfg
        if cfg.old is None or ctx.id not in cfg.old or self.transferred >= cfg.epoch:
            return
        if self.transfer_epoch == cfg.epoch and self.transfer_pending:
            return  # in progress
        out: dict[str, list[tuple]] = {}
        if ctx.bug == "lose-on-remove" and ctx.id not in cfg.members:
            # seeded bug: a removed node drops its data instead of handing it over
            for key in sorted(self.store):
                ctx.storage.delete(("kv", key))
            self.store.clear()
        for key in sorted(self.store):
            version, value = self.store[key]
            old, new = self.pref(cfg.old, key), self.pref(cfg.members, key)
            if ctx.id in old and ctx.id not in new:
                for dst in new:
                    if dst not in old:
                        out.setdefault(dst, []).append((key, version, value))
        self.transfer_epoch = cfg.epoch
        self.transfer_pending = {dst: tuple(items) for dst, items in sorted(out.items())}
        if not self.transfer_pending:
            self.finish_transfer(ctx)
            return
        for dst, items in self.transfer_pending.items():
            ctx.send(dst, Transfer(cfg.epoch, items))
        ctx.set_timer("transfer", 8)

    def finish_transfer(self, ctx: Context) -> None:
        self.transferred = self.transfer_epoch
        ctx.storage.put("transferred", self.transferred)
        ctx.record("handed-over", epoch=self.transferred)
        ctx.send(ADMIN, TransferDone(self.transferred))

    # ------------------------------------------------------------------ messages
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is ClientReq:
            self.on_client(ctx, src, msg)
        elif t is Read:
            if self.fresh(ctx, src, msg.cfg, msg.op):
                v = self.store.get(msg.key, (NONE, None))
                ctx.send(src, ReadResp(msg.op, msg.key, v[0], v[1]))
        elif t is Write:
            self.on_write(ctx, src, msg)
        elif t is ReadResp:
            self.on_read_resp(ctx, src, msg)
        elif t is WriteAck:
            self.on_write_ack(ctx, src, msg)
        elif t is Nack:
            self.on_nack(ctx, msg)
        elif t is HintedWrite:
            if ctx.bug != "no-handoff":
                self.hints[(msg.target, msg.key)] = max(
                    self.hints.get((msg.target, msg.key), (NONE, None)), (msg.version, msg.value)
                )
                ctx.storage.put(("hint", msg.target, msg.key), self.hints[(msg.target, msg.key)])
                if not ctx.timer_pending("handoff"):
                    ctx.set_timer("handoff", 5)
            # with the seeded bug no-handoff the write is acknowledged and dropped
            ctx.send(src, WriteAck(msg.op, msg.key, msg.version, msg.target))
        elif t is Handoff:
            if self.fresh(ctx, src, msg.cfg, None):
                self.merge(ctx, msg.key, msg.version, msg.value)
                ctx.send(src, HandoffAck(msg.target, msg.key, msg.version))
        elif t is HandoffAck:
            hint = self.hints.get((msg.target, msg.key))
            if hint is not None and hint[0] == msg.version:
                del self.hints[(msg.target, msg.key)]
                ctx.storage.delete(("hint", msg.target, msg.key))
        elif t is Digest:
            self.on_digest(ctx, src, msg)
        elif t is SyncReply:
            for key, version, value in msg.items:
                self.merge(ctx, key, version, value)
            items = tuple((k, *self.store[k]) for k in msg.wants if k in self.store)
            if items:
                ctx.send(src, SyncPush(items))
        elif t is SyncPush:
            for key, version, value in msg.items:
                self.merge(ctx, key, version, value)
        elif t is ConfigMsg:
            self.adopt(ctx, msg.cfg)
            ctx.send(src, ConfigAck(self.cfg.epoch))
            cfg = msg.cfg
            if cfg.old is not None and ctx.id in cfg.old and self.transferred >= cfg.epoch:
                ctx.send(ADMIN, TransferDone(cfg.epoch))
            self.maybe_transfer(ctx)
        elif t is Transfer:
            for key, version, value in msg.items:
                self.merge(ctx, key, version, value)
            ctx.send(src, TransferAck(msg.epoch))
        elif t is TransferAck:
            if msg.epoch == self.transfer_epoch and src in self.transfer_pending:
                del self.transfer_pending[src]
                if not self.transfer_pending:
                    ctx.cancel_timer("transfer")
                    self.finish_transfer(ctx)
        elif t is AuditReq:
            v = self.store.get(msg.key, (NONE, None))
            ctx.send(src, AuditResp(msg.key, self.cfg, v[0], v[1]))

    def on_write(self, ctx: Context, src: str, msg: Write) -> None:
        if not self.fresh(ctx, src, msg.cfg, msg.op):
            return
        if msg.repair and ctx.bug == "stale-read-repair":
            # seeded bug: a read repair overwrites whatever the replica holds, newer or not
            if self.store.get(msg.key, (NONE, None))[0] != msg.version:
                self.put_local(ctx, msg.key, msg.version, msg.value)
        else:
            self.merge(ctx, msg.key, msg.version, msg.value)
        if msg.op is not None:
            ctx.send(src, WriteAck(msg.op, msg.key, msg.version, ctx.id))

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "anti-entropy":
            self.anti_entropy(ctx)
            ctx.set_timer("anti-entropy", self.ae_interval)
        elif name == "handoff":
            self.handoff(ctx)
        elif name == "transfer":
            if self.transfer_pending and self.transfer_epoch == self.cfg.epoch:
                for dst, items in self.transfer_pending.items():
                    ctx.send(dst, Transfer(self.transfer_epoch, items))
                ctx.set_timer("transfer", 8)
        elif name.startswith("op:"):
            _, inc, num = name.split(":")
            op = self.ops.get((int(inc), int(num)))
            if op is not None:
                self.op_timeout_fired(ctx, op)

    # ------------------------------------------------------------------ coordinating
    def on_client(self, ctx: Context, src: str, req: ClientReq) -> None:
        if self.seen.get(src, 0) >= req.seq:
            return  # a duplicate of a request already started: never run an operation twice
        self.seen[src] = req.seq
        ctx.storage.put("seen", tuple(sorted(self.seen.items())))
        self.next_op += 1
        op = Op((self.incarnation, self.next_op), src, req)
        self.ops[op.id] = op
        if self.mode == "sloppy" and req.f != "get":
            counter = self.clock + 1 if self.lamport else max(ctx.now, self.clock + 1)
            self.clock = counter
            self.start_write(ctx, op, (counter, ctx.id, self.incarnation), op.value)
        else:
            self.start_read(ctx, op)

    def timer_name(self, op: Op) -> str:
        return f"op:{op.id[0]}:{op.id[1]}"

    def start_read(self, ctx: Context, op: Op) -> None:
        op.phase = "read"
        op.cfg = self.cfg
        op.lists = self.lists(op.key)
        op.replies = {}
        msg = Read(op.id, op.key, self.cfg)
        for dst in op.targets():
            ctx.send(dst, msg)
        ctx.set_timer(self.timer_name(op), self.op_timeout)

    def start_write(self, ctx: Context, op: Op, version: Version, value: Any) -> None:
        op.phase = "write"
        op.cfg = self.cfg
        op.lists = self.lists(op.key)
        op.version, op.wvalue = version, value
        op.acks = set()
        op.fallbacks = {}
        self.send_writes(ctx, op, op.targets())
        ctx.set_timer(self.timer_name(op), self.op_timeout)

    def send_writes(self, ctx: Context, op: Op, dsts: tuple[str, ...]) -> None:
        assert op.cfg is not None
        msg = Write(op.id, op.key, op.version, op.wvalue, op.cfg, repair=op.f == "get")
        for dst in dsts:
            ctx.send(dst, msg)

    def quorum(self, op: Op, have: Any, need: int) -> bool:
        return all(sum(1 for n in lst if n in have) >= min(need, len(lst)) for lst in op.lists)

    def on_read_resp(self, ctx: Context, src: str, msg: ReadResp) -> None:
        op = self.ops.get(msg.op)
        if op is None or op.phase != "read":
            return
        op.replies[src] = (msg.version, msg.value)
        if msg.version and msg.version[0] > self.clock:
            self.clock = msg.version[0]
        if not self.quorum(op, op.replies, self.r):
            return
        best_version, best_value = max(op.replies.values(), key=lambda vv: vv[0])
        ctx.sometimes(
            "kv: a read quorum sees different versions of a key",
            len({v for v, _ in op.replies.values()}) > 1,
        )
        if op.f == "get":
            holders = {n for n, (v, _) in op.replies.items() if v == best_version}
            if self.mode == "sloppy":
                stale = tuple(sorted(n for n in op.replies if n not in holders))
                if best_version and stale:
                    assert op.cfg is not None
                    repair = Write(None, op.key, best_version, best_value, op.cfg, repair=True)
                    for dst in stale:
                        ctx.send(dst, repair)
                self.reply(ctx, op, True, best_value, best_version)
            elif not best_version or self.quorum(op, holders, self.w):
                self.reply(ctx, op, True, best_value, best_version)
            else:
                # ABD: write the value back to a write quorum before returning it
                ctx.sometimes("kv: a get writes a newer value back before returning it")
                self.start_write(ctx, op, best_version, best_value)
        else:
            counter = max(best_version[0] if best_version else 0, self.issued.get(op.key, 0))
            self.issued[op.key] = counter + 1
            value = op.value if op.f == "put" else None
            self.start_write(ctx, op, (counter + 1, ctx.id, self.incarnation), value)

    def on_write_ack(self, ctx: Context, src: str, msg: WriteAck) -> None:
        op = self.ops.get(msg.op)
        if op is None or op.phase != "write" or msg.version != op.version:
            return
        if msg.for_node != src and self.mode == "strict":
            return  # a fallback's hint keeps the write durable but is not a strict replica
        op.acks.add(msg.for_node)
        if self.quorum(op, op.acks, self.w):
            self.reply(ctx, op, True, op.wvalue, op.version)

    def on_nack(self, ctx: Context, msg: Nack) -> None:
        if msg.cfg.epoch > self.cfg.epoch:
            self.adopt(ctx, msg.cfg)
        op = self.ops.get(msg.op) if msg.op is not None else None
        if op is None or op.cfg is None or op.cfg.epoch >= self.cfg.epoch:
            return
        # the quorum was computed on a stale ring: redo the phase on the current one. A write
        # keeps its version: it may already have landed on some replicas, and a second, higher
        # version of the same put would make it take effect twice (ABD only needs the version
        # to exceed every write completed before this one started, which still holds).
        op.tries += 1
        if op.tries > self.op_tries:
            self.give_up(ctx, op)
            return
        ctx.sometimes("kv: a coordinator redoes a phase on the new ring after a Nack")
        if op.phase == "write":
            self.start_write(ctx, op, op.version, op.wvalue)
        else:
            self.start_read(ctx, op)

    def op_timeout_fired(self, ctx: Context, op: Op) -> None:
        op.tries += 1
        if op.tries > self.op_tries:
            self.give_up(ctx, op)
            return
        if op.phase == "read":
            missing = tuple(n for n in op.targets() if n not in op.replies)
            msg = Read(op.id, op.key, op.cfg)  # type: ignore[arg-type]
            for dst in missing:
                ctx.send(dst, msg)
        else:
            missing = tuple(n for n in op.targets() if n not in op.acks)
            self.send_writes(ctx, op, missing)
            self.send_hints(ctx, op, missing)
        ctx.set_timer(self.timer_name(op), self.op_timeout)

    def send_hints(self, ctx: Context, op: Op, missing: tuple[str, ...]) -> None:
        """Hinted handoff: a replica that does not answer gets its write parked at the next
        node clockwise outside the preference list, which hands it over later."""
        assert op.cfg is not None
        homes = op.targets()
        walk = ring_of(op.cfg.members, self.vnodes).walk(op.key)
        spare = [n for n in walk if n not in homes and n not in op.fallbacks.values()]
        for target in missing:
            holder = op.fallbacks.get(target)
            if holder is None:
                if not spare:
                    continue
                holder = op.fallbacks[target] = spare.pop(0)
            ctx.send(holder, HintedWrite(op.id, target, op.key, op.version, op.wvalue))

    def give_up(self, ctx: Context, op: Op) -> None:
        self.reply(ctx, op, False, None, NONE)

    def reply(self, ctx: Context, op: Op, ok: bool, value: Any, version: Version) -> None:
        ctx.cancel_timer(self.timer_name(op))
        del self.ops[op.id]
        ctx.send(op.client, ClientResp(op.seq, ok, value, version))

    # ------------------------------------------------------------------ hinted handoff
    def handoff(self, ctx: Context) -> None:
        for (target, key), (version, value) in sorted(self.hints.items()):
            home = self.pref(self.cfg.members, key)
            # the target may have left the ring meanwhile: then the key's current replicas
            dsts = (target,) if target in home else home
            for dst in dsts:
                if dst == ctx.id:
                    self.merge(ctx, key, version, value)
                    del self.hints[(target, key)]
                    ctx.storage.delete(("hint", target, key))
                    break
                ctx.send(dst, Handoff(target, key, version, value, self.cfg))
        if self.hints:
            ctx.set_timer("handoff", 8)

    # ------------------------------------------------------------------ anti-entropy
    def anti_entropy(self, ctx: Context) -> None:
        """Exchange a per-key digest of the key range shared with one peer (round robin)."""
        cfg = self.cfg
        everyone = tuple(sorted(set(cfg.members) | set(cfg.old or ())))
        if ctx.id not in everyone:
            return
        peers = [n for n in everyone if n != ctx.id]
        if not peers:
            return
        peer = peers[self.ae_cursor % len(peers)]
        self.ae_cursor += 1
        versions = tuple(
            (key, self.store[key][0])
            for key in sorted(self.store)
            if peer in self.replica_set(key) and ctx.id in self.replica_set(key)
        )
        ctx.send(peer, Digest(cfg, versions))

    def on_digest(self, ctx: Context, src: str, msg: Digest) -> None:
        if msg.cfg.epoch > self.cfg.epoch:
            self.adopt(ctx, msg.cfg)
        elif msg.cfg.epoch < self.cfg.epoch:
            return
        theirs = dict(msg.versions)
        newer_here = []
        for key in sorted(self.store):
            rs = self.replica_set(key)
            if src in rs and ctx.id in rs and self.store[key][0] > theirs.get(key, NONE):
                newer_here.append((key, *self.store[key]))
        wants = tuple(k for k, v in msg.versions if v > self.version_of(k))
        if newer_here or wants:
            ctx.send(src, SyncReply(tuple(newer_here), wants))


class Client(Node):
    """Issues ``ops`` random operations one at a time to a random server (a load balancer's
    choice). A timeout is indeterminate for put/delete (``info``) and a failure for get."""

    def __init__(
        self,
        ops: int,
        keys: int,
        timeout: int,
        script: tuple[str, ...] = (),
        think: bool = True,
    ) -> None:
        # exhaustive runs narrow the workload: ``script`` fixes the operations, in order (one
        # per entry instead of ``ops`` random ones), ``think=False`` invokes each at once (no
        # think timer) and ``timeout <= 0`` waits for the reply (no timeout timer)
        self.ops_left = len(script) if script else ops
        self.keys = keys
        self.timeout = timeout
        self.script = script
        self.think = think
        self.seq = 0
        self.current: ClientReq | None = None

    def state(self) -> Any:
        return (self.ops_left, self.seq, self.current)

    def on_start(self, ctx: Context) -> None:
        if self.think:
            ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
        else:
            self.invoke(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "think":
            self.invoke(ctx)
        elif name == "timeout" and self.current is not None:
            op = self.current
            if op.f == "get":
                ctx.fail("get", None, key=op.key)
            else:
                ctx.info(op.f, op.value, key=op.key)
            self.current = None
            self.after(ctx)

    def invoke(self, ctx: Context) -> None:
        if self.ops_left <= 0:
            return
        self.ops_left -= 1
        self.seq += 1
        if self.script:
            f = self.script[self.seq - 1]
        else:
            roll = ctx.random.randint(0, 9)
            f = "get" if roll < 4 else "put" if roll < 9 else "delete"
        key = f"k{ctx.random.randint(0, self.keys - 1)}"
        value = f"{ctx.id}-{self.seq}" if f == "put" else None
        self.current = ClientReq(self.seq, f, key, value)
        ctx.invoke(f, value, key=key)
        ctx.send(ctx.random.choice(ctx.servers), self.current)
        if self.timeout > 0:
            ctx.set_timer("timeout", self.timeout)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        op = self.current
        if type(msg) is not ClientResp or op is None or msg.seq != op.seq:
            return
        ctx.cancel_timer("timeout")
        if msg.ok:
            if op.f == "get":
                ctx.ok("get", msg.value, key=op.key, version=jv(msg.version))
            else:
                ctx.ok(op.f, op.value, key=op.key, version=jv(msg.version))
        elif op.f == "get":
            ctx.fail("get", None, key=op.key)
        else:
            ctx.info(op.f, op.value, key=op.key)  # the coordinator gave up: maybe written
        self.current = None
        self.after(ctx)

    def after(self, ctx: Context) -> None:
        if self.ops_left > 0:
            if self.think:
                ctx.set_timer("think", 1 + ctx.random.randint(0, 3))
            else:
                self.invoke(ctx)


class Admin(Node):
    """The operator: drives membership changes (join, leave, replace) as two-step epochs, and
    at the end of a run reads every replica of every key (the audit).

    A change from members M to M' publishes the joint configuration (epoch e+1, old M, new M');
    once every node of M reports that it handed over the keys it stops replicating, it publishes
    the final configuration (epoch e+2, M'), and waits until every server has it."""

    def __init__(self, changes: int, keys: int, interval: int, replicas: int) -> None:
        self.changes_left = changes
        self.keys = keys
        self.interval = interval
        self.replicas = replicas
        self.cfg = Cfg(0, ())
        self.phase = "idle"  # idle | joint | final
        self.waiting: set[str] = set()
        self.acked: set[str] = set()
        self.audit_state = "off"  # off | wanted | running | done
        self.audit: dict[tuple[str, str], tuple[Cfg, Version, Any]] = {}

    def state(self) -> Any:
        return (
            self.changes_left,
            self.cfg,
            self.phase,
            tuple(sorted(self.waiting)),
            tuple(sorted(self.acked)),
            self.audit_state,
            tuple(sorted(self.audit)),
        )

    @property
    def audit_done(self) -> bool:
        return self.audit_state == "done"

    def on_start(self, ctx: Context) -> None:
        self.cfg = initial_cfg(ctx.config, ctx.servers)
        self.vnodes = int(ctx.config["vnodes"])
        if self.changes_left > 0:
            ctx.set_timer("membership", self.interval + ctx.random.randint(0, self.interval))

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "membership":
            self.change(ctx)
        elif name == "resend":
            self.publish(ctx)
        elif name == "audit":
            self.send_audit(ctx)

    def change(self, ctx: Context) -> None:
        if self.phase != "idle" or self.changes_left <= 0 or self.audit_state != "off":
            return
        members = self.cfg.members
        spares = [s for s in ctx.servers if s not in members]
        kinds = []
        if spares:
            kinds += ["join", "replace"]
        if len(members) > self.replicas:
            kinds.append("leave")
        if not kinds:
            return
        kind = ctx.random.choice(kinds)
        if kind == "join":
            joiner = ctx.random.choice(spares)
            new, detail = members + (joiner,), {"joins": joiner}
        elif kind == "leave":
            leaver = ctx.random.choice(members)
            new, detail = tuple(m for m in members if m != leaver), {"leaves": leaver}
        else:
            leaver, joiner = ctx.random.choice(members), ctx.random.choice(spares)
            new = tuple(joiner if m == leaver else m for m in members)
            detail = {"leaves": leaver, "joins": joiner}
        self.changes_left -= 1
        self.cfg = Cfg(self.cfg.epoch + 1, tuple(sorted(new)), old=members)
        self.phase = "joint"
        self.waiting = set(members)
        self.acked = set()
        ctx.record("membership-change", change=kind, epoch=self.cfg.epoch, **detail)
        self.publish(ctx)

    def publish(self, ctx: Context) -> None:
        if self.phase == "idle":
            return
        for s in ctx.servers:
            if s not in self.acked or s in self.waiting:
                ctx.send(s, ConfigMsg(self.cfg))
        ctx.set_timer("resend", 10)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is TransferDone:
            if self.phase == "joint" and msg.epoch == self.cfg.epoch:
                self.waiting.discard(src)
                if not self.waiting:
                    self.cfg = Cfg(self.cfg.epoch + 1, self.cfg.members)
                    self.phase = "final"
                    self.acked = set()
                    self.publish(ctx)
        elif t is ConfigAck:
            if msg.epoch >= self.cfg.epoch:
                self.acked.add(src)
                if self.phase == "final" and len(self.acked) == len(ctx.servers):
                    self.phase = "idle"
                    ctx.cancel_timer("resend")
                    ctx.record(
                        "membership-done", epoch=self.cfg.epoch, members=list(self.cfg.members)
                    )
                    if self.audit_state == "wanted":
                        self.start_audit(ctx)
                    elif self.changes_left > 0:
                        ctx.set_timer(
                            "membership", self.interval + ctx.random.randint(0, self.interval)
                        )
        elif t is AuditResp:
            if self.audit_state == "running":
                self.audit[(msg.key, src)] = (msg.cfg, msg.version, msg.value)
                if len(self.audit) == self.keys * len(ctx.servers):
                    self.finish_audit(ctx)

    # ------------------------------------------------------------------ audit
    def begin_audit(self, ctx: Context) -> None:
        """Called by the binding once the faults stopped: read every key at every server."""
        ctx.cancel_timer("membership")
        self.audit_state = "wanted"
        if self.phase == "idle":
            self.start_audit(ctx)

    def start_audit(self, ctx: Context) -> None:
        self.audit_state = "running"
        self.audit = {}
        self.send_audit(ctx)

    def send_audit(self, ctx: Context) -> None:
        if self.audit_state != "running":
            return
        for i in range(self.keys):
            for s in ctx.servers:
                if (f"k{i}", s) not in self.audit:
                    ctx.send(s, AuditReq(f"k{i}"))
        ctx.set_timer("audit", 10)

    def finish_audit(self, ctx: Context) -> None:
        self.audit_state = "done"
        ctx.cancel_timer("audit")
        epochs = {s: self.audit[("k0", s)][0].epoch for s in ctx.servers}
        cfg = self.cfg
        ring = ring_of(cfg.members, self.vnodes)
        for i in range(self.keys):
            key = f"k{i}"
            home = ring.preference_list(key, self.replicas)
            replicas = {
                s: {"version": jv(self.audit[(key, s)][1]), "value": self.audit[(key, s)][2]}
                for s in home
            }
            ctx.record(
                "audit",
                key=key,
                epoch=cfg.epoch,
                members=list(cfg.members),
                epochs=epochs,
                replicas=replicas,
            )
