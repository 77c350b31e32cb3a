"""``treadle check HISTORY...``: judge recorded histories (called by ``treadle.cli``).

``main(args)`` takes an argparse.Namespace with ``files``, ``model``, ``format``, ``timeout``,
``json`` and ``html``. Exit codes: 0 all ok, 1 any violation, 2 bad usage or input, 3 unknown.

Model dispatch: a name in ``models.REGISTRY`` is checked for linearizability; any other name
``foo-bar`` is looked up as the module ``checkers.foo_bar``, whose
``check_history(events, timeout=...) -> CheckResult`` is called.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Any

import models
from treadle.codecs import FORMATS, read_history, resolve_format
from treadle.errors import InputError, TreadleError

DEFAULT_MODEL = {"porcupine-etcd": "cas-register", "porcupine-kv": "kv"}


def _known_models() -> list[str]:
    import pkgutil

    import checkers

    names = set(models.REGISTRY)
    for m in pkgutil.iter_modules(checkers.__path__):
        if m.name not in ("result", "linearizability"):
            names.add(m.name.replace("_", "-"))
    return sorted(names)


def _checker_for(name: str):
    """(kind, callable(events, timeout) -> CheckResult)."""
    if name in models.REGISTRY:
        from checkers.linearizability import check_history

        model = models.REGISTRY[name]
        return lambda events, timeout: check_history(events, model, timeout=timeout)
    modname = "checkers." + name.replace("-", "_")
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name and (e.name == modname or modname.startswith(e.name + ".")):
            raise TreadleError(
                f"unknown model {name!r}; known: {', '.join(_known_models())}"
            ) from None
        raise
    fn = getattr(mod, "check_history", None)
    if fn is None:
        raise TreadleError(f"{modname} has no check_history(events, timeout=...)")
    return lambda events, timeout: fn(events, timeout=timeout)


def _html(path: str, results: list[tuple[str, Any, list[dict[str, Any]]]]) -> None:
    from checkers.linearizability.html import render_html
    from treadle.history import atomic_write

    atomic_write(path, render_html(results))


def run(args: argparse.Namespace, out=sys.stdout, err=sys.stderr) -> int:
    fmt = getattr(args, "format", None) or "auto"
    if fmt not in FORMATS:
        print(f"error: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}", file=err)
        return 2
    files = list(getattr(args, "files", None) or [])
    if not files:
        print("error: no history files given", file=err)
        return 2
    timeout = getattr(args, "timeout", None)
    results = []
    html_items = []
    worst = 0
    for path in files:
        try:
            concrete = resolve_format(path, fmt)
            name = getattr(args, "model", None) or DEFAULT_MODEL.get(concrete)
            if name is None:
                raise TreadleError(
                    f"{path}: no --model given and none implied by the format ({concrete}); "
                    f"known models: {', '.join(_known_models())}"
                )
            checker = _checker_for(name)
            events = read_history(path, fmt)
            t0 = time.perf_counter()
            try:
                res = checker(events, timeout)
            except InputError as e:
                raise InputError(path, e.line, e.detail) from None
            elapsed = time.perf_counter() - t0
        except TreadleError as e:
            print(f"error: {e}", file=err)
            return 2
        code = {"ok": 0, "violation": 1, "unknown": 3}.get(res.verdict, 2)
        if code == 1:
            worst = 1
        elif code == 3 and worst == 0:
            worst = 3
        row = {
            "file": path,
            "verdict": res.verdict,
            "elapsed_s": round(elapsed, 6),
            "model": name,
            "property": res.property,
            "message": res.message,
            "details": res.details,
        }
        results.append(row)
        html_items.append((path, res, events))
        if not getattr(args, "json", False):
            word = {"ok": "linearizable", "violation": "not linearizable", "unknown": "unknown"}
            if res.property and res.property != "linearizability":
                prop = res.property
                word = {
                    "ok": "ok",
                    "violation": f"violation of {prop}",
                    "unknown": f"unknown ({prop})",
                }
            print(
                f"{path}: {word.get(res.verdict, res.verdict)} ({elapsed:.3f} s, model {name})",
                file=out,
            )
            if res.verdict != "ok":
                for line in res.message.splitlines():
                    print("  " + line, file=out)
    if getattr(args, "json", False):
        print(json.dumps({"results": results}, default=repr), file=out)
    html = getattr(args, "html", None)
    if html:
        try:
            _html(html, html_items)
        except OSError as e:
            print(f"error: {html}: cannot write the HTML report ({e.strerror})", file=err)
            return 2
        if not getattr(args, "json", False):
            print(f"wrote {html}", file=out)
    return worst


def main(args: argparse.Namespace) -> int:
    return run(args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m treadle.check_cmd", description=__doc__.splitlines()[0]
    )
    p.add_argument("files", nargs="+", metavar="HISTORY")
    p.add_argument("--model")
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--timeout", type=float)
    p.add_argument("--json", action="store_true")
    p.add_argument("--html")
    return p


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
