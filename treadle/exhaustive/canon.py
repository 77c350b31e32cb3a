"""Exhaustive search: canonical, hashable forms of node state (fingerprints, symmetry renaming)
and cheap copies of a world to branch from."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from treadle.node import Context, Storage
from treadle.world import Pending, World


# ------------------------------------------------------------------------------ canonical data
def _freeze(x: Any) -> Any:
    """Hashable, order-free canonical form of plain data (lists, dicts, sets, dataclasses)."""
    t = type(x)
    if t in (str, int, float, bool, type(None), bytes):
        return x
    if t is tuple or t is list:
        return tuple(_freeze(v) for v in x)
    if t is dict:
        return ("<dict>", frozenset((_freeze(k), _freeze(v)) for k, v in x.items()))
    if t is set or t is frozenset:
        return frozenset(_freeze(v) for v in x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (t.__qualname__,) + tuple(_freeze(getattr(x, f.name)) for f in dataclasses.fields(x))
    try:
        hash(x)
        return x
    except TypeError:
        return ("<obj>", repr(x))


def _canon(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return _freeze(x)


def _rename(x: Any, m: dict[str, str]) -> Any:
    """Replace node ids (strings) anywhere in frozen data."""
    t = type(x)
    if t is str:
        return m.get(x, x)
    if t is tuple:
        return tuple([_rename(v, m) if type(v) in _NESTED else v for v in x])
    if t is frozenset:
        return frozenset([_rename(v, m) if type(v) in _NESTED else v for v in x])
    return x


_NESTED = (str, tuple, frozenset)


# ------------------------------------------------------------------------------ copying worlds
_WORLD_FIELDS = {
    "config", "bug", "server_ids", "client_ids", "factories", "chooser", "now", "step_count",
    "history", "log_steps", "steps_log", "nodes", "storages", "contexts", "down", "partition",
    "crashes", "_pending", "_timers", "_dead", "_seq", "_link_due", "_settle_rng", "fifo",
    "latency_min", "latency_span", "window", "drift", "fates", "fault_kinds", "max_down",
    "_splits", "_current", "_fault_cache", "_partitions", "sometimes_seen", "sometimes_order",
    "settled_at", "may_drop", "may_duplicate",
}  # fmt: skip

_ATOMS = (str, int, float, bool, type(None), bytes, frozenset)


def _copy_value(v: Any, memo: dict[int, Any]) -> Any:
    t = type(v)
    if t in _ATOMS:
        return v
    if t is list:
        return [_copy_value(x, memo) for x in v]
    if t is dict:
        return {k: _copy_value(x, memo) for k, x in v.items()}
    if t is set:
        return set(v)  # set members are hashable, hence immutable by contract
    if t is tuple:
        items = [_copy_value(x, memo) for x in v]
        return v if all(a is b for a, b in zip(items, v)) else tuple(items)
    params = getattr(t, "__dataclass_params__", None)
    if params is not None and params.frozen:
        return v  # messages and values are immutable by contract
    return copy.deepcopy(v, memo)


def _copy_node(node: Any, memo: dict[int, Any]) -> Any:
    d = getattr(node, "__dict__", None)
    if d is None or hasattr(type(node), "__slots__"):
        return copy.deepcopy(node, memo)
    new = object.__new__(type(node))
    new.__dict__.update({k: _copy_value(v, memo) for k, v in d.items()})
    return new


_ALL: Any = object()


def clone_world(w: World, touch: Any = _ALL) -> World:
    """An independent copy of a world between steps (much cheaper than ``copy.deepcopy``).

    ``touch``: the only node the next step may run (an id), or None for none (partition,
    heal): the other nodes' objects and storages are then shared with ``w``, copy-on-write as
    in Stateright. Sound because a world kept for later is never stepped itself: it is only
    cloned, and a node is copied before the step that runs it."""
    fields = w.__dict__.keys()
    if not (fields >= _WORLD_FIELDS) or w._current is not None:
        # the World lost fields this copier knows: stay correct, if slower
        memo = {id(w.config): w.config, id(w.factories): w.factories, id(w.chooser): w.chooser}
        return copy.deepcopy(w, memo)
    n = object.__new__(World)
    n.__dict__.update(w.__dict__)
    n.history = list(w.history)
    n.steps_log = list(w.steps_log)
    n.down = set(w.down)
    n.partition = dict(w.partition) if w.partition is not None else None
    n._link_due = dict(w._link_due)
    memo: dict[int, Any] = {id(w): n}
    ids = w.storages if touch is _ALL else ((touch,) if touch is not None else ())
    storages = dict(w.storages)
    contexts = dict(w.contexts)
    nodes = dict(w.nodes)
    for nid in ids:
        s = w.storages[nid]
        s2 = Storage.__new__(Storage)
        s2.data = dict(s.data)
        s2.durable = s2.data if s.durable is s.data else dict(s.durable)
        s2.unsynced = list(s.unsynced)
        s2.manual = s.manual
        storages[nid] = s2
        memo[id(s)] = s2
        c = w.contexts[nid]
        c2 = Context(n, nid, s2)
        contexts[nid] = c2
        memo[id(c)] = c2
        memo[id(c.random)] = c2.random
    for nid in ids:
        node = w.nodes[nid]
        nodes[nid] = _copy_node(node, memo) if node is not None else None
    n.storages = storages
    n.contexts = contexts
    n.nodes = nodes
    if len(fields) != len(_WORLD_FIELDS):
        # attributes set on the world by others (per-run checker state, a new World field):
        # deep-copied, with references to the world and to nodes mapped to the copy's
        for nid, node in w.nodes.items():
            if node is not None:
                memo.setdefault(id(node), nodes[nid])
        for key in list(fields):
            if key not in _WORLD_FIELDS:
                setattr(n, key, copy.deepcopy(getattr(w, key), memo))
    pending = []
    by_seq: dict[int, Pending] = {}
    for due, seq, it in w._pending:
        if it.alive:
            p = Pending(due, seq, it.kind, it.node, it.src, it.msg, it.name)
            pending.append((due, seq, p))
            by_seq[seq] = p
    n._pending = pending
    n._dead = 0
    n._timers = {k: by_seq[it.seq] for k, it in w._timers.items() if it.alive}
    return n
