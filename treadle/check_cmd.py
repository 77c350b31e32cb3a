"""``treadle check HISTORY...``: judge recorded histories (called by ``treadle.cli``).

``main(args)`` takes an argparse.Namespace with ``files``, ``model``, ``format``, ``timeout``,
``init``, ``key``, ``max_memory``, ``json`` and ``html``.

Every file gets its own result; a file that cannot be read or judged gets ``verdict: "error"``
with its one-line message and the rest are still checked. Exit code: 2 if any file had an
error (or the usage is wrong), else 1 if any violation, else 3 if any unknown, else 0.

Model dispatch: a name in ``models.REGISTRY`` is checked for linearizability; the protocol
checkers (raft, pbft, eventstore, kv-store, mesh, breaker) are the modules ``checkers.<name>``,
whose ``check_history(events, timeout=...) -> CheckResult`` is called. A protocol checker given
a history with none of its events is an error ("no raft events in FILE"), never "ok".
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from treadle import models
from treadle.codecs import FORMATS, iter_history, resolve_format
from treadle.errors import InputError, MalformedEvent, TreadleError

DEFAULT_MODEL = {"porcupine-etcd": "cas-register", "porcupine-kv": "kv"}

_ES_TYPES = {"appended", "rejected", "deduplicated", "recovered", "snapshot_saved", "loaded"}
_MESH_TYPES = {"dispatch", "retry", "route", "instance-down", "instance-up", "registry-config"}


def _raft_event(e: dict[str, Any]) -> bool:
    from treadle.checkers.raft.history import _HANDLERS

    return "node" in e and e.get("type") in _HANDLERS and e.get("type") != "crash"


# what each protocol checker reads: a history with none of it is not checked ("ok" would lie)
PROTOCOLS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "raft": ("raft events (became-leader, append, commit ... with a node)", _raft_event),
    "pbft": ("pbft events (execute)", lambda e: e.get("type") == "execute"),
    "eventstore": (
        "eventstore events (appended, rejected, loaded ...)",
        lambda e: e.get("type") in _ES_TYPES | {"projected"},
    ),
    "kv-store": ("kv-store events (audit)", lambda e: e.get("type") == "audit"),
    "mesh": (
        "mesh events (route, dispatch, retry, instance-down ...)",
        lambda e: e.get("type") in _MESH_TYPES or e.get("f") == "request",
    ),
    "breaker": (
        "breaker events (breaker-call, breaker-outcome)",
        lambda e: e.get("type") in ("breaker-call", "breaker-outcome"),
    ),
}


def _known_models() -> list[str]:
    return sorted(set(models.REGISTRY) | set(PROTOCOLS))


def _check_model_name(name: str) -> None:
    if name not in models.REGISTRY and name not in PROTOCOLS:
        raise TreadleError(f"unknown model {name!r}; expected one of {', '.join(_known_models())}")


def _protocol_checker(name: str) -> Callable[..., Any]:
    mod = importlib.import_module("treadle.checkers." + name.replace("-", "_"))
    return mod.check_history


def parse_init(text: str | None, fmt: str) -> Any:
    """``--init``: a JSON literal; an EDN literal is accepted too (``{:x 0}``, ``nil``)."""
    from treadle.checkers.linearizability import NO_INIT

    if text is None:
        return NO_INIT
    from treadle.codecs.source import loads_json

    try:
        return loads_json(text, "--init", None)
    except json.JSONDecodeError:
        pass
    from treadle.codecs.edn import EdnError, loads
    from treadle.codecs.jepsen import to_json

    try:
        return to_json(loads(text))
    except EdnError:
        raise TreadleError(
            f'--init {text!r}: expected a JSON literal (0, null, "a", {{"x": 0}}) or an '
            "EDN one (nil, {:x 0})"
        ) from None


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)


def parse_size(text: str | None) -> int | None:
    if text is None:
        return None
    m = _SIZE.match(str(text))
    if not m:
        raise TreadleError(f"--max-memory {text!r}: expected a size such as 2G, 512M or bytes")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def _html(path: str, results: list[tuple[str, Any, list[dict[str, Any]]]]) -> None:
    from treadle.checkers.linearizability.html import render_html
    from treadle.history import atomic_write

    atomic_write(path, render_html(results))


def _check_file(path: str, args: argparse.Namespace, fmt: str, want_events: bool) -> tuple:
    """(model name, CheckResult, events kept for the page, elapsed)."""
    concrete = resolve_format(path, fmt)
    name = getattr(args, "model", None) or DEFAULT_MODEL.get(concrete)
    if name is None:
        raise TreadleError(
            f"{path}: no --model given and none implied by the format ({concrete}); "
            f"known models: {', '.join(_known_models())}"
        )
    timeout = getattr(args, "timeout", None)
    t0 = time.perf_counter()
    if name in models.REGISTRY:
        from treadle.checkers.linearizability import check_history

        kept: list[dict[str, Any]] | None = [] if want_events else None
        res = check_history(
            iter_history(path, fmt),
            name,
            timeout=timeout,
            init=args._init,
            key=getattr(args, "key", None),
            max_memory=args._max_memory,
            source=path,
            with_lines=True,
            keep_events=kept,
        )
        return name, res, kept or [], time.perf_counter() - t0
    what, relevant = PROTOCOLS[name]
    lines, events = [], []
    for line, ev in iter_history(path, fmt):
        lines.append(line)
        events.append(ev)
    if not any(relevant(e) for e in events):
        raise InputError(path, None, f"no {name} events in {path}; expected {what}")
    try:
        res = _protocol_checker(name)(events, timeout=timeout)
    except MalformedEvent as e:  # the checker names the event: the file's line of it
        at = lines[e.position] if 0 <= e.position < len(lines) else None
        raise InputError(path, at, e.detail) from None
    except InputError as e:
        raise InputError(path, e.line, e.detail) from None
    except (KeyError, TypeError, ValueError) as e:  # a malformed protocol event
        raise InputError(path, None, f"malformed {name} event: {type(e).__name__}: {e}") from None
    return name, res, events if want_events else [], time.perf_counter() - t0


def _one_line(text: Any, limit: int = 400) -> str:
    """One line, and not a megabyte of it when the message quotes a huge value."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = f"{s[: limit - 60]} ... ({len(s)} characters) ... {s[-40:]}"
    return s


def run(args: argparse.Namespace, out: Any = None, err: Any = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    fmt = getattr(args, "format", None) or "auto"
    as_json = bool(getattr(args, "json", False))
    try:
        if fmt not in FORMATS:
            raise TreadleError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        files = list(getattr(args, "files", None) or [])
        if not files:
            raise TreadleError("no history files given")
        model = getattr(args, "model", None)
        if model is not None:
            _check_model_name(model)
            if model in PROTOCOLS and (
                getattr(args, "init", None) is not None or getattr(args, "key", None) is not None
            ):
                raise TreadleError(f"--init and --key apply to linearizability models, not {model}")
        args._init = parse_init(getattr(args, "init", None), fmt)
        args._max_memory = parse_size(getattr(args, "max_memory", None))
        html = getattr(args, "html", None)
        if html:
            d = os.path.dirname(os.path.abspath(html))
            if not os.path.isdir(d):
                raise TreadleError(f"--html {html}: the folder {d} does not exist")
    except TreadleError as e:
        print(f"error: {_one_line(e)}", file=err)
        return 2
    results = []
    html_items = []
    counts = {"ok": 0, "violation": 0, "unknown": 0, "error": 0}
    for path in files:
        try:
            name, res, events, elapsed = _check_file(path, args, fmt, bool(html))
        except TreadleError as e:
            msg = _one_line(e)
            counts["error"] += 1
            results.append({"file": path, "verdict": "error", "message": msg})
            print(f"error: {msg}", file=err)
            continue
        except Exception as e:  # last resort per file: the batch goes on
            if os.environ.get("TREADLE_DEBUG"):
                traceback.print_exc(file=err)
            msg = _one_line(f"{path}: internal error: {type(e).__name__}: {e}")
            if isinstance(e, RecursionError | MemoryError):
                msg = _one_line(
                    f"{path}: input too deep or too large to check ({type(e).__name__})"
                )
            counts["error"] += 1
            results.append({"file": path, "verdict": "error", "message": msg})
            print(f"error: {msg}", file=err)
            continue
        counts[res.verdict if res.verdict in counts else "error"] += 1
        row = {
            "file": path,
            "verdict": res.verdict,
            "elapsed_s": round(elapsed, 6),
            "model": name,
            "property": res.property,
            "message": res.message,
            "keys": (res.details or {}).get("keys"),
            "details": res.details,
        }
        if row["keys"] is None:
            del row["keys"]
        results.append(row)
        html_items.append((path, res, events))
        if not as_json:
            _print_row(out, path, name, res, elapsed)
    if as_json:
        print(json.dumps({"results": results, "counts": counts}, default=repr), file=out)
    if html and html_items:
        try:
            if name not in models.REGISTRY:  # a protocol checker: the study page's protocol view
                from treadle.study.history_view import write_protocol_pages

                write_protocol_pages(html_items, html, name)
            else:
                _html(html, html_items)
        except OSError as e:
            print(f"error: {html}: cannot write the HTML report ({e.strerror})", file=err)
            return 2
        if not as_json:
            print(f"wrote {html}", file=out)
    if counts["error"]:
        return 2
    if counts["violation"]:
        return 1
    if counts["unknown"]:
        return 3
    return 0


def _print_row(out: Any, path: str, name: str, res: Any, elapsed: float) -> None:
    word = {"ok": "linearizable", "violation": "not linearizable", "unknown": "unknown"}
    if res.property and res.property != "linearizability":
        prop = res.property
        word = {"ok": "ok", "violation": f"violation of {prop}", "unknown": f"unknown ({prop})"}
    print(f"{path}: {word.get(res.verdict, res.verdict)} ({elapsed:.3f} s, model {name})", file=out)
    if res.verdict != "ok":
        for line in res.message.splitlines():
            print("  " + line, file=out)
    else:
        print("  " + res.message.splitlines()[0], file=out)
    keys = (res.details or {}).get("keys")
    if keys and len(keys) > 1:
        shown = keys if len(keys) <= 20 else [k for k in keys if k["verdict"] != "ok"][:20]
        tally = ", ".join(
            f"{sum(1 for k in keys if k['verdict'] == v)} {v}"
            for v in ("ok", "violation", "unknown")
            if any(k["verdict"] == v for k in keys)
        )
        print(f"  keys: {len(keys)} ({tally})", file=out)
        from treadle.models.model import fmt

        for k in shown:
            print(f"    key {fmt(k['key'])}: {k['verdict']} ({k['operations']} ops)", file=out)


def main(args: argparse.Namespace) -> int:
    return run(args)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The check subcommand's options (shared by ``treadle check`` and this module's main)."""
    p.add_argument("files", nargs="+", metavar="HISTORY")
    p.add_argument(
        "--model",
        help="a linearizability model (register, cas-register, multi-register, kv, mutex, set, "
        "fifo-queue, ...) or a protocol checker: raft, pbft, eventstore, kv-store, mesh, breaker",
    )
    p.add_argument(
        "--format", default="auto", help="jsonl | edn | porcupine-etcd | porcupine-kv | auto"
    )
    p.add_argument("--timeout", type=float, help="seconds per file; past it the verdict is unknown")
    p.add_argument(
        "--init",
        metavar="VALUE",
        help="the model's initial state as a JSON (or EDN) literal, e.g. 0 or '{\"x\": 0}'",
    )
    p.add_argument("--key", metavar="K", help="check only the operations on key K")
    p.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="resident memory bound (e.g. 2G); past it the verdict is unknown "
        "(default: half the machine's RAM)",
    )
    p.add_argument("--html", metavar="OUT", help="write an HTML page to study the counterexample")
    p.add_argument("--json", action="store_true")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m treadle.check_cmd", description=__doc__.splitlines()[0]
    )
    add_arguments(p)
    return p


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
