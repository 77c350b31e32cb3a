"""A numbered log: ``append x`` adds x and returns its position (1, 2, 3, ...). Initial state:
empty. This is the service the PBFT replicas run: each client operation they apply gets the
next number, and that number is the result the client accepts.

Events: invoke ``{"f": "append", "value": x}``; the ok event's value is the position returned.
Only the number of entries matters for what later operations may return, so the state is that
count (small, and equal across orders: the checker's memo merges them).
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt


def init() -> Any:
    return 0


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    if inp.f != "append":
        return False, state
    if output is UNKNOWN:
        return True, state + 1
    return (type(output) is int and output == state + 1), state + 1


def monotone(inp: Call) -> bool:
    return True  # every operation lengthens the log


def reachable(state: Any, inp: Call, output: Any) -> bool:
    """Some longer log (or this one) makes ``output`` legal: the position is still ahead."""
    return output is UNKNOWN or (type(output) is int and output > state)


def explain_unreachable(state: Any, inp: Call, output: Any) -> str:
    return f"the log already holds {state} entries, so an append now returns {state + 1} or more"


def describe_operation(inp: Call, output: Any) -> str:
    return f"append({fmt(inp.value)}) -> " + ("?" if output is UNKNOWN else fmt(output))


def describe_state(state: Any) -> str:
    return f"{state} entries"


MODEL = Model(
    name="numbered-log",
    init=init,
    step=step,
    monotone=monotone,
    reachable=reachable,
    explain_unreachable=explain_unreachable,
    describe_operation=describe_operation,
    describe_state=describe_state,
    doc="numbered log: append x -> its position 1, 2, 3, ... (the PBFT replicas' service)",
)
