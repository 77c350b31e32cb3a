"""The history format: JSON Lines, one event per line.

Every event is a JSON object with at least

* ``index``: its position in the history (0, 1, 2, ...),
* ``time``: the world's logical time when it happened (an integer; real systems may use any
  non-decreasing number),
* ``type``: ``invoke`` | ``ok`` | ``fail`` | ``info`` for client operations (Jepsen's four types),
  or the kind of a protocol or world event (``became-leader``, ``commit``, ``crash`` ...),
* ``process`` (client operations) or ``node`` (protocol and world events),

and for client operations ``f`` (the function: ``read``, ``write``, ``cas``, ``get``, ``put`` ...)
and ``value``. Any other field is free (``key`` for keyed operations, ``term`` and ``index`` of
Raft entries ...). ``fail`` means the operation definitely had no effect; ``info`` means the
client gave up waiting: it may or may not have taken effect.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from treadle.errors import InputError

CLIENT_TYPES = frozenset({"invoke", "ok", "fail", "info"})

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_event(event: dict[str, Any]) -> str:
    """One event as one line of JSON (no newline); deterministic for deterministic input."""
    return _encoder.encode(event)


def to_jsonl(events: Iterable[dict[str, Any]]) -> str:
    return "".join(encode_event(e) + "\n" for e in events)


def digest(events: Iterable[dict[str, Any]]) -> str:
    """sha256 of the JSONL text: the run's digest."""
    h = hashlib.sha256()
    for e in events:
        h.update(encode_event(e).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def write_jsonl(path: str, events: Iterable[dict[str, Any]]) -> None:
    """Write atomically: a temp file in the same directory, then rename."""
    atomic_write(path, to_jsonl(events))


def atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Strict reader: every non-blank line must be a JSON object with a string ``type``.

    Raises :class:`InputError` naming the file and line on bad input.
    """
    from treadle.codecs.source import iter_lines

    return [ev for _, ev in iter_jsonl(iter_lines(path), path)]


def parse_jsonl(text: str, path: str = "<history>") -> list[dict[str, Any]]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + [parts[-1]]
    return [ev for _, ev in iter_jsonl(enumerate(lines, start=1), path)]


def iter_jsonl(
    lines: Iterable[tuple[int, str]], path: str = "<history>"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, event) for every non-blank line (lines keep their newline, so that a last line
    without one reads as a truncated file); strict (see :mod:`treadle.codecs.source`)."""
    from treadle.codecs.source import loads_json

    n = 0
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            obj = loads_json(line, path, lineno)
        except json.JSONDecodeError as e:
            hint = "" if line.endswith("\n") else " (the file looks truncated)"
            raise InputError(
                path, lineno, f"expected one JSON object per line, got invalid JSON: {e.msg}{hint}"
            ) from None
        if not isinstance(obj, dict):
            raise InputError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
        t = obj.get("type")
        if not isinstance(t, str):
            raise InputError(
                path, lineno, 'expected a string field "type" (invoke|ok|fail|info|...)'
            )
        if t in CLIENT_TYPES and "process" not in obj:
            raise InputError(path, lineno, f'a client "{t}" event needs a "process" field')
        obj.setdefault("index", n)
        n += 1
        yield lineno, obj


def client_operations(
    events: Iterable[dict[str, Any]],
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each client invocation with its completion (``ok``, ``fail`` or ``info``; None while
    open), per process, in invocation order (the progress checks judge them)."""
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    open_: dict[Any, int] = {}
    for e in events:
        t = e.get("type")
        if t not in ("invoke", "ok", "fail", "info") or "process" not in e:
            continue
        p = e["process"]
        if t == "invoke":
            open_[p] = len(out)
            out.append((e, None))
        elif p in open_:
            i = open_.pop(p)
            out[i] = (out[i][0], e)
    return out
