"""A read/write register (Jepsen's ``register``): ``read`` and ``write``, initial value nil.

Events: ``{"f": "write", "value": 3}``; a read's ok event carries the value read (null = nil).
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model


def init() -> Any:
    return None


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    f = inp.f
    if f == "read":
        return (output is UNKNOWN or output == state), state
    if f == "write":
        return True, inp.value
    return False, state


def read_only(inp: Call) -> bool:
    return inp.f == "read"


def overwrites(inp: Call) -> bool:
    return inp.f in ("write",)


MODEL = Model(
    name="register",
    init=init,
    step=step,
    read_only=read_only,
    doc="read/write register, initial value nil",
    overwrites=overwrites,
    ops=("read", "write"),
    default_init="nil (null)",
)
