"""Multi-register transactions (Jepsen's ``txn`` over registers), executed atomically.

An operation has ``f: "txn"`` and ``value``: a list of micro-operations ``[f, key, value]``
with ``f`` in ``r``/``read`` (value null on invoke, the value read on ok) or ``w``/``write``.
Registers start as nil. The ok event's value is the same list with the reads filled in; a
read micro-op with a null value in the *ok* event means it read nil.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt
from treadle.models.txn import (
    READ,
    WRITE,
    describe_operation,
    init,
    make_state,
    read_only,
    validate_txn,
)


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    if inp.f != "txn":
        return False, state
    regs = dict(state)
    micro = inp.value or ()
    if output is not UNKNOWN:
        if not isinstance(output, tuple) or len(output) != len(micro):
            return False, state
    changed = False
    for i, mop in enumerate(micro):
        f, k = mop[0], mop[1]
        if f in READ:
            if output is not UNKNOWN and output[i][2] != regs.get(k):
                return False, state
        elif f in WRITE:
            v = mop[2]
            if v is None:
                regs.pop(k, None)
            else:
                regs[k] = v
            changed = True
        else:
            return False, state
    if not changed:
        return True, state
    return True, tuple(sorted(regs.items(), key=repr))


def describe_state(state: Any) -> str:
    return "{" + ", ".join(f"{fmt(k)}: {fmt(v)}" for k, v in state) + "}"


MODEL = Model(
    name="txn-register",
    init=init,
    step=step,
    read_only=read_only,
    describe_operation=describe_operation,
    describe_state=describe_state,
    doc="atomic multi-register transactions: value [[r|w, key, value], ...]",
    ops=("txn",),
    validate=validate_txn,
    make_state=make_state,
    default_init="every register nil ({})",
)
