"""A FIFO queue: ``enqueue v`` adds at the tail; ``dequeue`` returns the head (its ok value),
or null when the queue is empty. Initial state: empty.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt, hashable


def init() -> Any:
    return ()


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    f = inp.f
    if f == "enqueue":
        return True, state + (inp.value,)
    if f == "dequeue":
        if not state:
            return (output is UNKNOWN or output is None), state
        if output is UNKNOWN or output == state[0]:
            return True, state[1:]
        return False, state
    return False, state


def describe_operation(inp: Call, output: Any) -> str:
    if inp.f == "enqueue":
        return f"enqueue({fmt(inp.value)})" + (" -> ?" if output is UNKNOWN else "")
    return f"dequeue() -> {fmt(output)}"


MODEL = Model(
    name="fifo-queue",
    init=init,
    step=step,
    describe_operation=describe_operation,
    doc="FIFO queue: enqueue v / dequeue -> head or nil",
    ops=("enqueue", "dequeue"),
    make_state=lambda v: tuple(hashable(x) for x in v) if isinstance(v, list) else hashable(v),
    default_init="empty ([]); --init [1, 2] starts with 1 at the head",
)
