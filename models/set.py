"""A grow-only set (Jepsen's set workload): ``add v``; ``read`` returns all elements (as a
list, order irrelevant). Initial state: empty.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt, hashable


def init() -> Any:
    return frozenset()


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    if inp.f == "add":
        return True, state | {inp.value}
    if inp.f == "read":
        if output is UNKNOWN:
            return True, state
        try:
            return frozenset(output) == state, state
        except TypeError:
            return False, state
    return False, state


def validate(inp: Call, output: Any) -> str | None:
    if inp.f == "read" and output is not UNKNOWN and output is not None:
        if not isinstance(output, tuple | frozenset):
            return f"expected a read of the set to return a list of elements, got {fmt(output)}"
    return None


def read_only(inp: Call) -> bool:
    return inp.f == "read"


def describe_operation(inp: Call, output: Any) -> str:
    if inp.f == "add":
        return f"add({fmt(inp.value)})" + (" -> ?" if output is UNKNOWN else "")
    return "read() -> " + ("?" if output is UNKNOWN else fmt(frozenset(output or ())))


MODEL = Model(
    name="set",
    init=init,
    step=step,
    read_only=read_only,
    describe_operation=describe_operation,
    doc="set: add v / read -> all elements",
    ops=("add", "read"),
    validate=validate,
    make_state=lambda v: frozenset(hashable(x) for x in v) if isinstance(v, list) else hashable(v),
    default_init="empty ([]); --init [1, 2] starts with those elements",
)
