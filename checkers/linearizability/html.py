"""One self-contained HTML page (inline CSS and JS, no network) to study histories.

A row per process, operations as bars from invoke to completion (position in the history),
completed ops solid, unknown-outcome ops fading out to the right, failed ops hatched. For a
violation: the operations of the longest linearizable prefix are numbered in their
linearization order, the operations that cannot be placed next are outlined in red, and a
vertical line marks the failing point. Hovering a bar shows the operation and the model
state before it in the partial linearization.
"""

from __future__ import annotations

import html
import json
from typing import Any

_CSS = """
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h2{font-size:15px;margin:18px 0 4px}
.verdict-ok{color:#17803d}.verdict-violation{color:#b91c1c}.verdict-unknown{color:#a16207}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}
.tl{position:relative;border:1px solid #ddd;overflow-x:auto;background:#fff}
.row{position:relative;height:22px;border-bottom:1px solid #f0f0f0}
.lbl{position:absolute;left:0;width:90px;font-size:11px;line-height:22px;color:#555;padding-left:4px}
.op{position:absolute;top:3px;height:16px;border-radius:3px;background:#93c5fd;font-size:10px;
 line-height:16px;overflow:hidden;white-space:nowrap;padding:0 2px;box-sizing:border-box;cursor:default}
.op.info,.op.pending{background:linear-gradient(90deg,#fcd34d,#fff0)}
.op.fail{background:repeating-linear-gradient(45deg,#ddd,#ddd 3px,#fff 3px,#fff 6px);color:#888}
.op.lin{background:#86efac}
.op.stuck{outline:2px solid #dc2626;background:#fecaca}
.fail-line{position:absolute;top:0;bottom:0;width:2px;background:#dc2626}
#tip{position:fixed;display:none;background:#111;color:#fff;padding:6px 8px;border-radius:4px;
 font-size:12px;max-width:520px;pointer-events:none;white-space:pre-wrap;z-index:9}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px}
"""

_JS = """
const tip=document.getElementById('tip');
document.querySelectorAll('.op').forEach(e=>{
 e.addEventListener('mousemove',ev=>{tip.style.display='block';tip.textContent=e.dataset.tip;
  tip.style.left=(ev.clientX+12)+'px';tip.style.top=(ev.clientY+12)+'px';});
 e.addEventListener('mouseleave',()=>{tip.style.display='none';});
});
"""


def _timeline(result: Any, events: list[dict[str, Any]]) -> str:
    from checkers.linearizability.ops import pair_operations

    cex = (result.details or {}).get("counterexample")
    try:
        ops, failed = pair_operations(events)
    except Exception:  # a malformed history still gets its message rendered
        return ""
    rows: dict[Any, list[str]] = {}
    n = max(len(events), 1)
    scale = 1200 / n
    lin_pos: dict[tuple[int, int], tuple[int, str]] = {}
    stuck: dict[tuple[int, int], str] = {}
    fail_x = None
    if cex:
        prefix = cex["prefixes"][0] if cex["prefixes"] else {"steps": [], "next": []}
        by_id = {o["id"]: o for o in cex["operations"]}
        for k, s in enumerate(prefix["steps"]):
            o = by_id[s["op"]]
            lin_pos[(o["call"], o["id"])] = (k + 1, s["state_before"])
        for x in prefix["next"]:
            o = by_id[x["op"]]
            stuck[(o["call"], o["id"])] = x["reason"] + f"\nstate: {prefix['final_state']}"
        rets = [
            by_id[i]["ret"] for i in prefix.get("must_precede", []) if by_id[i]["ret"] is not None
        ]
        if rets:
            fail_x = min(rets)
    part_ids = {}
    if cex:
        for o in cex["operations"]:
            part_ids[o["call"]] = o["id"]
    for op in list(ops) + list(failed):
        left = 100 + op.call * scale
        end = op.ret if op.ret is not None else n  # unknown outcome: may act until the end
        width = max((end - op.call) * scale, 6)
        desc = f"{op.input.f}({json.dumps(op.input.value)})"
        if op.input.key is not None:
            desc = f"{op.input.f}[{op.input.key}]({json.dumps(op.input.value)})"
        if op.status == "ok":
            desc += f" -> {json.dumps(op.output, default=repr)}"
        cls = ["op", op.status]
        tipt = f"process {op.process}: {desc}\nstatus: {op.status}, events {op.call}..{op.ret if op.ret is not None else '?'}"
        label = ""
        pid = part_ids.get(op.call) if op.status != "fail" else None
        if pid is not None and (op.call, pid) in lin_pos:
            k, st = lin_pos[(op.call, pid)]
            cls.append("lin")
            label = f"#{k} "
            tipt += f"\nlinearized #{k}; state before: {st}"
        if pid is not None and (op.call, pid) in stuck:
            cls.append("stuck")
            tipt += f"\ncannot be placed next: {stuck[(op.call, pid)]}"
        rows.setdefault(op.process, []).append(
            f'<div class="{" ".join(cls)}" style="left:{left:.1f}px;width:{width:.1f}px" '
            f'data-tip="{html.escape(tipt)}">{html.escape(label + desc)}</div>'
        )
    out = [f'<div class="tl" style="width:{1320}px">']
    for proc in sorted(rows, key=lambda p: (str(type(p)), p)):
        out.append(f'<div class="row"><div class="lbl">process {html.escape(str(proc))}</div>')
        out.extend(rows[proc])
        out.append("</div>")
    if fail_x is not None:
        out.append(
            f'<div class="fail-line" style="left:{100 + fail_x * scale:.1f}px" title="failing point"></div>'
        )
    out.append("</div>")
    return "".join(out)


def render_html(items: list[tuple[str, Any, list[dict[str, Any]]]]) -> str:
    """``items``: (file name, CheckResult, events) per history."""
    from checkers.linearizability.report import render_text

    body = [
        "<h1>treadle check</h1>",
        '<div class="legend"><span style="background:#93c5fd">completed</span>'
        '<span style="background:#fcd34d">unknown outcome (info/pending)</span>'
        '<span style="background:#ddd">failed (no effect)</span>'
        '<span style="background:#86efac">#k: in the longest linearizable prefix</span>'
        '<span style="background:#fecaca;outline:2px solid #dc2626">cannot be placed next</span>'
        "</div>",
    ]
    for name, res, events in items:
        body.append(
            f'<h2>{html.escape(name)}: <span class="verdict-{res.verdict}">{res.verdict}</span></h2>'
        )
        cex = (res.details or {}).get("counterexample")
        text = render_text(cex) if cex else res.message
        body.append(f"<pre>{html.escape(text)}</pre>")
        body.append(_timeline(res, events))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>treadle check</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}<div id='tip'></div>"
        f"<script>{_JS}</script></body></html>"
    )
