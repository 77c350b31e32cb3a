"""From history events to operations: pair each invoke with its completion, strictly.

An invoke is paired with the next ok/fail/info event of the same process. ``fail`` operations
had no effect and are dropped (kept aside for reports). ``info`` operations, and invokes that
never complete, have an unknown outcome: they may take effect at any point after their
invocation, or never (their ``ret`` is ``None`` and their output is ``UNKNOWN``).

Pairing refuses what it cannot judge, with an :class:`InputError` naming the file and line: a
client event (one with a ``process``) whose type is not invoke/ok/fail/info; a completion with
no open invoke; a second invoke while the process's first is open; a completion whose ``f``
differs from its invoke's; and, given a model, an ``f`` the model does not know or a value it
cannot take (``Model.ops``, ``Model.validate``).

Keys: an op's key is its event's ``key`` field. For single-object models (no
``Model.partition`` of their own) a history written by ``jepsen.independent`` carries the key
in the value instead, as a ``[key value]`` tuple on every operation; that form is recognized
from the first operations (``independent=None``) or forced (``True``/``False``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from sys import intern
from typing import Any

from treadle.models.model import UNKNOWN, Call, Model, hashable

from treadle.errors import InputError

CLIENT_TYPES = ("invoke", "ok", "fail", "info")
_CLIENT = frozenset(CLIENT_TYPES)
_PLAIN = (str, int, type(None), float, bool)  # already hashable as they are
# invokes looked at to tell whether a history is in jepsen.independent's [key value] form
_LOOKAHEAD = 1000


@dataclass(slots=True)
class Operation:
    id: int  # position in the list of operations (call order)
    process: Any
    input: Call
    output: Any  # the ok value, or UNKNOWN
    call: int  # position of the invoke event in the history
    ret: int | None  # position of the completion; None: may take effect at any time after call
    status: str  # "ok" | "info" (crashed/timed out) | "pending" (never completed) | "fail"
    # the events' "index" fields (what reports show), None when equal to the position (the
    # usual case: millions of operations need not hold two more integers each)
    _call_index: Any = None
    _ret_index: Any = None
    line: int | None = None  # the invoke's line in the file, when read from one

    @property
    def completed(self) -> bool:
        return self.ret is not None

    @property
    def call_index(self) -> Any:
        return self.call if self._call_index is None else self._call_index

    @property
    def ret_index(self) -> Any:
        return self.ret if self._ret_index is None else self._ret_index


def _h(v: Any) -> Any:
    return v if type(v) in _PLAIN else hashable(v)


def _is_nemesis(p: Any) -> bool:
    return p == "nemesis"


def _looks_independent(model: Model | None, evs: list[tuple[int | None, dict[str, Any]]]) -> bool:
    """Every client op of the first ones is a 2-element [key value] and, unwrapped, a value
    the model takes (a cas-register's ``[1 2]`` is cas(1, 2), not key 1 value 2)."""
    seen = 0
    for _, ev in evs:
        if ev.get("type") != "invoke" or "process" not in ev or _is_nemesis(ev["process"]):
            continue
        if "key" in ev:
            return False
        v = ev.get("value")
        if not isinstance(v, list | tuple) or len(v) != 2:
            return False
        if model is not None:
            inp = Call(str(ev.get("f")), _h(v[1]), _h(v[0]))
            if model.ops is not None and inp.f not in model.ops:
                return False
            if model.validate is not None and model.validate(inp, UNKNOWN) is not None:
                return False
        seen += 1
    return seen > 0


def pair_operations(
    events: Iterable[Any],
    source: str = "<history>",
    model: Model | None = None,
    independent: bool | None = False,
    with_lines: bool = False,
) -> tuple[list[Operation], list[Operation]]:
    """(operations that may have taken effect, failed operations). Non-client events are skipped.

    ``events``: event dicts, or (line, event) pairs with ``with_lines``.
    """
    items: Iterable[tuple[int | None, dict[str, Any]]]
    items = events if with_lines else ((None, e) for e in events)
    return _pair(iter(items), source, model, independent)


def _pair(
    items: Iterator[tuple[int | None, dict[str, Any]]],
    source: str,
    model: Model | None,
    independent: bool | None,
) -> tuple[list[Operation], list[Operation]]:
    if independent is None:
        if model is not None and model.partition is not None:
            independent = False  # kv, stream: the model keeps its own keying
        else:
            head: list[tuple[int | None, dict[str, Any]]] = []
            invokes = 0
            for it in items:
                head.append(it)
                if it[1].get("type") == "invoke":
                    invokes += 1
                    if invokes >= _LOOKAHEAD:
                        break
            independent = _looks_independent(model, head)
            items = _chain(head, items)
    ops_known = model.ops if model is not None else None
    validate = model.validate if model is not None else None
    open_ops: dict[Any, Operation] = {}
    ops: list[Operation] = []
    failed: list[Operation] = []
    done: list[Operation] = []  # in completion order; sorted by call at the end

    def where(line: int | None, ev: dict[str, Any], pos: int) -> tuple[int | None, str]:
        return line, "" if line is not None else f"event {ev.get('index', pos)}: "

    for pos, (line, ev) in enumerate(items):
        t = ev.get("type")
        if "process" not in ev:
            continue
        p = ev["process"]
        if t not in _CLIENT:
            if _is_nemesis(p):
                continue
            ln, pre = where(line, ev, pos)
            raise InputError(
                source,
                ln,
                f"{pre}a client event (it has a process) with type {t!r}; expected "
                "invoke, ok, fail or info",
            )
        if _is_nemesis(p):
            continue
        if type(p) not in _PLAIN:
            p = hashable(p)
        f = ev.get("f")
        if not isinstance(f, str):
            ln, pre = where(line, ev, pos)
            raise InputError(source, ln, f"{pre}expected a string f (the operation), got {f!r}")
        value = ev.get("value")
        key = ev.get("key")
        if independent and (t in ("invoke", "ok") or isinstance(value, list | tuple)):
            if not isinstance(value, list | tuple) or len(value) != 2:
                ln, pre = where(line, ev, pos)
                raise InputError(
                    source,
                    ln,
                    f"{pre}expected a [key value] tuple (jepsen.independent), as the earlier "
                    f"operations have, got {value!r}",
                )
            key, value = value[0], value[1]
        if t == "invoke":
            if p in open_ops:
                prev = open_ops[p]
                ln, pre = where(line, ev, pos)
                at = f"line {prev.line}" if prev.line is not None else f"event {prev.call_index}"
                raise InputError(
                    source,
                    ln,
                    f"{pre}process {p!r} invokes again while its operation from {at} is still "
                    "open; expected an ok/fail/info first",
                )
            if ops_known is not None and f not in ops_known:
                ln, pre = where(line, ev, pos)
                name = model.name if model is not None else "?"
                raise InputError(
                    source,
                    ln,
                    f"{pre}unknown f {f!r} for model {name}; expected one of "
                    f"{', '.join(ops_known)}",
                )
            inp = Call(intern(f), _h(value), _h(key))
            if validate is not None:
                problem = validate(inp, UNKNOWN)
                if problem:
                    ln, pre = where(line, ev, pos)
                    raise InputError(source, ln, pre + problem)
            open_ops[p] = Operation(
                0,
                ev["process"],
                inp,
                UNKNOWN,
                pos,
                None,
                "pending",
                ev.get("index", pos),
                None,
                line,
            )
            continue
        op = open_ops.pop(p, None)
        if op is None:
            ln, pre = where(line, ev, pos)
            raise InputError(
                source,
                ln,
                f"{pre}an {t!r} completion for process {p!r}, which has no open invoke; "
                "expected an invoke first",
            )
        if f != op.input.f:
            ln, pre = where(line, ev, pos)
            at = f"line {op.line}" if op.line is not None else f"event {op.call_index}"
            raise InputError(
                source,
                ln,
                f"{pre}a {t!r} of f {f!r} completes process {p!r}'s {op.input.f!r} invoked at "
                f"{at}; expected the same f",
            )
        if independent and t == "ok" and _h(key) != op.input.key:
            ln, pre = where(line, ev, pos)
            raise InputError(
                source,
                ln,
                f"{pre}the ok's key {key!r} differs from its invoke's {op.input.key!r}",
            )
        if op.input.key is None and key is not None:
            op.input = op.input._replace(key=_h(key))
        ri = ev.get("index", pos)
        if ri != pos:
            op._ret_index = ri
        if t == "ok":
            op.status = "ok"
            op.ret = pos
            op.output = _h(value)
            if validate is not None:
                problem = validate(op.input, op.output)
                if problem:
                    ln, pre = where(line, ev, pos)
                    raise InputError(source, ln, pre + problem)
        elif t == "info":
            op.status = "info"
        else:
            op.status = "fail"
            op.ret = pos
        done.append(op)
    done.extend(open_ops.values())
    done.sort(key=lambda o: o.call)
    for op in done:
        if op.status == "fail":
            op.id = len(failed)
            failed.append(op)
        else:
            if op.status != "ok":
                op.ret = None
                op.output = UNKNOWN
            op.id = len(ops)
            ops.append(op)
    return ops, failed


def _chain(head: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from head
    yield from rest
