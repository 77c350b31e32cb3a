"""Linearizability of a kv history with the ``kv`` model, every write counted.

The state is ``(value, number of writes linearized)``: a write never looks like an identity
step, even a delete of a missing key or a put of the value already there. Memoization loses
nothing (the count is a function of the linearized set). This guards against a search pruning
that takes any identity step greedily, which is sound for reads only: ``put x || delete`` then
``get -> ""`` is linearizable (put, delete, get), but a delete taken first at state ``""``
(an identity there) would hide that order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.models import kv
from treadle.models.model import Call, fmt


def _init() -> Any:
    return (kv.init(), 0)


def _step(state: Any, inp: Call, output: Any) -> tuple[bool, Any]:
    legal, new = kv.step(state[0], inp, output)
    if not legal:
        return False, state
    if kv.read_only(inp):
        return True, state
    return True, (new, state[1] + 1)


COUNTED_KV = replace(
    kv.MODEL,
    init=_init,
    step=_step,
    monotone=None,
    reachable=None,
    restart=None,
    describe_state=lambda s: fmt(s[0]),
)


def check_linearizable(events: list[dict[str, Any]], timeout: float | None = None) -> CheckResult:
    from treadle.checkers.linearizability import check_history

    ops = [e for e in events if e.get("type") in ("invoke", "ok", "fail", "info")]
    return check_history(ops, COUNTED_KV, timeout=timeout)
