"""Knossos' ``multi-register``: atomic transactions over a map of registers.

An operation has ``f: "txn"`` and a ``value`` that is a list of micro-operations
``[f, key, value]``, ``f`` being ``read``/``r`` or ``write``/``w``: ``[[:read :x nil]
[:write :y 2]]``. The invoke carries nil for each read; the ok completion carries the value
each read saw. A transaction takes effect atomically, its micro-ops in order.

Knossos' semantics, kept here: a read of nil is no constraint (Knossos writes nil for "not
known", as in the invoke), and a register never written holds nil unless ``--init`` gives the
initial map (``--init '{"x": 0, "y": 0}'``; Knossos' ``(multi-register {:x 0 :y 0})``). So with
an initial map ``{x: 0}``, ``[:read :x 1]`` before any write of 1 is illegal. (``txn-register``
is the stricter variant where a nil read means the register holds nil.)

Reading, checking and printing transactions, and the state (the non-nil registers as a sorted
tuple of ``(key, value)`` pairs), are :mod:`treadle.models.txn`'s, shared with txn-register.
"""

from __future__ import annotations

from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, fmt
from treadle.models.txn import (
    READ,
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
    micro = inp.value
    seen = output if output is not UNKNOWN else micro
    changed = False
    for i, mop in enumerate(micro):
        f, k = mop[0], mop[1]
        if f in READ:
            v = seen[i][2]
            if v is not None and regs.get(k) != v:
                return False, state
        else:
            v = mop[2]
            if v is None:
                if regs.pop(k, None) is not None:
                    changed = True
            elif regs.get(k) != v:
                regs[k] = v
                changed = True
    if not changed:
        return True, state
    return True, tuple(sorted(regs.items(), key=repr))


def describe_state(state: Any) -> str:
    return "{" + ", ".join(f"{fmt(k)} {fmt(v)}" for k, v in state) + "}"


MODEL = Model(
    name="multi-register",
    init=init,
    step=step,
    read_only=read_only,
    describe_operation=describe_operation,
    describe_state=describe_state,
    doc="Knossos multi-register: txn of [read|write key value] micro-ops; a nil read is no "
    "constraint",
    ops=("txn",),
    validate=validate_txn,
    make_state=make_state,
    default_init='every register nil ({}); --init \'{"x": 0, "y": 0}\' gives initial values',
)
