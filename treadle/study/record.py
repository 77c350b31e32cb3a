"""What a study page needs of a run, recorded while a trace is replayed.

The plain World logs one line per step (``log_steps``); a page needs more: which step sent each
message and which step took it (and what became of it: delivered, lost to a down node or a
partition, dropped, duplicated, still in flight at the end), when each timer was set, fired or
cancelled, and every node's state after every step. :class:`RecordingWorld` is a World subclass
that notes these as they happen; the run itself (choices, history, verdict) is the same as a
plain replay, which the history digest confirms.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from treadle.node import Node
from treadle.world import Fault, Pending, World

#: a field whose display text is longer than this is cut (the page is for reading, and a
#: state machine's map can grow without bound); messages are never cut
FIELD_LIMIT = 4000
#: a map or list field shows its last this many items, each cut at CHIP_LIMIT characters
MAX_CHIPS = 64
CHIP_LIMIT = 400


class RecordingWorld(World):
    """A World that records sends, timers, the outcome of every step and node states."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["log_steps"] = True
        super().__init__(*args, **kwargs)
        self.rec_msgs: list[dict[str, Any]] = []
        self.rec_msg_by_seq: dict[int, dict[str, Any]] = {}
        self.rec_timers: list[dict[str, Any]] = []
        self.rec_timer_by_seq: dict[int, dict[str, Any]] = {}
        self.rec_steps: list[dict[str, Any]] = []
        self.rec_event_step: list[int] = []  # history index -> step
        self.rec_event_lane: list[str] = []  # history index -> the lane it is drawn on
        self.rec_states: list[dict[str, dict[str, Any]]] = []  # after start, after each step
        self._rec_applying: Pending | None = None
        self._rec_touched: set[str] = set()
        self._repr_memo: dict[Any, str] = {}

    # ------------------------------------------------------------------ messages and timers
    def _enqueue_message(self, src: str, dst: str, msg: Any) -> None:
        super()._enqueue_message(src, dst, msg)
        seq = self._seq
        m: dict[str, Any] = {
            "id": seq,
            "src": src,
            "dst": dst,
            "kind": message_kind(msg),
            "text": repr(msg),
            "sent": self.step_count,
            "sent_time": self.now,
            "due": self._pending_due(seq),
            "taken": None,
            "fate": "in flight",
        }
        taking = self._rec_applying
        if taking is not None and self._current is None and taking.kind == "deliver":
            # the network, not a handler, sent it: the copy of a duplicated message
            m["dup_of"] = taking.seq
        self.rec_msgs.append(m)
        self.rec_msg_by_seq[seq] = m

    def _pending_due(self, seq: int) -> int:
        for due, s, _ in reversed(self._pending):
            if s == seq:
                return due
        return self.now

    def set_timer(self, node: str, name: str, delay: int) -> None:
        old = self._timers.get((node, name))
        if old is not None and old.alive:
            self._timer_end(old.seq, "replaced")
        super().set_timer(node, name, delay)
        item = self._timers[(node, name)]
        t = {
            "id": item.seq,
            "node": node,
            "name": name,
            "set": self.step_count,
            "due": item.due,
            "end": None,
            "fate": "pending",
        }
        self.rec_timers.append(t)
        self.rec_timer_by_seq[item.seq] = t

    def cancel_timer(self, node: str, name: str) -> None:
        item = self._timers.get((node, name))
        if item is not None and item.alive:
            self._timer_end(item.seq, "cancelled" if node not in self.down else "lost (crash)")
        super().cancel_timer(node, name)

    def _timer_end(self, seq: int, fate: str) -> None:
        t = self.rec_timer_by_seq.get(seq)
        if t is not None and t["end"] is None:
            t["end"], t["fate"] = self.step_count, fate

    # ------------------------------------------------------------------ history events
    def record_node_event(self, node: str, kind: str, fields: dict[str, Any]) -> None:
        super().record_node_event(node, kind, fields)
        self.rec_event_step.append(self.step_count)
        self.rec_event_lane.append(node)

    def record_client(
        self, process: str, type_: str, f: str, value: Any, fields: dict[str, Any]
    ) -> None:
        super().record_client(process, type_, f, value, fields)
        self.rec_event_step.append(self.step_count)
        # a client may record under a logical process id ("c1:cmd"): draw it on its node's lane
        self.rec_event_lane.append(self._current or process)

    # ------------------------------------------------------------------ steps
    def start(self) -> None:
        super().start()
        self.rec_states.append(self.snapshot_states())

    def apply(self, ev: Any) -> None:
        log_from = len(self.steps_log)
        hist_from = len(self.history)
        self._rec_applying = ev if type(ev) is Pending else None
        try:
            super().apply(ev)
        finally:
            self._rec_applying = None
        lines = self.steps_log[log_from:]
        kinds = [k for _, _, k, _, _ in lines if k != "event"]
        step: dict[str, Any] = {
            "step": self.step_count,
            "time": self.now,
            "events": [hist_from, len(self.history)],
        }
        if type(ev) is Pending:
            step["node"] = ev.node
            if ev.kind == "timer":
                step["kind"] = "timer"
                step["timer"] = ev.seq
                step["text"] = f"timer {ev.name!r} fires at {ev.node}"
                t = self.rec_timer_by_seq.get(ev.seq)
                if t is not None:
                    t["end"], t["fate"] = self.step_count, "fired"
            else:
                fate = next((k for k in kinds if k in ("lost", "drop")), None)
                detail = next((d for _, _, k, _, d in lines if k in ("lost", "drop")), "")
                if fate == "lost":
                    fate = (
                        "lost (down)"
                        if detail.startswith(f"{ev.node} is down")
                        else ("lost (partition)")
                    )
                elif fate == "drop":
                    fate = "dropped"
                else:
                    fate = "duplicated" if "duplicate" in kinds else "delivered"
                step["kind"] = "deliver"
                step["msg"] = ev.seq
                step["fate"] = fate
                m = self.rec_msg_by_seq.get(ev.seq)
                if m is not None:
                    # the step's text is the message's (``step_text``): not stored twice
                    m["taken"], m["fate"] = self.step_count, fate
        else:
            f: Fault = ev
            step["kind"] = f.kind
            step["node"] = f.node or "world"
            step["text"] = f.describe()
            if f.kind == "partition" and self.partition is not None:
                sides: dict[int, list[str]] = {}
                for n, side in sorted(self.partition.items()):
                    sides.setdefault(side, []).append(n)
                step["text"] = "partition " + " | ".join(
                    "{" + ", ".join(v) + "}" for _, v in sorted(sides.items())
                )
        self.rec_steps.append(step)
        # a step runs one handler: only that node (or the one crashed or restarted) can have
        # changed; restarts outside a step (settling) are in _rec_touched too
        touched = set(self._rec_touched)
        self._rec_touched.clear()
        if type(ev) is Pending:
            touched.add(ev.node)
        elif ev.node is not None:
            touched.add(ev.node)
        self.rec_states.append(self.snapshot_states(touched))

    # ------------------------------------------------------------------ node state
    def restart(self, nid: str) -> None:
        super().restart(nid)
        self._rec_touched.add(nid)

    def snapshot_states(self, touched: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every node's display state; with ``touched``, only those nodes are looked at again
        (the others keep the object of the previous snapshot)."""
        prev = self.rec_states[-1] if self.rec_states and touched is not None else None
        out: dict[str, dict[str, Any]] = {}
        for nid in self.server_ids + self.client_ids:
            if prev is not None and nid not in touched:  # type: ignore[operator]
                out[nid] = prev[nid]
                continue
            node = self.nodes.get(nid)
            out[nid] = {"status": "down"} if node is None else display_state(node, self._repr_memo)
        return out


def message_kind(msg: Any) -> str:
    """The message's type name; one whose ``entries`` are empty (a Raft heartbeat, an empty
    batch) is a kind of its own, so a page can collapse heartbeats."""
    kind = type(msg).__name__
    entries = getattr(msg, "entries", None)
    if isinstance(entries, tuple | list) and not entries:
        kind += " (no entries)"
    return kind


def display_state(node: Node, memo: dict[Any, str] | None = None) -> dict[str, Any]:
    """A node's state for display: ``describe()`` if the node has one, else its public
    attributes (``state()`` is for fingerprints: canonical but nameless)."""
    describe = getattr(node, "describe", None)
    raw: Any = describe() if callable(describe) else None
    if raw is None:
        raw = {k: v for k, v in vars(node).items() if not k.startswith("_") and not callable(v)}
    if not isinstance(raw, dict):
        raw = {"state": raw}
    return {str(k): display_value(v, memo=memo) for k, v in raw.items()}


def display_value(
    v: Any, depth: int = 0, limit: int = FIELD_LIMIT, memo: dict[Any, str] | None = None
) -> Any:
    """JSON-able and deterministic: sets sorted, tuples as lists, dataclasses and other objects
    as their repr, long text cut (a map or list shows at most ``MAX_CHIPS`` items)."""
    if v is None or isinstance(v, bool | int | float):
        return v
    if isinstance(v, str):
        return v if len(v) <= limit else v[: limit - 1] + "…"
    if depth == 0 and isinstance(v, dict):
        # a map shown as chips: its keys are what the verdict points at (log indexes, seqs)
        items = sorted(v.items(), key=_chip_order)
        shown = items[-MAX_CHIPS:]
        out = {str(k): display_value(x, 1, CHIP_LIMIT, memo) for k, x in shown}
        if len(items) > len(shown):
            out = {"…": f"{len(items) - len(shown)} earlier items", **out}
        return out
    if depth == 0 and isinstance(v, list | tuple):
        shown = list(v)[-MAX_CHIPS:]
        out_list = [display_value(x, 1, CHIP_LIMIT, memo) for x in shown]
        if len(v) > len(shown):
            out_list.insert(0, f"… {len(v) - len(shown)} earlier items")
        return out_list
    return display_value(canonical_repr(v, limit + 1, memo), depth, limit)


def _chip_order(item: tuple[Any, Any]) -> tuple[int, int, str]:
    """Numbers (log indexes, sequence numbers, also as text) in numeric order, then the rest by
    repr: the chips kept are the *last* MAX_CHIPS, and by text "99" came after "100"."""
    k = item[0]
    if isinstance(k, int) and not isinstance(k, bool):
        return (0, k, "")
    if isinstance(k, str) and k.isdecimal() and k.isascii():
        return (0, int(k), "")
    return (1, 0, repr(k))


class _Budget(Exception):
    pass


def canonical_repr(
    v: Any, limit: int = 1 << 30, memo: dict[Any, str] | None = None, _inner: bool = False
) -> str:
    """repr, but with sets and dict keys in sorted order (so a page does not depend on hash
    seeds), and cut once it is ``limit`` characters long (a big state costs no more than the
    text shown)."""
    parts: list[str] = []
    size = 0

    def put(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size >= limit:
            raise _Budget

    def walk(x: Any) -> None:
        if isinstance(x, set | frozenset):
            put("{")
            items = sorted(x, key=repr) if len(x) < 10_000 else list(x)
            for i, y in enumerate(items):
                if i:
                    put(", ")
                walk(y)
            put("}")
        elif isinstance(x, dict):
            put("{")
            for i, k in enumerate(sorted(x, key=repr)):
                if i:
                    put(", ")
                walk(k)
                put(": ")
                walk(x[k])
            put("}")
        elif isinstance(x, list | tuple):
            put("[" if isinstance(x, list) else "(")
            for i, y in enumerate(x):
                if i:
                    put(", ")
                walk(y)
            put("]" if isinstance(x, list) else ("," if len(x) == 1 else "") + ")")
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            if memo is not None and getattr(x, "__hash__", None) is not None:
                # frozen messages recur in many fields and steps: render each once
                try:
                    text = memo.get(x)
                    if text is None:
                        text = memo[x] = canonical_repr(x, CHIP_LIMIT * 4, None, True)
                except TypeError:
                    text = None  # a field is unhashable (a list): render it field by field
                if text is not None:
                    put(text)
                    return
            put(type(x).__name__ + "(")
            for i, f in enumerate(dataclasses.fields(x)):
                if i:
                    put(", ")
                put(f.name + "=")
                walk(getattr(x, f.name))
            put(")")
        else:
            put(repr(x))

    if _inner and dataclasses.is_dataclass(v):
        # the memoized object itself: rendered field by field (its fields may be memoized)
        inner_memo, memo = memo, None
        try:
            put(type(v).__name__ + "(")
            for i, f in enumerate(dataclasses.fields(v)):
                if i:
                    put(", ")
                put(f.name + "=")
                walk(getattr(v, f.name))
            put(")")
        except _Budget:
            return "".join(parts)[: limit - 1] + "…"
        memo = inner_memo
        return "".join(parts)
    try:
        walk(v)
    except _Budget:
        return "".join(parts)[: limit - 1] + "…"
    return "".join(parts)
