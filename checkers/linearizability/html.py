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
h1{font-size:18px;margin:0 0 8px}
h2{font-size:15px;margin:22px 0 4px}
.verdict-ok{color:#17803d}.verdict-violation{color:#b91c1c}.verdict-unknown{color:#a16207}
.summary{margin:4px 0 8px;max-width:1300px;line-height:1.45}
.summary li{margin:2px 0}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px;max-height:420px}
details{margin:6px 0}
summary{cursor:pointer;color:#444}
.tl{position:relative;border:1px solid #ccc;overflow-x:auto;overflow-y:hidden;background:#fff;
 max-width:100%}
.tlin{position:relative}
.row{position:relative;height:24px;border-bottom:1px solid #f0f0f0}
.row:nth-child(even){background:#fafafa}
.axis{position:relative;height:20px;border-bottom:1px solid #ccc;font-size:10px;color:#777}
.tick{position:absolute;top:4px;border-left:1px solid #ccc;padding-left:2px;height:16px}
.lbl{position:sticky;left:0;display:inline-block;width:96px;font-size:11px;line-height:24px;
 color:#333;padding-left:4px;background:#fff;z-index:6;border-right:1px solid #ddd}
.op{position:absolute;top:4px;height:16px;border-radius:3px;background:#93c5fd;font-size:10px;
 line-height:16px;overflow:hidden;white-space:nowrap;padding:0 3px;box-sizing:border-box;
 cursor:default;border:1px solid #60a5fa}
.op.info,.op.pending{background:linear-gradient(90deg,#fcd34d,#fff0);border-color:#f5c542}
.op.fail{background:repeating-linear-gradient(45deg,#ddd,#ddd 3px,#fff 3px,#fff 6px);color:#888;
 border-color:#ccc}
.op.lin{background:#86efac;border-color:#22c55e}
.op.stuck{outline:2px solid #dc2626;background:#fecaca;z-index:2}
.op.blocker{outline:2px dashed #7c3aed;background:#ede9fe;z-index:2}
.op:hover{filter:brightness(0.9)}
.badge{font-weight:bold;color:#14532d}
.fail-line{position:absolute;top:0;bottom:0;width:2px;background:#dc2626;z-index:4}
.fail-tag{position:absolute;top:2px;background:#dc2626;color:#fff;font-size:10px;padding:1px 4px;
 border-radius:3px;white-space:nowrap;z-index:5}
#tip{position:fixed;display:none;background:#111;color:#fff;padding:6px 8px;border-radius:4px;
 font-size:12px;max-width:560px;pointer-events:none;white-space:pre-wrap;z-index:9}
.legend{margin:6px 0}
.legend span{display:inline-block;padding:0 6px;margin:2px 6px 2px 0;border-radius:3px;
 border:1px solid #ccc}
.note{color:#666;font-size:12px}
"""

_JS = """
const tip=document.getElementById('tip');
document.querySelectorAll('.op').forEach(e=>{
 e.addEventListener('mousemove',ev=>{tip.style.display='block';tip.textContent=e.dataset.tip;
  const w=tip.offsetWidth,h=tip.offsetHeight;
  tip.style.left=Math.min(ev.clientX+12,innerWidth-w-8)+'px';
  tip.style.top=(ev.clientY+h+20>innerHeight?ev.clientY-h-12:ev.clientY+12)+'px';});
 e.addEventListener('mouseleave',()=>{tip.style.display='none';});
});
document.querySelectorAll('.tl[data-focus]').forEach(t=>{
 t.scrollLeft=Math.max(0,+t.dataset.focus-t.clientWidth/2);});
"""

_LEGEND = (
    '<div class="legend">'
    '<span style="background:#93c5fd">completed op (bar = invoke to ok)</span>'
    '<span style="background:linear-gradient(90deg,#fcd34d,#fff)">unknown outcome (info/pending):'
    " may act any time after its invoke, or never</span>"
    '<span style="background:#ddd">failed (no effect)</span>'
    '<span style="background:#86efac"><b>#k</b> k-th in the longest linearizable prefix</span>'
    '<span style="background:#fecaca;outline:2px solid #dc2626">could go next, but fails</span>'
    '<span style="background:#ede9fe;outline:2px dashed #7c3aed">a later op that the next'
    " step would make unsatisfiable</span>"
    '<span style="background:#dc2626;color:#fff">failing point: an op that must go before'
    " here cannot be placed</span>"
    "</div>"
)


def _label(op: Any) -> str:
    """Short bar text: f(value) -> output, without the key (the partition is named above)."""
    inp = op.input
    arg = "" if inp.value is None else json.dumps(inp.value, default=repr)
    text = f"{inp.f}({arg})"
    if op.status == "ok" and op.output is not None:
        text += f" → {json.dumps(op.output, default=repr)}"
    elif op.status == "ok" and inp.f in ("read", "get"):
        text += " → nil"
    return text


def _timeline(result: Any, events: list[dict[str, Any]]) -> str:
    from treadle.checkers.linearizability.ops import pair_operations

    cex = (result.details or {}).get("counterexample")
    try:
        ops, failed = pair_operations(events)
    except Exception:  # a malformed history still gets its message rendered
        return ""
    lin_pos: dict[int, tuple[int, str]] = {}  # by call position
    stuck: dict[int, str] = {}
    blockers: dict[int, list[str]] = {}
    fail_pos = None
    final_state = None
    key = None
    if cex:
        key = cex.get("partition_key")
        prefix = cex["prefixes"][0] if cex["prefixes"] else {"steps": [], "next": []}
        final_state = prefix.get("final_state")
        by_id = {o["id"]: o for o in cex["operations"]}
        for k, s in enumerate(prefix["steps"]):
            lin_pos[by_id[s["op"]]["call"]] = (k + 1, s["state_before"])
        for x in prefix["next"]:
            o = by_id[x["op"]]
            reason = x["reason"]
            for field in ("blocked_by", "still_illegal"):
                if field in x:
                    b = by_id[x[field]]
                    reason = reason.replace(
                        f"{{op:{x[field]}}}", f"process {b['process']}: {b['describe']}"
                    )
            if "blocked_by" in x:
                b = by_id[x["blocked_by"]]
                blockers.setdefault(b["call"], []).append(
                    f"process {o['process']}: {o['describe']}"
                )
            stuck[o["call"]] = reason
        rets = [
            by_id[i]["ret"] for i in prefix.get("must_precede", []) if by_id[i]["ret"] is not None
        ]
        if rets:
            fail_pos = min(rets)
        shown_calls = {o["call"] for o in cex["operations"]}
        model_partitioned = cex.get("partition_key") is not None
        draw = [o for o in ops if o.call in shown_calls]
        draw += [f for f in failed if not model_partitioned or f.input.key == key]
    else:
        draw = list(ops) + list(failed)
    if not draw:
        return ""
    # x axis: the order of the events the drawn operations use (gaps closed), so that a
    # partition of a long history stays readable; real-time order is what matters
    points = sorted({o.call for o in draw} | {o.ret for o in draw if o.ret is not None})
    if fail_pos is not None:
        points = sorted(set(points) | {fail_pos})
    rank = {p: i for i, p in enumerate(points)}
    step = max(14.0, min(40.0, 1150 / max(len(points), 1)))
    x0 = 104
    end_x = x0 + (len(points) + 1) * step
    width = end_x + 20

    def xof(pos: int) -> float:
        return x0 + rank[pos] * step + step / 2

    def ev_index(pos: int | None) -> str:
        if pos is None:
            return "?"
        return str(events[pos].get("index", pos))

    rows: dict[Any, list[str]] = {}
    for op in draw:
        left = xof(op.call)
        right = xof(op.ret) if op.ret is not None else end_x  # unknown: may act until the end
        w = max(right - left, 6)
        cls = ["op", op.status]
        desc = _label(op)
        tipt = f"process {op.process}: {desc}" + (f"   (key {key})" if key is not None else "")
        tipt += f"\n{op.status}; events {ev_index(op.call)} → {ev_index(op.ret)}"
        badge = ""
        if op.status != "fail" and op.call in lin_pos:
            k, st = lin_pos[op.call]
            cls.append("lin")
            badge = f'<span class="badge">#{k}</span> '
            tipt += f"\nlinearized #{k}; state before: {st}"
        if op.status != "fail" and op.call in stuck:
            cls.append("stuck")
            tipt += f"\ncould go next after the prefix (state {final_state}), but: {stuck[op.call]}"
        if op.status != "fail" and op.call in blockers:
            cls.append("blocker")
            tipt += "\nmade unsatisfiable by placing next: " + "; ".join(blockers[op.call][:5])
        rows.setdefault(op.process, []).append(
            f'<div class="{" ".join(cls)}" style="left:{left:.1f}px;width:{w:.1f}px" '
            f'data-tip="{html.escape(tipt)}">{badge}{html.escape(desc)}</div>'
        )
    out = [
        f'<div class="tl"{f" data-focus={xof(fail_pos):.0f}" if fail_pos is not None else ""}>'
        f'<div class="tlin" style="width:{width:.0f}px">'
    ]
    every = max(1, int(60 // step) + 1)
    ticks = [
        f'<div class="tick" style="left:{xof(p):.1f}px">{html.escape(ev_index(p))}</div>'
        for i, p in enumerate(points)
        if i % every == 0
    ]
    out.append(f'<div class="axis"><span class="lbl">event →</span>{"".join(ticks)}</div>')
    for proc in sorted(rows, key=lambda p: (str(type(p)), p)):
        out.append(f'<div class="row"><span class="lbl">process {html.escape(str(proc))}</span>')
        out.extend(rows[proc])
        out.append("</div>")
    if fail_pos is not None:
        fx = xof(fail_pos)
        out.append(
            f'<div class="fail-line" style="left:{fx:.1f}px" title="failing point"></div>'
            f'<div class="fail-tag" style="left:{fx + 4:.1f}px">stuck in state '
            f"{html.escape(str(final_state))}: the op ending here cannot be placed</div>"
        )
    out.append("</div></div>")
    note = "x axis: the history's events in order (the ones these operations use), not to scale"
    if cex and key is not None:
        note = f"only the failing partition (key {html.escape(str(key))}) is drawn; " + note
    out.append(f'<div class="note">{note}. Hover a bar for the op, its events and the state.</div>')
    return "".join(out)


def render_html(items: list[tuple[str, Any, list[dict[str, Any]]]]) -> str:
    """``items``: (file name, CheckResult, events) per history."""
    from treadle.checkers.linearizability.report import render_text

    body = ["<h1>treadle check: linearizability</h1>", _LEGEND]
    for name, res, events in items:
        body.append(
            f'<h2>{html.escape(name)}: <span class="verdict-{res.verdict}">{res.verdict}</span></h2>'
        )
        cex = (res.details or {}).get("counterexample")
        if cex:
            head = render_text(cex, short=True).split("\n")[0]
            body.append(f'<div class="summary">{html.escape(head)}<ul>')
            by_id = {o["id"]: o for o in cex["operations"]}

            def name(oid: int, by_id: dict = by_id) -> str:
                o = by_id[oid]
                ret = o["ret_index"] if o["ret_index"] is not None else "?"
                return f"process {o['process']}: {o['describe']} (event {o['call_index']}->{ret})"

            for x in cex["prefixes"][0]["next"] if cex["prefixes"] else []:
                reason = x["reason"]
                for field in ("blocked_by", "still_illegal"):
                    if field in x:
                        reason = reason.replace(f"{{op:{x[field]}}}", name(x[field]))
                body.append(f"<li><b>{html.escape(name(x['op']))}</b>: {html.escape(reason)}</li>")
            body.append("</ul></div>")
            body.append(_timeline(res, events))
            body.append(
                "<details><summary>the longest linearizable prefixes, step by step "
                f"(state before each op)</summary><pre>{html.escape(render_text(cex))}</pre>"
                "</details>"
            )
        else:
            body.append(f'<div class="summary">{html.escape(res.message)}</div>')
            body.append(_timeline(res, events))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>treadle check</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}<div id='tip'></div>"
        f"<script>{_JS}</script></body></html>"
    )
