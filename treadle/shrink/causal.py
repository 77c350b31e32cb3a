"""Happens-before over a recorded schedule, and the steps a violation names.

Lamport's relation, on steps: a step that delivers a message or fires a timer happens after the
step that sent or set it, and a step at a node happens after the node's previous step (program
order). Faults change no node's handler output by themselves, but a crash or restart is a step
of the node it hits. The *cone* of a set of steps is everything that happens before them: a step
outside it cannot have influenced them, so dropping it keeps what the violation is about (the
shrinker still re-runs every candidate: the cone is a guess to try first, never trusted).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from treadle.shrink.schedule import Schedule

#: detail keys under which checkers name history events (by index)
_HISTORY_KEYS = frozenset(
    {"call_index", "ret_index", "event", "events", "write", "audit", "history_index", "invoke"}
)


def history_refs(details: Any) -> list[int]:
    """History indexes a violation's details name, found by key anywhere in the details."""
    out: list[int] = []

    def walk(x: Any, key: str | None) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v, key)
        elif isinstance(x, int) and not isinstance(x, bool) and key in _HISTORY_KEYS:
            out.append(x)

    walk(details, None)
    return sorted(set(out))


def step_of_history(schedule: Schedule) -> dict[int, int]:
    """History index -> index of the step that recorded it (events recorded at start: absent)."""
    out: dict[int, int] = {}
    for i, s in enumerate(schedule.steps):
        for h in range(*s.history):
            out[h] = i
    return out


def predecessors(schedule: Schedule) -> list[list[int]]:
    """For each step, the steps it directly happens after."""
    creator: dict[int, int] = {}
    last_at: dict[str, int] = {}
    preds: list[list[int]] = []
    for i, s in enumerate(schedule.steps):
        p: list[int] = []
        if s.consumed is not None and s.consumed in creator:
            p.append(creator[s.consumed])
        if s.node is not None:
            if s.node in last_at:
                p.append(last_at[s.node])
            last_at[s.node] = i
        for seq in range(s.created[0] + 1, s.created[1] + 1):
            creator[seq] = i
        preds.append(p)
    return preds


def cone(schedule: Schedule, anchors: Iterable[int]) -> set[int]:
    """The anchors and every step that happens before one of them."""
    preds = predecessors(schedule)
    seen: set[int] = set()
    todo = [a for a in anchors if 0 <= a < len(preds)]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo.extend(preds[i])
    return seen


def message_cone(schedule: Schedule, start: int) -> set[int]:
    """``start`` and the steps that consume what it sent, transitively, following messages
    only (not timers, not program order): the chain reaction of one step, e.g. a client's
    request, the replies it causes, and theirs."""
    sent_by: dict[int, int] = {}
    out = {start}
    for i, s in enumerate(schedule.steps):
        if i < start:
            continue
        if i > start and s.consumed is not None and sent_by.get(s.consumed) in out:
            if s.key[0] == "deliver":
                out.add(i)
        if i in out:
            for seq in range(s.created[0] + 1, s.created[1] + 1):
                sent_by[seq] = i
    return out


def named_nodes(details: Any, node_ids: Iterable[str]) -> list[str]:
    """Node ids that appear as values anywhere in a violation's details."""
    ids = set(node_ids)
    found: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, str) and x in ids:
            found.add(x)

    walk(details)
    return sorted(found)


def anchor_sets(
    schedule: Schedule,
    history: list[dict[str, Any]],
    details: Any,
    node_ids: Iterable[str],
) -> list[list[int]]:
    """Candidate sets of steps a violation is about, narrowest first: the last step (where an
    invariant broke, or a handler raised); that plus the last step of every node the details
    name and the steps that recorded the history events they name; the steps that recorded
    client events (what a history property judges)."""
    steps = schedule.steps
    if not steps:
        return []
    last = len(steps) - 1
    where = step_of_history(schedule)
    named = {where[h] for h in history_refs(details) if h in where}
    nodes = set(named_nodes(details, node_ids))
    for i in range(last, -1, -1):
        if steps[i].node in nodes:
            named.add(i)
            nodes.discard(steps[i].node)
    clients = {where[e["index"]] for e in history if "process" in e and e["index"] in where}
    out: list[list[int]] = []
    for a in ([last], sorted(named | {last}), sorted(clients | named | {last})):
        if a not in out:
            out.append(a)
    return out
