"""A compare-and-set register with the etcd/Jepsen conventions (as in Porcupine's etcd model).

* ``read`` returns the current value; nil (null) is the initial value.
* ``write v`` sets it.
* ``cas [old, new]`` sets ``new`` iff the value is ``old``. An ``ok`` cas succeeded, so it is
  legal only where the value is ``old``. A ``fail`` cas had no effect and is dropped by the
  checker (Jepsen: ``fail`` means it did not happen). An unknown (``info``) cas takes effect iff
  the value is ``old`` at the point where it is linearized, or never.
* Unknown outputs are always legal.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt, is_pair


def init() -> Any:
    return None


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    f = inp.f
    if f == "read":
        return (output is UNKNOWN or output == state), state
    if f == "write":
        return True, inp.value
    if f == "cas":
        old, new = inp.value
        if state == old:
            return True, new
        # the compare fails: no effect; legal only if we do not know it succeeded
        return output is UNKNOWN, state
    return False, state


def validate(inp: Call, output: Any) -> str | None:
    if inp.f == "cas" and not is_pair(inp.value):
        return f"expected a cas value [old new], got {fmt(inp.value)}"
    return None


def read_only(inp: Call) -> bool:
    return inp.f == "read"


def describe_operation(inp: Call, output: Any) -> str:
    if inp.f == "read":
        return f"read() -> {fmt(output) if output is not UNKNOWN else '?'}"
    if inp.f == "write":
        return f"write({fmt(inp.value)})" + (" -> ?" if output is UNKNOWN else "")
    if inp.f == "cas":
        old, new = inp.value
        return f"cas({fmt(old)}, {fmt(new)})" + (" -> ?" if output is UNKNOWN else " -> ok")
    return f"{inp.f}({fmt(inp.value)})"


def overwrites(inp: Call) -> bool:
    return inp.f in ("write",)


MODEL = Model(
    name="cas-register",
    init=init,
    step=step,
    read_only=read_only,
    describe_operation=describe_operation,
    doc="compare-and-set register (etcd/Jepsen conventions), initial value nil",
    overwrites=overwrites,
    ops=("read", "write", "cas"),
    validate=validate,
    default_init="nil (null)",
)
