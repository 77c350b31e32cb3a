"""Reading history files safely: UTF-8 with the byte offset of a bad byte, strict JSON (no NaN
or Infinity, no number too large to be a finite float, no integer of more than 4300 digits),
and a bound on nesting.

Every limit is an :class:`~treadle.errors.InputError` naming the file and the line, never a
``RecursionError`` or a ``ValueError`` from deep inside a parser.

``MAX_DEPTH``: values may nest at most this many lists/maps deep (real histories nest 3 or 4).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from treadle.errors import InputError

MAX_DEPTH = 100


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, expected a history file") from None
    except OSError as e:
        raise InputError(path, None, e.strerror or str(e)) from None


def _bad_utf8(path: str, data: bytes, offset: int, e: UnicodeDecodeError, line: int) -> InputError:
    bad = data[e.start : e.start + 1].hex()
    return InputError(
        path,
        line,
        f"invalid UTF-8 at byte offset {offset + e.start} (byte 0x{bad}); expected UTF-8 text",
    )


def read_text(path: str) -> str:
    """The whole file as text (UTF-8, strict)."""
    with _open(path) as f:
        try:
            data = f.read()
        except OSError as e:
            raise InputError(path, None, e.strerror or str(e)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad_utf8(path, data, 0, e, data.count(b"\n", 0, e.start) + 1) from None


def iter_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, line with its newline), streaming: memory does not grow with the file."""
    with _open(path) as f:
        offset = 0
        try:
            for lineno, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise _bad_utf8(path, raw, offset, e, lineno) from None
                offset += len(raw)
                yield lineno, text
        except OSError as e:
            raise InputError(path, None, e.strerror or str(e)) from None


def head(path: str, size: int = 65536) -> str:
    """The start of the file, for format detection (a bad byte there is reported later)."""
    with _open(path) as f:
        try:
            data = f.read(size)
        except OSError as e:
            raise InputError(path, None, e.strerror or str(e)) from None
    return data.decode("utf-8", errors="replace")


class _NotFinite(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotFinite(name)


def _float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise _NotFinite(text)
    return v


_decoder = json.JSONDecoder(parse_constant=_constant, parse_float=_float)
_scan = _decoder.scan_once  # the C scanner, without decode()'s two regex matches per call


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep lists/dicts nest in ``value``, counting stops just past ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list | tuple | set | frozenset):
            if d > deepest:
                deepest = d
                if d > limit:
                    return d
            stack.extend((x, d + 1) for x in v)
    return deepest


def check_depth(value: Any, path: str, line: int | None) -> None:
    if nesting_depth(value) > MAX_DEPTH:
        raise InputError(path, line, f"values nest deeper than the limit of {MAX_DEPTH} levels")


def loads_json(text: str, path: str, line: int | None) -> Any:
    """Strict JSON: NaN, Infinity, overflowing floats and over-long integers are refused, and
    nesting is bounded by MAX_DEPTH."""
    try:
        start = len(text) - len(text.lstrip())
        try:
            obj, end = _scan(text, start)
        except StopIteration as e:
            raise json.JSONDecodeError("Expecting value", text, e.value) from None
        if end != len(text) and not text[end:].isspace():
            raise json.JSONDecodeError("Extra data", text, end)
    except _NotFinite as e:
        raise InputError(
            path, line, f"non-finite number {e}; expected finite JSON numbers (no NaN/Infinity)"
        ) from None
    except RecursionError:
        raise InputError(
            path, line, f"values nest deeper than the limit of {MAX_DEPTH} levels"
        ) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise InputError(path, line, f"bad number: {e}") from None
    # only a line with many brackets can nest deeply: count them (fast) before walking
    if text.count("[") + text.count("{") > MAX_DEPTH:
        check_depth(obj, path, line)
    return obj
