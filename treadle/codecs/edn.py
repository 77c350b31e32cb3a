"""A small strict EDN reader (https://github.com/edn-format/edn), enough for Jepsen histories.

Values map to Python as: nil/true/false -> None/True/False, integers -> int, floats -> float,
strings -> str, characters -> str, keywords -> :class:`Keyword` (a ``str`` holding the name
without the colon), symbols -> :class:`Symbol`, vectors and lists -> list, maps -> dict,
sets -> frozenset (or list if an element is unhashable), ``#tag value`` -> the value
(``#inst``/``#uuid`` strings, ``#jepsen.history.Op{...}`` records as plain maps), ``#_`` discards
the next form. Errors raise :class:`EdnError` with the line where the problem is.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 100  # collections nest at most this deep (as treadle.codecs.source.MAX_DEPTH)


class EdnError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


class Keyword(str):
    """An EDN keyword; the string value is its name without the leading colon."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ":" + str(self)


class Symbol(str):
    __slots__ = ()


_DELIMS = set(' \t\r\n,()[]{}";')
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "backspace": "\b"}
_CLOSE = {"(": ")", "[": "]", "{": "}"}


class Reader:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.n = len(text)
        self.line = 1
        self.depth = 0

    def skip_ws(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c == "\n":
                self.line += 1
                self.i += 1
            elif c in " \t\r,":
                self.i += 1
            elif c == ";":
                while self.i < n and s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def at_end(self) -> bool:
        self.skip_ws()
        return self.i >= self.n

    def read(self) -> Any:
        self.skip_ws()
        if self.i >= self.n:
            raise EdnError(self.line, "expected an EDN value, got end of input")
        s = self.s
        c = s[self.i]
        if c in "([{":
            self.i += 1
            self._enter()
            items = self._read_seq(_CLOSE[c])
            self.depth -= 1
            if c == "{":
                return self._to_map(items)
            return items
        if c in ")]}":
            raise EdnError(self.line, f"unexpected {c!r}")
        if c == '"':
            return self._read_string()
        if c == "#":
            return self._read_dispatch()
        if c == "\\":
            return self._read_char()
        tok = self._read_token()
        return self._atom(tok)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise EdnError(self.line, f"values nest deeper than the limit of {MAX_DEPTH} levels")

    def _read_seq(self, close: str) -> list[Any]:
        items: list[Any] = []
        start = self.line
        while True:
            self.skip_ws()
            if self.i >= self.n:
                raise EdnError(start, f"expected {close!r} to close the collection opened here")
            c = self.s[self.i]
            if c == close:
                self.i += 1
                return items
            if c in ")]}":
                raise EdnError(self.line, f"expected {close!r}, got {c!r}")
            if c == "#" and self.s.startswith("#_", self.i):
                self.i += 2
                self.read()
                continue
            items.append(self.read())

    def _to_map(self, items: list[Any]) -> dict[Any, Any]:
        if len(items) % 2:
            raise EdnError(self.line, "expected a map with an even number of forms (key value ...)")
        out: dict[Any, Any] = {}
        for k, v in zip(items[::2], items[1::2]):
            try:
                out[k] = v
            except TypeError:
                raise EdnError(self.line, "expected a hashable map key") from None
        return out

    def _read_string(self) -> str:
        s, n = self.s, self.n
        self.i += 1
        start_line = self.line
        buf: list[str] = []
        while True:
            j = self.i
            while j < n and s[j] not in '"\\':
                j += 1
            chunk = s[self.i : j]
            self.line += chunk.count("\n")
            buf.append(chunk)
            if j >= n:
                raise EdnError(start_line, "expected '\"' to close the string opened here")
            if s[j] == '"':
                self.i = j + 1
                return "".join(buf)
            # backslash escape
            if j + 1 >= n:
                raise EdnError(self.line, "expected an escape character after '\\'")
            e = s[j + 1]
            if e == "u":
                hexs = s[j + 2 : j + 6]
                try:
                    buf.append(chr(int(hexs, 16)))
                except ValueError:
                    raise EdnError(self.line, "expected 4 hex digits after \\u") from None
                self.i = j + 6
            elif e in _ESCAPES:
                buf.append(_ESCAPES[e])
                self.i = j + 2
            else:
                raise EdnError(self.line, f"unknown string escape \\{e}")

    def _read_char(self) -> str:
        self.i += 1
        tok = self._read_token(allow_empty_delim=True)
        if len(tok) == 1:
            return tok
        if tok in _CHARS:
            return _CHARS[tok]
        if tok.startswith("u") and len(tok) == 5:
            try:
                return chr(int(tok[1:], 16))
            except ValueError:
                pass
        raise EdnError(self.line, f"unknown character literal \\{tok}")

    def _read_dispatch(self) -> Any:
        s = self.s
        nxt = s[self.i + 1] if self.i + 1 < self.n else ""
        if nxt == "{":
            self.i += 2
            self._enter()
            items = self._read_seq("}")
            self.depth -= 1
            try:
                return frozenset(items)
            except TypeError:
                return items
        if nxt == "_":
            self.i += 2
            self._enter()
            self.read()
            self.depth -= 1
            return self.read()
        if nxt.isalpha():
            self.i += 1
            self._read_token()  # the tag; its value is returned as is
            self._enter()
            v = self.read()
            self.depth -= 1
            return v
        raise EdnError(self.line, f"unknown dispatch '#{nxt}'")

    def _read_token(self, allow_empty_delim: bool = False) -> str:
        s, n = self.s, self.n
        j = self.i
        if allow_empty_delim and j < n:
            j += 1  # a character literal may be a delimiter itself, e.g. \(
        while j < n and s[j] not in _DELIMS:
            j += 1
        tok = s[self.i : j]
        self.i = j
        if not tok:
            raise EdnError(self.line, "expected a token")
        return tok

    def _atom(self, tok: str) -> Any:
        if tok == "nil":
            return None
        if tok == "true":
            return True
        if tok == "false":
            return False
        c = tok[0]
        if c == ":":
            if len(tok) == 1 or tok[1] == ":" and len(tok) == 2:
                raise EdnError(self.line, "expected a keyword name after ':'")
            return Keyword(tok[1:])
        if c.isdigit() or (c in "+-" and len(tok) > 1 and tok[1].isdigit()):
            body = tok[:-1] if tok[-1] in "NM" else tok
            try:
                return int(body)
            except ValueError:
                if body.lstrip("+-").isdigit():
                    raise EdnError(
                        self.line, f"integer too long ({len(body)} digits; at most 4300)"
                    ) from None
            try:
                v = float(body)
            except ValueError:
                pass
            else:
                if not math.isfinite(v):
                    raise EdnError(self.line, f"non-finite number {tok!r}; expected a finite one")
                return v
            if "/" in body:  # ratio
                a, _, b = body.partition("/")
                try:
                    return int(a) / int(b)
                except (ValueError, ZeroDivisionError, OverflowError):
                    pass
            raise EdnError(self.line, f"expected a number, got {tok!r}")
        return Symbol(tok)


def loads_all(text: str) -> list[tuple[int, Any]]:
    """Every top-level form of ``text`` with the line it starts on."""
    r = Reader(text)
    out: list[tuple[int, Any]] = []
    while not r.at_end():
        line = r.line
        out.append((line, r.read()))
    return out


def loads(text: str) -> Any:
    """Exactly one EDN value."""
    r = Reader(text)
    v = r.read()
    if not r.at_end():
        raise EdnError(r.line, "expected end of input after one EDN value")
    return v
