"""`treadle show PATH [--html OUT] [--format F] [--node N --around STEP --state] [--json]`.

PATH is a trace (replayed, so every step, message and node state is known) or a history in any
format ``treadle check`` reads (drawn as its protocol view: events, operations, faults).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from treadle.cli import esc
from treadle.errors import TreadleError
from treadle.history import atomic_write


def _data_and_page(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    from treadle.show import _is_trace

    if _is_trace(args.path):
        from treadle.study.extract import study_trace

        st = study_trace(args.path)
        return st.data, st.run.violation
    from treadle.codecs import read_history
    from treadle.study.history_view import history_data

    events = read_history(args.path, "auto")
    return history_data(events, None, args.path, None), None


def show_command(args: argparse.Namespace, console: Any) -> int:
    from treadle.show import _is_trace, show

    fmt = getattr(args, "format", "table") or "table"
    html_out = getattr(args, "html", None)
    want_json = getattr(args, "json", False)
    filters = args.node or args.around is not None or args.state
    if not _is_trace(args.path) and (args.state or args.around is not None):
        raise TreadleError(f"{args.path}: --state and --around need a trace, not a history")
    if not html_out and fmt == "table" and not want_json:
        if _is_trace(args.path):
            from treadle.study.extract import study_trace
            from treadle.study.terminal import print_trace_table

            data = study_trace(args.path).data
            print_trace_table(
                data,
                console,
                nodes=args.node,
                around=args.around,
                window=args.window,
                state=args.state,
                limit=args.limit,
            )
        else:
            if filters:
                raise TreadleError(f"{args.path}: --node filters a trace, not a history")
            show(args.path, limit=args.limit, console=console)
        return 0
    data, raw = _data_and_page(args)
    result: dict[str, Any] = {"path": args.path}
    if html_out:
        from treadle.study.page import render_page

        try:
            atomic_write(html_out, render_page(data, raw))
        except OSError as e:
            raise TreadleError(f"{html_out}: cannot write the page ({e.strerror})") from None
        result["html"] = html_out
        if not want_json:
            console.print(f"study page: {esc(html_out)}")
    if fmt != "table":
        from treadle.study.exports import export

        text = export(data, fmt)
        out = getattr(args, "output", None)
        if out:
            try:
                atomic_write(out, text)
            except OSError as e:
                raise TreadleError(f"{out}: cannot write the export ({e.strerror})") from None
            result["output"] = out
            if not want_json:
                console.print(f"{fmt}: {esc(out)}")
        elif want_json:
            raise TreadleError(
                "--json with --format prints one object: give -o FILE for the export"
            )
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        result["format"] = fmt
    if want_json:
        if not html_out and fmt == "table":
            result = data  # the page's data, as one object
        else:
            v = data.get("verdict")
            result["verdict"] = v["verdict"] if v else "ok"
            result["violation_step"] = v.get("step") if v else None
        print(json.dumps(result, default=repr))
    return 0
