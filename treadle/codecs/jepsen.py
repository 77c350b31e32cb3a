"""Jepsen EDN histories (map and tuple/log form) and Porcupine's etcd and kv logs.

Every reader returns treadle history events: ``{"index", "time", "type", "process", "f",
"value", ...}``. Keywords become plain strings (``:read`` -> ``"read"``), vectors lists. Jepsen
nemesis operations (``:process :nemesis``) become protocol events ``{"type": "nemesis",
"node": "nemesis", ...}`` so that they are not mistaken for client operations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from treadle.codecs.edn import EdnError, Keyword, Reader, Symbol
from treadle.errors import InputError

_TYPES = ("invoke", "ok", "fail", "info")


def to_json(v: Any) -> Any:
    """EDN value -> JSON-able value (keywords and symbols as strings, sets as sorted lists)."""
    if isinstance(v, Keyword | Symbol):
        return str(v)
    if isinstance(v, list | tuple):
        return [to_json(x) for x in v]
    if isinstance(v, frozenset):
        return sorted((to_json(x) for x in v), key=repr)
    if isinstance(v, dict):
        return {str(k) if isinstance(k, str) else repr(k): to_json(x) for k, x in v.items()}
    return v


def _iter_forms(text: str, path: str) -> Iterator[tuple[int, Any]]:
    """Top-level forms with their line; a top-level vector of op maps is streamed element by
    element (Knossos and Jepsen write a whole history as one vector)."""
    r = Reader(text)
    try:
        r.skip_ws()
        if r.i < r.n and text[r.i] == "[":
            start_i, start_line = r.i, r.line
            r.i += 1
            r.skip_ws()
            if r.i < r.n and text[r.i] in "{#":
                r.depth = 1
                while True:
                    r.skip_ws()
                    if r.i >= r.n:
                        raise EdnError(
                            start_line, "expected ']' to close the vector of operations opened here"
                        )
                    c = text[r.i]
                    if c == "]":
                        r.i += 1
                        break
                    if c in ")}":
                        raise EdnError(r.line, f"expected ']', got {c!r}")
                    if text.startswith("#_", r.i):
                        r.i += 2
                        r.read()
                        continue
                    line = r.line
                    yield line, r.read()
                r.depth = 0
                if not r.at_end():
                    raise EdnError(r.line, "expected end of input after the vector of operations")
                return
            r.i, r.line = start_i, start_line
        while not r.at_end():
            line = r.line
            form = r.read()
            if isinstance(form, list):  # a vector of ops that did not start with a map
                for m in form:
                    yield line, m
            else:
                yield line, form
    except EdnError as e:
        raise InputError(path, e.line, str(e)) from None


def _event(
    path: str, line: int, n: int, process: Any, typ: Any, f: Any, value: Any, extra: dict
) -> dict[str, Any]:
    if not isinstance(typ, Keyword):
        raise InputError(
            path, line, f"expected :type to be a keyword (:invoke|:ok|:fail|:info), got {typ!r}"
        )
    t = str(typ)
    ev: dict[str, Any] = {"index": n, "time": extra.pop("time", n)}
    if process == "nemesis" or (isinstance(process, Keyword) and str(process) == "nemesis"):
        ev.update({"type": "nemesis", "node": "nemesis", "f": to_json(f), "value": to_json(value)})
        ev["nemesis_type"] = t
        ev.update(extra)
        return ev
    if t not in _TYPES:
        raise InputError(path, line, f"expected :type :invoke, :ok, :fail or :info, got :{t}")
    if isinstance(process, bool) or not isinstance(process, int | str):
        raise InputError(
            path, line, f"expected :process to be an integer or :nemesis, got {process!r}"
        )
    if not isinstance(f, str):
        raise InputError(path, line, f"expected :f to be a keyword, got {f!r}")
    ev.update({"type": t, "process": to_json(process), "f": str(f), "value": to_json(value)})
    ev.update(extra)
    return ev


def _from_map(path: str, line: int, n: int, m: Any) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise InputError(
            path, line, f"expected an op map {{:process ..., :type ..., :f ...}}, got {m!r}"
        )
    for k in ("process", "type", "f"):
        if k not in m:
            raise InputError(path, line, f"expected the op map to have :{k}")
    extra = {
        str(k): to_json(v)
        for k, v in m.items()
        if isinstance(k, str) and str(k) not in ("process", "type", "f", "value", "index")
    }
    return _event(path, line, n, m["process"], m["type"], m["f"], m.get("value"), extra)


_LOG_PREFIX = re.compile(r"^\s*(?:INFO\s+jepsen\.util\s+-\s+)?")


def _first_line(text: str) -> str:
    """The first line that is neither blank nor a comment (without building a list of lines)."""
    i = 0
    while i < len(text):
        j = text.find("\n", i)
        if j < 0:
            j = len(text)
        s = text[i:j].strip()
        if s and not s.startswith(";"):
            return s
        i = j + 1
    return ""


def _is_tuple_form(first: str) -> bool:
    return bool(first) and (
        first[0].isdigit()
        or first.startswith("INFO")
        or first.startswith(":nemesis")
        or first.startswith("[:nemesis")
        or re.match(r"^\[-?\d", first) is not None
    )


def parse_edn_history(text: str, path: str = "<history>") -> list[dict[str, Any]]:
    """Jepsen EDN: op maps (one per line, or one vector of maps) or the tuple/log form."""
    return [ev for _, ev in iter_edn_history(text, path)]


def iter_edn_history(text: str, path: str = "<history>") -> Iterator[tuple[int, dict[str, Any]]]:
    first = _first_line(text)
    if _is_tuple_form(first):
        yield from iter_tuple_form(enumerate(text.split("\n"), start=1), path)
        return
    n = 0
    for line, m in _iter_forms(text, path):
        yield line, _from_map(path, line, n, m)
        n += 1


def iter_tuple_form(
    lines: Iterable[tuple[int, str]], path: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """One op per line: ``process :type :f value [error]``, bracketed or not, optionally after
    a ``INFO  jepsen.util - `` log prefix. The 5th field is Knossos' error (``:conn-lost``)."""
    n = 0
    for lineno, raw in lines:
        s = raw.strip()
        if not s or s.startswith(";"):
            continue
        body = _LOG_PREFIX.sub("", raw, count=1)
        try:
            if body.lstrip().startswith("["):
                r = Reader(body)
                parts = r.read()
                if not r.at_end():
                    raise EdnError(1, "expected one [process :type :f value] tuple per line")
            else:
                r = Reader(body)
                parts = []
                while not r.at_end():
                    parts.append(r.read())
        except EdnError as e:
            raise InputError(path, lineno, str(e)) from None
        if not isinstance(parts, list) or len(parts) not in (3, 4, 5):
            raise InputError(
                path,
                lineno,
                "expected 'process :type :f value [error]' (a tuple of 3 to 5 fields)",
            )
        value = parts[3] if len(parts) >= 4 else None
        extra: dict[str, Any] = {}
        if len(parts) == 5:
            extra["error"] = to_json(parts[4])
        yield lineno, _event(path, lineno, n, parts[0], parts[1], parts[2], value, extra)
        n += 1


_ETCD = re.compile(r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+(:\S+)\s+(:\S+)\s+(.*?)\s*$")
_INT = re.compile(r"^-?\d+$")
_PAIR = re.compile(r"^\[\s*(-?\d+)\s+(-?\d+)\s*\]$")


def parse_porcupine_etcd(text: str, path: str = "<history>") -> list[dict[str, Any]]:
    return [ev for _, ev in iter_porcupine_etcd(enumerate(text.split("\n"), start=1), path)]


def iter_porcupine_etcd(
    lines: Iterable[tuple[int, str]], path: str = "<history>"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Porcupine's etcd logs (see ../shared/corpus/porcupine/PROVENANCE.md).

    ``:info ... :timed-out`` becomes an ``info`` event (outcome unknown: may take effect at any
    later point, or never, exactly as Porcupine's open-until-EOF op). ``:fail :read :timed-out``
    becomes an ``info`` read (Porcupine: unknown output, always legal, no effect).
    """
    n = 0
    for lineno, raw in lines:
        if not raw.strip():
            continue
        m = _ETCD.match(raw)
        if not m:
            raise InputError(
                path, lineno, "expected 'INFO  jepsen.util - <process> :<type> :<f> <value>'"
            )
        proc, typ, f, val = int(m.group(1)), m.group(2)[1:], m.group(3)[1:], m.group(4)
        if typ not in _TYPES:
            raise InputError(path, lineno, f"expected type :invoke|:ok|:fail|:info, got :{typ}")
        if f not in ("read", "write", "cas"):
            raise InputError(path, lineno, f"expected f :read|:write|:cas, got :{f}")
        ev: dict[str, Any] = {
            "index": n,
            "time": n,
            "type": typ,
            "process": proc,
            "f": f,
        }
        if val == ":timed-out":
            if typ in ("invoke", "ok"):
                raise InputError(path, lineno, f"expected a value for :{typ}, got :timed-out")
            ev["type"] = "info"
            ev["value"] = None
            ev["error"] = "timed-out"
        elif val == "nil":
            ev["value"] = None
        elif _INT.match(val):
            ev["value"] = int(val)
        elif (pm := _PAIR.match(val)) is not None:
            ev["value"] = [int(pm.group(1)), int(pm.group(2))]
        else:
            raise InputError(
                path, lineno, f"expected value nil, an integer, [a b] or :timed-out, got {val!r}"
            )
        if f == "cas" and ev["type"] != "info" and not isinstance(ev["value"], list):
            raise InputError(path, lineno, "expected a cas value [old new]")
        n += 1
        yield lineno, ev


# the exact shape every line of Porcupine's kv files has; any other line goes through the
# general (and strict) EDN reader, which accepts other spellings and reports what is wrong
_KV_LINE = re.compile(
    r"\{:process (\d+), :type :(invoke|ok|fail|info), :f :(get|put|append), "
    r':key "([^"\\]*)", :value (?:nil|"([^"\\]*)")\}\s*$'
)


def parse_porcupine_kv(text: str, path: str = "<history>") -> list[dict[str, Any]]:
    """Porcupine's kv histories: one EDN map per line with :process :type :f :key :value."""
    return [ev for _, ev in iter_porcupine_kv(enumerate(text.split("\n"), start=1), path)]


def iter_porcupine_kv(
    lines: Iterable[tuple[int, str]], path: str = "<history>"
) -> Iterator[tuple[int, dict[str, Any]]]:
    match = _KV_LINE.match
    n = 0
    for lineno, raw in lines:
        m = match(raw)
        if m is not None:
            proc, typ, f, key, value = m.groups()
            n += 1
            yield (
                lineno,
                {
                    "index": n - 1,
                    "time": n - 1,
                    "type": typ,
                    "process": int(proc),
                    "f": f,
                    "value": value,
                    "key": key,
                },
            )
            continue
        if not raw.strip():
            continue
        try:
            r = Reader(raw)
            m = r.read()
            if not r.at_end():
                raise EdnError(1, "expected one map per line")
        except EdnError as e:
            raise InputError(path, lineno, str(e)) from None
        ev = _from_map(path, lineno, n, m)
        if ev["type"] not in _TYPES:
            raise InputError(path, lineno, "expected a client operation")
        if ev["f"] not in ("get", "put", "append"):
            raise InputError(path, lineno, f"expected :f :get|:put|:append, got :{ev['f']}")
        if not isinstance(ev.get("key"), str):
            raise InputError(path, lineno, 'expected a string :key, e.g. :key "0"')
        v = ev.get("value")
        if v is not None and not isinstance(v, str):
            raise InputError(path, lineno, f"expected a string or nil :value, got {v!r}")
        n += 1
        yield lineno, ev
