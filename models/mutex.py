"""A mutex (Jepsen's lock workload): ``acquire`` succeeds only when free, ``release`` only
when held. Initial state: free. A ``fail`` acquire had no effect and is dropped.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model


def init() -> Any:
    return False  # held?


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    if inp.f == "acquire":
        return (not state), True
    if inp.f == "release":
        return state, False
    return False, state


def describe_operation(inp: Call, output: Any) -> str:
    return inp.f + ("() -> ?" if output is UNKNOWN else "()")


def describe_state(state: Any) -> str:
    return "held" if state else "free"


MODEL = Model(
    name="mutex",
    init=init,
    step=step,
    describe_operation=describe_operation,
    describe_state=describe_state,
    doc="mutex: acquire/release, initially free",
    ops=("acquire", "release"),
    make_state=lambda v: bool(v) if isinstance(v, bool) else v == "held",
    default_init='free (false); --init true or "held" starts it held',
)
