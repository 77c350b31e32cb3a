"""The node API: what a node is, and the only ways it may touch the world.

A node is a plain class with handlers. The world calls them one at a time; a handler runs to
completion (a crash never interrupts one). A node touches the world only through its
:class:`Context`:

* ``ctx.send(dst, msg)`` / ``ctx.broadcast(msg)``: messages. Use immutable values (frozen
  dataclasses, tuples, strings, numbers): the network may duplicate a message and exhaustive
  search hashes them.
* ``ctx.set_timer(name, delay)`` / ``ctx.cancel_timer(name)``: one timer per name per node,
  setting it again replaces it. Delays are in logical ticks.
* ``ctx.storage``: durable storage; it survives a crash, everything else is lost.
* ``ctx.random``: the only randomness a node may use; every draw is a recorded choice, so it is
  replayed and shrunk like the schedule.
* ``ctx.now``: logical time.
* ``ctx.record(kind, **fields)``: a protocol event into the history (became-leader, commit ...).
* ``ctx.sometimes(name, cond)``: a sometimes-assertion (Antithesis' ``sometimes``, moonpool's
  ``assert_sometimes``): a state the correctness argument depends on, which some run should
  reach. Exploration reports the ones never reached (a vacuous test shows up) and the guided
  strategy treats a first hit as new coverage. Hits are kept outside the history: adding one
  never changes a trace's digest.
* ``ctx.invoke/ok/fail/info``: client operations, Jepsen's four types (clients only).

Node code must never read the wall clock, global ``random``, threads or sockets, and must not
let the iteration order of a ``set`` of strings decide anything (hash seeds differ between
processes): ``treadle explore --check-determinism`` catches it when it does.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from treadle.world import World

T = TypeVar("T")

_DELETED = object()


class Node:
    """Base class of every node (server or client). Override the handlers you need."""

    #: If True, writes to ``ctx.storage`` become durable only at ``ctx.storage.sync()``;
    #: a crash loses the writes not yet synced (and with ``torn_writes`` a prefix of them may
    #: survive). If False (the default), every write is durable when the handler returns.
    manual_sync: bool = False

    def on_start(self, ctx: Context) -> None:
        """Called once when the world starts."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        """A message from ``src`` arrived."""

    def on_timer(self, ctx: Context, name: str) -> None:
        """The timer ``name`` fired."""

    def on_restart(self, ctx: Context) -> None:
        """The node restarts after a crash, as a new instance: only ``ctx.storage`` survived.

        The default calls :meth:`on_start`.
        """
        self.on_start(ctx)

    def state(self) -> Hashable:
        """Plain hashable data describing this node's state, for state fingerprints.

        Exhaustive strategies dedup states with it. The default (None) makes every state of
        this node look the same, which is only right for stateless nodes.
        """
        return None

    def describe(self) -> dict[str, Any] | None:
        """Optional: this node's state for a person (the study page's state panel), as a dict
        of named fields. A dict-valued field is shown as chips keyed by its keys (a log keyed
        by index, so that the entry a verdict names is highlighted). The default (None) shows
        the node's public attributes instead."""
        return None


class DeterministicRandom:
    """A node's randomness. Every draw is a choice of the world's strategy, so it is recorded,
    replayed and shrunk (shrinking moves draws towards their smallest value)."""

    __slots__ = ("_world",)

    def __init__(self, world: World):
        self._world = world

    def randint(self, a: int, b: int) -> int:
        """An integer in [a, b], both ends included."""
        if b < a:
            raise ValueError(f"randint({a}, {b}): empty range")
        return a + self._world.choose("random", b - a + 1)

    def randrange(self, n: int) -> int:
        """An integer in [0, n). Like ``random.randrange``, an empty range is an error (it was
        0: a node drawing from an empty list went unnoticed, e.g. p2c's second pick among one)."""
        if n < 1:
            raise ValueError(f"randrange({n}): empty range")
        return self._world.choose("random", n)

    def choice(self, seq: Sequence[T]) -> T:
        if not seq:
            raise IndexError("choice from an empty sequence")
        return seq[self._world.choose("random", len(seq))]

    def random(self) -> float:
        """A float in [0, 1) with a resolution of 1/1024."""
        return self._world.choose("random", 1024) / 1024.0

    def shuffled(self, seq: Sequence[T]) -> list[T]:
        items = list(seq)
        for i in range(len(items) - 1, 0, -1):
            j = self._world.choose("random", i + 1)
            items[i], items[j] = items[j], items[i]
        return items


class Storage:
    """Durable key-value storage of one node. Values are kept by reference: do not mutate a
    value after putting it (store tuples, frozen dataclasses, strings, numbers)."""

    __slots__ = ("data", "durable", "unsynced", "manual")

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.durable: dict[Any, Any] = self.data
        self.unsynced: list[tuple[Any, Any]] = []
        self.manual = False

    def get(self, key: Any, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]

    def __contains__(self, key: Any) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def keys(self) -> Iterator[Any]:
        return iter(sorted(self.data, key=repr))

    def items(self) -> list[tuple[Any, Any]]:
        return [(k, self.data[k]) for k in sorted(self.data, key=repr)]

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value
        if self.manual:
            self.unsynced.append((key, value))

    def delete(self, key: Any) -> None:
        self.data.pop(key, None)
        if self.manual:
            self.unsynced.append((key, _DELETED))

    def sync(self) -> None:
        """Make every write so far durable (fsync). A no-op unless the node uses manual_sync."""
        if self.manual and self.unsynced:
            for key, value in self.unsynced:
                if value is _DELETED:
                    self.durable.pop(key, None)
                else:
                    self.durable[key] = value
            self.unsynced.clear()

    def _set_manual(self, manual: bool) -> None:
        if manual and not self.manual:
            self.durable = dict(self.data)
        elif not manual and self.manual:
            self.sync()
            self.data = self.durable
        self.manual = manual

    def _crash(self, keep: int) -> None:
        """Lose what was not synced, except the first ``keep`` unsynced writes (a torn tail)."""
        if not self.manual:
            return
        for key, value in self.unsynced[:keep]:
            if value is _DELETED:
                self.durable.pop(key, None)
            else:
                self.durable[key] = value
        self.unsynced.clear()
        self.data = dict(self.durable)


class Context:
    """What a node may do. One context per node id; it outlives crashes."""

    __slots__ = ("id", "_world", "storage", "random", "config", "bug", "servers", "clients")

    def __init__(self, world: World, node_id: str, storage: Storage):
        self.id = node_id
        self._world = world
        self.storage = storage
        self.random = DeterministicRandom(world)
        #: the run's resolved configuration (system and world keys)
        self.config: dict[str, Any] = world.config
        #: the seeded bug switched on for this run, or None
        self.bug: str | None = world.bug
        #: server node ids, sorted
        self.servers: tuple[str, ...] = world.server_ids
        #: client process ids, sorted
        self.clients: tuple[str, ...] = world.client_ids

    @property
    def now(self) -> int:
        return self._world.now

    @property
    def peers(self) -> tuple[str, ...]:
        """The other servers."""
        return tuple(s for s in self.servers if s != self.id)

    def send(self, dst: str, msg: Any) -> None:
        self._world.send(self.id, dst, msg)

    def broadcast(self, msg: Any) -> None:
        """Send ``msg`` to every other server."""
        for dst in self.servers:
            if dst != self.id:
                self._world.send(self.id, dst, msg)

    def set_timer(self, name: str, delay: int) -> None:
        self._world.set_timer(self.id, name, delay)

    def cancel_timer(self, name: str) -> None:
        self._world.cancel_timer(self.id, name)

    def timer_pending(self, name: str) -> bool:
        return self._world.timer_pending(self.id, name)

    def record(self, kind: str, **fields: Any) -> None:
        """Record a protocol event (values must be JSON-able). ``index``, ``time``, ``node`` and
        ``type`` are the event's own keys: a field of that name is refused (use ``log_index``,
        ``event_type``)."""
        self._world.record_node_event(self.id, kind, fields)

    def sometimes(self, name: str, cond: Any = True) -> bool:
        """A sometimes-assertion: ``cond`` should be true in some run. Returns ``bool(cond)``, so
        it can wrap a condition the code tests anyway. Not recorded in the history."""
        return self._world.sometimes(name, cond)

    # Client operations: Jepsen's four types. ``fields`` are added to the event; a client that
    # runs several logical processes may pass ``process="c1:cmd"`` to record under that id.
    def invoke(self, f: str, value: Any = None, **fields: Any) -> None:
        self._world.record_client(self.id, "invoke", f, value, fields)

    def ok(self, f: str, value: Any = None, **fields: Any) -> None:
        self._world.record_client(self.id, "ok", f, value, fields)

    def fail(self, f: str, value: Any = None, **fields: Any) -> None:
        """The operation definitely had no effect."""
        self._world.record_client(self.id, "fail", f, value, fields)

    def info(self, f: str, value: Any = None, **fields: Any) -> None:
        """Indeterminate: the client gave up waiting; the operation may or may not take effect."""
        self._world.record_client(self.id, "info", f, value, fields)
