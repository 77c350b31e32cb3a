"""A client process running commands against aggregates: load, decide, append, retry.

Each command: load the aggregate (a cached state plus the tail after it, or the latest snapshot
plus the tail after it), run the aggregate's decide step, append the new events with the
expected version the decision names, and on a wrong-version refusal drop the cache, reload and
decide again (up to ``conflict_retries`` times). A request that times out is resent as is (event
ids make the append idempotent) and given up on after ``retries`` resends. After an append that
reaches a multiple of ``snapshot_every`` the client stores a snapshot of the new state.

History: every command is an operation of process ``<id>:cmd`` (f = the command, value = its
argument, field ``stream``); every store request is an operation of process ``<id>`` (f
``read``/``append``, field ``key`` = the stream), which is what the linearizability checker's
``stream`` model reads. ``loaded`` {stream, version, state, base} records each aggregate load.
"""

from __future__ import annotations

from typing import Any

from treadle.impl.eventstore import aggregates
from treadle.impl.eventstore.messages import (
    Append,
    AppendReply,
    NewEvent,
    Read,
    ReadReply,
    SaveSnapshot,
    freeze,
)

from treadle.node import Context, Node

STORE = "n1"
NAMES = ("ann", "bob", "cy")


class Client(Node):
    def __init__(self, ops: int, streams: tuple[str, ...], config: dict[str, Any]) -> None:
        self.streams = streams
        self.timeout = int(config["client_timeout"])
        self.retries = int(config["retries"])
        self.conflict_retries = int(config["conflict_retries"])
        self.snapshot_every = int(config["snapshot_every"])
        self.think_max = int(config["think_max"])
        self.max_amount = int(config["max_amount"])
        # exhaustive runs narrow the workload: fixed commands in order (one per entry, instead
        # of ``ops`` random ones) and no think timer (each command starts at once)
        self.script = tuple(c.strip() for c in str(config["script"]).split(",") if c.strip())
        self.think = bool(config["think"])
        if self.script:
            ops = len(self.script)
        self.cache: dict[str, tuple[int, Any]] = {}  # stream -> (version, state)
        self.command: tuple[str, str, Any] | None = None  # (stream, command, argument)
        self.conflicts = 0
        self.req = 0
        self.op: Read | Append | None = None
        self.tries = 0
        self.next_event = 0
        self.ops_left = ops

    def state(self) -> Any:
        return (
            self.ops_left,
            tuple(sorted(self.cache.items())),
            self.command,
            self.conflicts,
            self.req,
            self.op,
            self.tries,
            self.next_event,
        )

    def on_start(self, ctx: Context) -> None:
        self.pause(ctx)

    def pause(self, ctx: Context) -> None:
        """Think before the next command (or start it at once when ``think`` is off)."""
        if self.think:
            ctx.set_timer("think", 1 + ctx.random.randint(0, self.think_max))
        else:
            self.start_command(ctx)

    # ------------------------------------------------------------------ commands
    def cmd_process(self, ctx: Context) -> str:
        return f"{ctx.id}:cmd"

    def start_command(self, ctx: Context) -> None:
        if self.ops_left <= 0:
            return
        self.ops_left -= 1
        scripted = self.script[len(self.script) - self.ops_left - 1] if self.script else None
        if scripted is None:
            stream = ctx.random.choice(self.streams)
        else:  # a scripted command runs on a stream of its kind
            kind = "account" if scripted in aggregates.ACCOUNT_COMMANDS else "user"
            stream = ctx.random.choice([s for s in self.streams if aggregates.kind(s) == kind])
        if aggregates.kind(stream) == "account":
            command = scripted or ctx.random.choice(aggregates.ACCOUNT_COMMANDS)
            top = self.max_amount if command == "deposit" else self.max_amount + 1
            arg = ctx.random.randint(1, top)
        else:
            command = scripted or ctx.random.choice(aggregates.USER_COMMANDS)
            arg = ctx.random.choice(NAMES) if command == "rename" else None
        self.command = (stream, command, arg)
        self.conflicts = 0
        ctx.invoke(command, arg, process=self.cmd_process(ctx), stream=stream)
        self.load(ctx)

    def finish(self, ctx: Context, how: str, value: Any = None, **fields: Any) -> None:
        assert self.command is not None
        stream, command, arg = self.command
        record = {"ok": ctx.ok, "fail": ctx.fail, "info": ctx.info}[how]
        if how == "ok":
            arg = value
        record(command, arg, process=self.cmd_process(ctx), stream=stream, **fields)
        self.command = None
        self.op = None
        ctx.cancel_timer("timeout")
        if self.ops_left > 0:
            self.pause(ctx)

    # ------------------------------------------------------------------ load, decide, append
    def load(self, ctx: Context) -> None:
        assert self.command is not None
        stream = self.command[0]
        cached = self.cache.get(stream)
        if ctx.bug == "replay-from-zero":
            read = Read(self.next_req(), stream, 1, cached is None)
        elif cached is not None:
            read = Read(self.next_req(), stream, cached[0] + 1, False)
        else:
            read = Read(self.next_req(), stream, None, True)
        ctx.invoke("read", read.from_version, key=stream)
        self.send(ctx, read)

    def on_read(self, ctx: Context, m: ReadReply) -> None:
        assert self.command is not None and isinstance(self.op, Read)
        stream, command, arg = self.command
        ctx.ok(
            "read",
            [m.start, [e.event_id for e in m.events]],
            key=stream,
            snapshot=m.snapshot[0] if m.snapshot else None,
        )
        cached = self.cache.get(stream)
        if self.op.from_version is not None and cached is not None:
            version, state = cached
        elif m.snapshot is not None:
            version, state = m.snapshot
        else:
            version, state = 0, None
        base = version
        state, version = aggregates.fold(
            stream, state, version, m.events, ctx.bug == "replay-from-zero"
        )
        ctx.record(
            "loaded", stream=stream, version=version, state=aggregates.to_json(state), base=base
        )
        self.cache[stream] = (version, state)
        decision = aggregates.decide(stream, state, version, command, arg)
        if isinstance(decision, str):
            self.finish(ctx, "fail", error=decision)
            return
        new, expected = decision
        events = []
        for type_, data in new:
            self.next_event += 1
            events.append(NewEvent(f"{ctx.id}-{self.next_event}", type_, freeze(data)))
        append = Append(self.next_req(), stream, expected, tuple(events))
        ctx.invoke(
            "append",
            [expected, [e.event_id for e in events]],
            key=stream,
            events=[{"event_id": e.event_id, "type": e.type, "data": dict(e.data)} for e in events],
        )
        self.send(ctx, append)

    def on_append(self, ctx: Context, m: AppendReply) -> None:
        assert self.command is not None and isinstance(self.op, Append)
        append = self.op
        stream = append.stream
        if not m.ok:
            ctx.fail(
                "append",
                [append.expected, [e.event_id for e in append.events]],
                key=stream,
                error=m.error,
                actual=m.actual,
            )
            self.cache.pop(stream, None)
            if m.error == "wrong-version" and self.conflicts < self.conflict_retries:
                self.conflicts += 1
                self.load(ctx)
            else:
                self.finish(ctx, "fail", error=m.error or "conflict")
            return
        ctx.ok("append", [m.first_version, m.last_version], key=stream, positions=list(m.positions))
        cached = self.cache.get(stream)
        if cached is None or cached[0] != m.first_version - 1:
            # "any" let other appends in between: the cached state no longer matches
            self.cache.pop(stream, None)
        else:
            version, state = cached
            for e in append.events:
                before = state
                state = aggregates.evolve(stream, state, e.type, dict(e.data))
                version += 1
                if version % self.snapshot_every == 0:
                    # the snapshot of version v must hold the state after event v
                    kept = before if ctx.bug == "snapshot-off-by-one" else state
                    ctx.send(STORE, SaveSnapshot(stream, version, kept))
            self.cache[stream] = (version, state)
        self.finish(ctx, "ok", [m.first_version, m.last_version])

    # ------------------------------------------------------------------ requests, timeouts
    def next_req(self) -> int:
        self.req += 1
        return self.req

    def send(self, ctx: Context, op: Read | Append) -> None:
        self.op = op
        self.tries = 1
        ctx.send(STORE, op)
        if self.timeout > 0:  # 0: wait for the reply (exhaustive runs: a reliable network)
            ctx.set_timer("timeout", self.timeout)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "think":
            self.start_command(ctx)
        elif name == "tail":
            # the binding's quiet tail: the faults stopped; more commands, which the store
            # must serve without a timeout (the progress check)
            self.ops_left += int(ctx.config["tail_commands"])
            if self.command is None and not ctx.timer_pending("think"):
                self.pause(ctx)
        elif name == "timeout" and self.op is not None:
            op = self.op
            if self.tries <= self.retries:
                self.tries += 1
                ctx.send(STORE, op)
                ctx.set_timer("timeout", self.timeout)
                return
            self.cache.pop(op.stream, None)
            if isinstance(op, Read):
                ctx.info("read", op.from_version, key=op.stream)
                self.finish(ctx, "fail", error="unavailable")  # nothing was appended
            else:
                ids = [e.event_id for e in op.events]
                ctx.info("append", [op.expected, ids], key=op.stream)
                self.finish(ctx, "info", error="timeout")

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        op = self.op
        if op is None or getattr(msg, "req", None) != op.req:
            return  # a late or duplicated reply to a request already answered
        if isinstance(msg, ReadReply) and isinstance(op, Read):
            self.on_read(ctx, msg)
        elif isinstance(msg, AppendReply) and isinstance(op, Append):
            self.on_append(ctx, msg)
