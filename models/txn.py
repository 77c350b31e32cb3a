"""Transactions of register micro-operations, the shape both ``multi-register`` (Knossos') and
``txn-register`` (Jepsen's ``txn``, stricter about nil reads) judge: an operation ``f: "txn"``
whose value is a list of ``[f, key, value]`` micro-ops, ``f`` being ``read``/``r`` or
``write``/``w``; the ok completion carries the same list with the reads filled in. The two models
differ only in what a read of nil means (their ``step``); reading, checking and printing
transactions is here, once.

State: the registers holding a non-nil value, as a sorted tuple of ``(key, value)`` pairs.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, fmt, hashable

READ = ("read", "r")
WRITE = ("write", "w")


def init() -> Any:
    return ()  # no register holds a value


def make_state(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f'expected a map of registers to values, e.g. {{"x": 0}}, got {value!r}')
    regs = {k: hashable(v) for k, v in value.items() if v is not None}
    return tuple(sorted(regs.items(), key=repr))


def validate_txn(inp: Call, output: Any) -> str | None:
    """Both txn models: the value is a list of [read|write key value] micro-ops, and an ok's
    list has the same micro-ops (the reads filled in)."""
    micro = inp.value
    if not isinstance(micro, tuple) or not all(
        isinstance(m, tuple) and len(m) == 3 and m[0] in READ + WRITE for m in micro
    ):
        return f"expected a txn value: a list of [read|write key value] micro-ops, got {fmt(micro)}"
    if output is UNKNOWN:
        return None
    if (
        not isinstance(output, tuple)
        or len(output) != len(micro)
        or not all(
            isinstance(o, tuple) and len(o) == 3 and o[:2] == m[:2] for o, m in zip(output, micro)
        )
    ):
        return (
            f"expected the ok value to be the invoke's micro-ops {fmt(micro)} with the reads "
            f"filled in, got {fmt(output)}"
        )
    return None


def read_only(inp: Call) -> bool:
    return all(m[0] in READ for m in (inp.value or ()))


def describe_operation(inp: Call, output: Any) -> str:
    src = inp.value if output is UNKNOWN else output
    parts = [f"{m[0]} {fmt(m[1])} {fmt(m[2])}" for m in (src or ())]
    return "txn[" + ", ".join(parts) + "]" + (" -> ?" if output is UNKNOWN else "")
