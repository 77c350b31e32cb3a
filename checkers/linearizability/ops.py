"""From history events to operations: pair each invoke with its completion.

An invoke is paired with the next ok/fail/info event of the same process. ``fail`` operations
had no effect and are dropped (kept aside for reports). ``info`` operations, and invokes that
never complete, have an unknown outcome: they may take effect at any point after their
invocation, or never (their ``ret`` is ``None`` and their output is ``UNKNOWN``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.model import UNKNOWN, Call, hashable
from treadle.errors import InputError

CLIENT_TYPES = ("invoke", "ok", "fail", "info")
_PLAIN = (str, int, type(None), float, bool)  # already hashable as they are


@dataclass(slots=True)
class Operation:
    id: int  # position in the list of operations (call order)
    process: Any
    input: Call
    output: Any  # the ok value, or UNKNOWN
    call: int  # position of the invoke event in the history
    ret: int | None  # position of the completion; None: may take effect at any time after call
    status: str  # "ok" | "info" (crashed/timed out) | "pending" (never completed) | "fail"
    call_event: dict[str, Any]
    ret_event: dict[str, Any] | None

    @property
    def completed(self) -> bool:
        return self.ret is not None


def pair_operations(
    events: list[dict[str, Any]], source: str = "<history>"
) -> tuple[list[Operation], list[Operation]]:
    """(operations that may have taken effect, failed operations). Non-client events are skipped."""
    open_ops: dict[Any, tuple[int, dict[str, Any]]] = {}
    done: list[tuple[int, dict, int | None, dict | None, str]] = []
    for pos, ev in enumerate(events):
        t = ev.get("type")
        if t not in CLIENT_TYPES or "process" not in ev:
            continue
        p = ev["process"]
        if type(p) not in _PLAIN:
            p = hashable(p)
        if t == "invoke":
            if p in open_ops:
                raise InputError(
                    source,
                    None,
                    f"event {ev.get('index', pos)}: process {p!r} invokes again while its "
                    f"operation from event {open_ops[p][1].get('index', open_ops[p][0])} is still "
                    "open; expected an ok/fail/info first",
                )
            open_ops[p] = (pos, ev)
        else:
            if p not in open_ops:
                raise InputError(
                    source,
                    None,
                    f"event {ev.get('index', pos)}: a {t!r} for process {p!r} which has no open "
                    "invoke; expected an invoke first",
                )
            cpos, cev = open_ops.pop(p)
            if t == "info":
                done.append((cpos, cev, None, ev, "info"))
            else:
                done.append((cpos, cev, pos, ev, t))
    for cpos, cev in open_ops.values():
        done.append((cpos, cev, None, None, "pending"))
    done.sort(key=lambda d: d[0])
    ops: list[Operation] = []
    failed: list[Operation] = []
    for cpos, cev, rpos, rev, status in done:
        key = cev.get("key")
        if key is None and rev is not None:
            key = rev.get("key")
        value = cev.get("value")
        if type(value) not in _PLAIN:
            value = hashable(value)
        if type(key) not in _PLAIN:
            key = hashable(key)
        inp = Call(str(cev.get("f")), value, key)
        if status == "ok":
            output = rev.get("value") if rev is not None else None
            if type(output) not in _PLAIN:
                output = hashable(output)
        else:
            output = UNKNOWN
        op = Operation(0, cev["process"], inp, output, cpos, rpos, status, cev, rev)
        if status == "fail":
            op.id = len(failed)
            failed.append(op)
        else:
            op.ret = rpos if status == "ok" else None
            op.id = len(ops)
            ops.append(op)
    return ops, failed
