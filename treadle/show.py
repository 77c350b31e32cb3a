"""`treadle show`: a readable timeline of a trace (replayed), or the events of a history."""

from __future__ import annotations

import json
from typing import Any

from treadle.cli import esc
from treadle.errors import InputError


def _is_trace(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError as e:
        raise InputError(path, None, e.strerror or str(e)) from None
    return '"format": "treadle-trace/' in head or '"format":"treadle-trace/' in head


def show(path: str, limit: int = 0, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    if _is_trace(path):
        from treadle.runner import replay

        r = replay(path, log_steps=True)
        t = r.trace
        con.print(
            f"[bold]{esc(t.system)}[/bold] bug={esc(t.bug)} seed={t.seed} strategy={esc(t.strategy)} "
            f"steps={t.steps} choices={len(t.choices)} history sha256={r.history_sha256[:16]}"
        )
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("step", "time", "node", "event", "detail"):
            table.add_column(col, overflow="fold")
        styles = {
            "crash": "red",
            "restart": "green",
            "partition": "red",
            "heal": "green",
            "drop": "yellow",
            "duplicate": "yellow",
            "lost": "yellow",
            "event": "cyan",
        }
        rows = r.run.world.steps_log
        for n, (step, now, kind, node, detail) in enumerate(rows):
            if limit and n >= limit:
                table.add_row("...", "", "", "", f"{len(rows) - limit} more lines")
                break
            style = styles.get(kind, "")
            table.add_row(str(step), str(now), esc(node), kind, esc(detail), style=style)
        con.print(table)
        v = r.run.violation
        if v:
            con.print(
                f"[bold red]violation[/bold red] of [bold]{esc(v.property)}[/bold]: {esc(v.message)}"
            )
        else:
            con.print("[green]no property violated[/green]")
        return
    from treadle.codecs import read_history

    events = read_history(path, "auto")  # treadle JSONL, Jepsen EDN, Porcupine logs
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("index", "time", "who", "type", "f", "value", "more"):
        table.add_column(col, overflow="fold")
    skip = {"index", "time", "process", "node", "type", "f", "value"}
    for n, ev in enumerate(events):
        if limit and n >= limit:
            table.add_row("...", "", "", "", "", "", f"{len(events) - limit} more events")
            break
        more = " ".join(f"{k}={json.dumps(v)}" for k, v in ev.items() if k not in skip)
        who = ev.get("process", ev.get("node", ""))
        table.add_row(
            str(ev.get("index", n)),
            str(ev.get("time", "")),
            str(who),
            ev["type"],
            str(ev.get("f", "")),
            json.dumps(ev["value"]) if "value" in ev else "",
            more,
        )
    con.print(table)
