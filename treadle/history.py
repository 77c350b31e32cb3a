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
from collections.abc import Iterable
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
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise InputError(path, None, e.strerror or str(e)) from None
    return parse_jsonl(text, path)


def parse_jsonl(text: str, path: str = "<history>") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    lines = text.split("\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            truncated = lineno == len(lines) and not text.endswith("\n")
            hint = " (the file looks truncated)" if truncated else ""
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
        obj.setdefault("index", len(events))
        events.append(obj)
    return events
