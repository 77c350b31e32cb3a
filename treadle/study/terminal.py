"""`treadle show TRACE` in the terminal: the steps as a table, filtered by node and by a window
of steps, with node state columns (the fields that changed at each step) and the violation's
step marked."""

from __future__ import annotations

import json
from typing import Any

from treadle.cli import esc
from treadle.study.extract import step_text

STYLES = {
    "crash": "red",
    "restart": "green",
    "partition": "red",
    "heal": "green",
    "lost": "yellow",
    "dropped": "yellow",
    "duplicated": "yellow",
}


def _short(v: Any, limit: int = 60) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def select_steps(
    data: dict[str, Any], nodes: list[str] | None, around: int | None, window: int
) -> list[int]:
    """The step numbers to show: those of the given nodes (a delivery counts for its sender and
    its receiver), within ``window`` steps of ``around``."""
    msgs = {m["id"]: m for m in data["messages"]}
    out = [0]
    for s in data["steps"]:
        if around is not None and abs(s["step"] - around) > window:
            continue
        if nodes:
            m = msgs.get(s.get("msg"))
            who = {s["node"]} | ({m["src"]} if m else set())
            if s["kind"] not in ("partition", "heal") and not who.intersection(nodes):
                continue
        out.append(s["step"])
    if around is not None and abs(around) > window:
        out = out[1:]
    return out


def state_columns(data: dict[str, Any], nodes: list[str]) -> dict[int, dict[str, str]]:
    """Per step, per node: the fields that changed at that step, as ``k=v``."""
    out: dict[int, dict[str, str]] = {0: {}}
    for n in nodes:
        st = data["initial"].get(n, {})
        out[0][n] = " ".join(f"{k}={_short(v, 30)}" for k, v in list(st.items())[:6])
    for i, delta in enumerate(data["deltas"]):
        row = {}
        for n in nodes:
            d = delta.get(n)
            if d:
                row[n] = " ".join(f"{k}={_short(v)}" for k, v in d["set"].items())
        out[i + 1] = row
    return out


def print_trace_table(
    data: dict[str, Any],
    console: Any,
    nodes: list[str] | None = None,
    around: int | None = None,
    window: int = 10,
    state: bool = False,
    limit: int = 0,
) -> None:
    from rich.table import Table

    meta = data["meta"]
    lanes = [lane["id"] for lane in data["lanes"]]
    unknown = [n for n in nodes or [] if n not in lanes]
    if unknown:
        from treadle.errors import TreadleError

        raise TreadleError(
            f"--node {unknown[0]}: no such node in this trace; nodes: {', '.join(lanes)}"
        )
    shrunk = meta.get("shrunk_from")
    console.print(
        f"[bold]{esc(meta['system'])}[/bold] bug={esc(meta['bug'])} seed={meta['seed']} "
        f"strategy={esc(meta['strategy'])} steps={meta['steps']} choices={meta['choices']}"
        + (f" (shrunk from {shrunk.get('steps')} steps)" if shrunk else "")
        + f" history sha256={meta['history_sha256'][:16]}"
    )
    v = data.get("verdict")
    vstep = v.get("step") if v else None
    steps = {s["step"]: s for s in data["steps"]}
    by_step: dict[int, list[dict[str, Any]]] = {}
    for e in data["events"]:
        by_step.setdefault(e["_step"], []).append(e)
    shown = select_steps(data, nodes, around, window)
    state_nodes = nodes or [lane["id"] for lane in data["lanes"] if lane["kind"] == "server"]
    cols = state_columns(data, state_nodes) if state else {}
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("step", "time", "node", "event", "detail"):
        table.add_column(col, overflow="fold")
    if state:
        for n in state_nodes:
            table.add_column(f"{n} (changed)", overflow="fold", style="dim")
    for k, sn in enumerate(shown):
        if limit and k >= limit:
            table.add_row("...", "", "", "", f"{len(shown) - limit} more steps")
            break
        s = steps.get(sn)
        mark = "✖ " if sn == vstep else ""
        if s is None:
            kind, node, text, time, style = "start", "*", ", ".join(lanes), 0, ""
        else:
            kind = s.get("fate") if s["kind"] == "deliver" else s["kind"]
            node, text, time = s["node"], step_text(data, s), s["time"]
            style = STYLES.get(kind or "", "")
        recorded = [
            f"{e.get('process', e.get('node'))}: {e['type']}"
            + "".join(
                f" {k2}={_short(x, 40)}"
                for k2, x in e.items()
                if k2 not in ("index", "time", "node", "process", "type") and not k2.startswith("_")
            )
            for e in by_step.get(sn, [])
            if sn > 0 and e["type"] not in ("crash", "restart", "partition", "heal")
        ]
        detail = text + "".join(f"\n  → {r}" for r in recorded)
        if v is not None and sn == vstep:
            style = "bold red"
            detail += f"\n  ✖ {v['property']} fails here"
        row = [f"{mark}{sn}", str(time), esc(node), esc(kind), esc(detail)]
        if state:
            row += [esc(cols.get(sn, {}).get(n, "")) for n in state_nodes]
        table.add_row(*row, style=style)
    console.print(table)
    if v and v.get("verdict") == "violation":
        at = f" at step {vstep}" if vstep is not None else ""
        console.print(
            f"[bold red]violation[/bold red] of [bold]{esc(v['property'])}[/bold]{at}: "
            f"{esc(v['message'])}"
        )
        for r in v.get("related") or []:
            console.print(f"  step {r['step']} {esc(r['lane'])}: {esc(r['text'])}")
    elif v:
        console.print(f"[yellow]unknown[/yellow] ({esc(v['property'])}): {esc(v['message'])}")
    else:
        console.print("[green]no property violated[/green]")
