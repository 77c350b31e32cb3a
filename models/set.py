"""A grow-only set (Jepsen's set workload): ``add v``; ``read`` returns all elements (as a
list, order irrelevant). Initial state: empty.
"""

from __future__ import annotations

from typing import Any

from models.model import UNKNOWN, Call, Model, fmt


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
)
