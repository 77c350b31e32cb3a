"""A key-value store with get/put/append (and cas/delete), partitioned by key.

Conventions (MIT 6.824 / Porcupine kv): every key starts as the empty string, and a missing
key reads as ``""``. A ``get`` whose ok value is null is read as ``""`` too, so null and ``""``
are the same observation. ``put v`` sets the key, ``append v`` concatenates the string ``v``
onto it, ``delete`` resets it to ``""``, ``cas [expected, new]`` sets ``new`` iff the value is
``expected`` (null means absent, i.e. ``""``).

The model is partitioned by the event field ``key`` (P-compositionality), so ``step`` sees the
state of one key: a string.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, by_key, fmt, is_pair


def init() -> Any:
    return ""


def step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    f = inp.f
    if f == "get" or f == "read":
        if output is UNKNOWN:
            return True, state
        return (output == state or (output is None and state == "")), state
    if f == "put" or f == "write":
        v = inp.value
        return True, "" if v is None else v
    if f == "append":
        v = inp.value
        if not isinstance(v, str) or not isinstance(state, str):
            return False, state
        return True, state + v
    if f == "delete":
        return True, ""
    if f == "cas":
        old, new = inp.value
        if old is None:
            old = ""
        if state == old:
            return True, "" if new is None else new
        return output is UNKNOWN, state
    return False, state


def validate(inp: Call, output: Any) -> str | None:
    if inp.f == "cas" and not is_pair(inp.value):
        return f"expected a cas value [expected new], got {fmt(inp.value)}"
    return None


def read_only(inp: Call) -> bool:
    return inp.f in ("get", "read")


def monotone(inp: Call) -> bool:
    # append and get only ever extend the string (the order is "is a prefix of")
    return inp.f in ("get", "read", "append")


def reachable(state: Any, inp: Call, output: Any) -> bool:
    if inp.f in ("get", "read") and output is not UNKNOWN:
        seen = "" if output is None else output
        if isinstance(state, str):
            # appends only extend a string: a later state starts with this one
            return isinstance(seen, str) and seen.startswith(state)
        # a put may store a non-string (an int): no append applies to it, the state stays
        return seen == state
    return True


def unreachable_index(observers: list[tuple[tuple[Call, Any], int]]) -> Any:
    """``reachable`` for many gets at once: a string state can still be read by exactly the gets
    whose output starts with it, and those form one range of the outputs in sorted order."""
    strs: list[tuple[str, int]] = []
    other: list[tuple[Any, int]] = []  # gets of a non-string value, and non-get observers
    fixed = 0  # observers reachable from every state (unknown outputs, non-gets)
    for (inp, out), mask in observers:
        if inp.f not in ("get", "read") or out is UNKNOWN:
            fixed |= mask
            continue
        seen = "" if out is None else out
        if isinstance(seen, str):
            strs.append((seen, mask))
        else:
            other.append((seen, mask))
    strs.sort()
    keys = [k for k, _ in strs]
    cum = [0]  # masks are disjoint: a range's union is a difference of prefix unions
    for _, m in strs:
        cum.append(cum[-1] ^ m)
    str_mask = cum[-1]
    other_mask = 0
    for _, m in other:
        other_mask |= m
    n = len(keys)

    def unreachable(state: Any) -> int:
        if not isinstance(state, str):
            good = 0
            for seen, m in other:
                if seen == state:
                    good |= m
            return str_mask | (other_mask & ~good)
        lo = bisect_left(keys, state)
        hi = n
        a = lo
        while a < hi:  # the first key at or after lo that does not start with state
            mid = (a + hi) // 2
            if keys[mid].startswith(state):
                a = mid + 1
            else:
                hi = mid
        return (str_mask & ~(cum[a] ^ cum[lo])) | other_mask

    return unreachable


def _cut(v: str, limit: int = 40) -> str:
    return fmt(v) if len(v) <= limit else fmt(v[:limit]) + f"… ({len(v)} chars)"


def explain_unreachable(state: Any, inp: Call, output: Any) -> str:
    seen = "" if output is None else output
    if isinstance(state, str) and isinstance(seen, str):
        d = 0
        while d < min(len(state), len(seen)) and state[d] == seen[d]:
            d += 1
        where = (
            f"it is shorter: {len(seen)} < {len(state)} chars"
            if d == len(seen)
            else f"they differ at character {d}: {_cut(state[d:], 20)} vs {_cut(seen[d:], 20)}"
        )
        return (
            f"the state {_cut(state)} is not a prefix of {_cut(seen)} ({where}), appends only "
            "extend it, and no put can intervene"
        )
    return (
        f"the key holds {fmt(state)}, the get returned {fmt(seen)}, appends cannot turn one into "
        "the other, and no put can intervene"
    )


def restart(inp: Call) -> Any:
    # put/delete/cas overwrite the string; a failing cas changes nothing (a monotone case)
    if inp.f in ("put", "write"):
        return "" if inp.value is None else inp.value
    if inp.f == "delete":
        return ""
    if inp.f == "cas":
        return "" if inp.value[1] is None else inp.value[1]
    return None


def describe_operation(inp: Call, output: Any) -> str:
    k = fmt(inp.key)
    out = "?" if output is UNKNOWN else fmt("" if output is None else output)
    if inp.f in ("get", "read"):
        return f"get({k}) -> {out}"
    if inp.f == "delete":
        return f"delete({k})"
    suffix = " -> ?" if output is UNKNOWN else ""
    return f"{inp.f}({k}, {fmt(inp.value)}){suffix}"


def overwrites(inp: Call) -> bool:
    return inp.f in ("put", "write", "delete")


MODEL = Model(
    name="kv",
    init=init,
    step=step,
    partition=by_key,
    read_only=read_only,
    monotone=monotone,
    reachable=reachable,
    restart=restart,
    unreachable_index=unreachable_index,
    explain_unreachable=explain_unreachable,
    describe_operation=describe_operation,
    doc='key-value store: get/put/append/cas/delete, partitioned by key, missing key = ""',
    overwrites=overwrites,
    ops=("get", "put", "append", "delete", "cas", "read", "write"),
    validate=validate,
    default_init='"" (the empty string) for every key',
)
