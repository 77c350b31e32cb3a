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

from typing import Any

from treadle.codecs.jepsen import parse_edn_history, parse_porcupine_etcd, parse_porcupine_kv
from treadle.errors import InputError
from treadle.history import parse_jsonl

FORMATS = ("jsonl", "edn", "porcupine-etcd", "porcupine-kv", "auto")


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, expected a history file") from None
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise InputError(path, None, e.strerror or str(e)) from None


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
        if s[0].isdigit() or s.startswith("["):
            return "edn"
        break
    return "unknown"


def parse_history(text: str, fmt: str = "auto", path: str = "<history>") -> list[dict[str, Any]]:
    if fmt == "auto":
        if not text.strip():
            return []  # an empty history, whatever its format
        fmt = detect_format(text)
        if fmt == "unknown":
            raise InputError(
                path,
                None,
                "cannot tell the format; expected JSON Lines, Jepsen EDN or a Porcupine log "
                "(pass --format jsonl|edn|porcupine-etcd|porcupine-kv)",
            )
    if fmt == "jsonl":
        return parse_jsonl(text, path)
    if fmt == "edn":
        return parse_edn_history(text, path)
    if fmt == "porcupine-etcd":
        return parse_porcupine_etcd(text, path)
    if fmt == "porcupine-kv":
        return parse_porcupine_kv(text, path)
    raise InputError(path, None, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def read_history(path: str, format: str = "auto") -> list[dict[str, Any]]:
    """Read ``path`` (in ``format``, or guessed with ``auto``) as treadle history events."""
    return parse_history(_read_text(path), format, path)


def resolve_format(path: str, format: str = "auto") -> str:
    """The concrete format ``auto`` would pick for ``path`` (or ``format`` itself)."""
    if format != "auto":
        return format
    return detect_format(_read_text(path))


__all__ = ["FORMATS", "detect_format", "parse_history", "read_history", "resolve_format"]
