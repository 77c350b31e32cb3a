"""History codecs: read a history file into treadle history events (see :mod:`treadle.history`).

Formats:

``jsonl``           treadle's own JSON Lines history.
``edn``             Jepsen histories in EDN: one map per op (``{:process 0, :type :invoke, :f :read,
                    :value nil}``, also a single top-level vector of maps), or the old tuple/log form
                    (``0 :invoke :read nil``, optionally prefixed ``INFO  jepsen.util - ``, or
                    ``[0 :invoke :read nil]``).
``porcupine-etcd``  Porcupine's etcd Jepsen logs (``INFO  jepsen.util - 0	:invoke	:read	nil``).
``porcupine-kv``    Porcupine's kv histories (EDN maps with ``:key``; a missing key reads as "").
``auto``            guess from the content.

:func:`read_history` raises :class:`treadle.errors.InputError` (file, line, what was expected).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from treadle.codecs.jepsen import (
    iter_edn_history,
    iter_porcupine_etcd,
    iter_porcupine_kv,
    iter_tuple_form,
)
from treadle.codecs.source import head, iter_lines, read_text
from treadle.errors import InputError
from treadle.history import iter_jsonl

FORMATS = ("jsonl", "edn", "porcupine-etcd", "porcupine-kv", "auto")


def detect_format(text: str) -> str:
    """Guess the format from the first non-blank line."""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith("INFO") and "jepsen.util" in s:
            return "porcupine-etcd"
        if s.startswith("{:") or s.startswith("[{") or s.startswith("[:") or s.startswith("#"):
            if ":key " in s and any(f":f :{f}" in s for f in ("get", "put", "append")):
                return "porcupine-kv"
            return "edn"
        if s.startswith("{"):
            return "jsonl"
        if s[0].isdigit() or s.startswith("[") or s.startswith("-"):
            return "edn"
        break
    return "unknown"


def _cannot_tell(path: str) -> InputError:
    return InputError(
        path,
        None,
        "cannot tell the format; expected JSON Lines, Jepsen EDN or a Porcupine log "
        "(pass --format jsonl|edn|porcupine-etcd|porcupine-kv)",
    )


def _lines_of(text: str) -> Iterator[tuple[int, str]]:
    parts = text.split("\n")
    for i, p in enumerate(parts[:-1], start=1):
        yield i, p + "\n"
    yield len(parts), parts[-1]


def iter_parsed(
    text: str, fmt: str = "auto", path: str = "<history>"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, event) for the history in ``text``."""
    if fmt == "auto":
        if not text.strip():
            return  # an empty history, whatever its format
        fmt = detect_format(text)
        if fmt == "unknown":
            raise _cannot_tell(path)
    if fmt == "jsonl":
        yield from iter_jsonl(_lines_of(text), path)
    elif fmt == "edn":
        yield from iter_edn_history(text, path)
    elif fmt == "porcupine-etcd":
        yield from iter_porcupine_etcd(_lines_of(text), path)
    elif fmt == "porcupine-kv":
        yield from iter_porcupine_kv(_lines_of(text), path)
    else:
        raise InputError(
            path, None, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
        )


def parse_history(text: str, fmt: str = "auto", path: str = "<history>") -> list[dict[str, Any]]:
    return [ev for _, ev in iter_parsed(text, fmt, path)]


def iter_history(path: str, format: str = "auto") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, event) for every event of the file, read as it goes: line-based formats (JSON
    Lines, Porcupine logs, the EDN tuple form) are streamed; EDN maps are parsed from the
    file's text, one op at a time."""
    fmt = resolve_format(path, format)
    if fmt == "empty":
        return
    if fmt == "jsonl":
        yield from iter_jsonl(iter_lines(path), path)
    elif fmt == "porcupine-etcd":
        yield from iter_porcupine_etcd(iter_lines(path), path)
    elif fmt == "porcupine-kv":
        yield from iter_porcupine_kv(iter_lines(path), path)
    else:
        yield from iter_parsed(read_text(path), fmt, path)


def read_history(path: str, format: str = "auto") -> list[dict[str, Any]]:
    """Read ``path`` (in ``format``, or guessed with ``auto``) as treadle history events."""
    return [ev for _, ev in iter_history(path, format)]


def resolve_format(path: str, format: str = "auto") -> str:
    """The concrete format ``auto`` would pick for ``path`` (or ``format`` itself); ``empty``
    for a file with nothing but blanks when the format is ``auto``."""
    if format != "auto":
        if format not in FORMATS:
            raise InputError(
                path, None, f"unknown format {format!r}; expected one of {', '.join(FORMATS)}"
            )
        return format
    text = head(path)
    if not text.strip():
        # the head is blank: the whole file may still hold something further on
        for _, line in iter_lines(path):
            if line.strip():
                text = line
                break
        else:
            return "empty"
    fmt = detect_format(text)
    if fmt == "unknown":
        raise _cannot_tell(path)
    return fmt


__all__ = [
    "FORMATS",
    "detect_format",
    "iter_history",
    "iter_parsed",
    "iter_tuple_form",
    "parse_history",
    "read_history",
    "resolve_format",
]
