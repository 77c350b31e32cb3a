"""The study page: ONE self-contained HTML file (inline CSS, JS and data; no network; works from
file://) to walk through a run.

The header (system, bug, strategy, seed, config, digest, lengths, the replay command) and the
verdict are written here; the sequence chart, the step scrubber, the state panel and the filters
are drawn by ``page.js`` from the embedded data (:mod:`treadle.study.extract`), so hiding a lane
or collapsing heartbeats redraws without a server.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from treadle.checkers.result import CheckResult
from treadle.study.marks import legend_html, protocol_marks


def _asset(name: str) -> str:
    return resources.files("treadle.study").joinpath(name).read_text(encoding="utf-8")


def _scripts() -> str:
    """The page's JavaScript: one script, so the three files share their top-level names."""
    parts = [_asset(name) for name in ("page.js", "chart.js", "panel.js")]
    return "\n".join(parts) + "\nstart();\n"


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no "</" can end the element early."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=repr)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _step_link(step: int | None, label: str | None = None) -> str:
    if step is None:
        return ""
    return f'<a class="step" data-step="{step}">{html.escape(label or f"step {step}")}</a>'


def _marked(message: str, refs: dict[str, list[Any]]) -> str:
    """The verdict's text with the nodes, terms and indexes it names marked."""
    text = html.escape(message)
    words = [re.escape(html.escape(n)) for n in refs.get("nodes", [])]
    words += [rf"term {t}" for t in refs.get("terms", [])]
    words += [rf"index {i}" for i in refs.get("indexes", [])]
    if not words:
        return text
    pattern = re.compile(
        r"(?<![\w-])(" + "|".join(sorted(words, key=len, reverse=True)) + r")(?![\w-])"
    )
    return pattern.sub(r"<mark>\1</mark>", text)


def _header(meta: dict[str, Any], verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        head = '<span class="good">no property violated</span>'
    elif verdict["verdict"] == "unknown":
        head = f'<span class="unk">unknown: {html.escape(verdict["property"])}</span>'
    else:
        at = f" at step {verdict['step']}" if verdict.get("step") is not None else ""
        head = f'<span class="bad">{html.escape(verdict["property"])} violated{at}</span>'
    shrunk = meta.get("shrunk_from")
    lengths = f"{meta['steps']} steps, {meta['choices']} choices, {meta['events']} events"
    if shrunk:
        lengths += f" (shrunk from {shrunk.get('steps')} steps, {shrunk.get('choices')} choices)"
    strategy = meta.get("strategy") or "?"
    if meta.get("member"):
        strategy += f" ({meta['member']})"
    items = [
        ("system", f"{meta['system']} v{meta.get('system_version') or '?'}"),
        ("bug", meta.get("bug") or "none"),
        ("strategy", strategy),
        ("seed", meta.get("seed")),
        ("length", lengths),
    ]
    if meta.get("kind") == "history":
        model = (meta.get("config") or {}).get("model") or "?"
        items = [
            ("history", meta["trace"]),
            ("model", model),
            ("length", f"{meta['events']} events"),
        ]
    cells = "".join(f"<span>{k} <b>{html.escape(str(v))}</b></span>" for k, v in items)
    digest = meta.get("history_sha256", "")
    cells += f'<span>history sha256 <code title="{html.escape(digest)}">{html.escape(digest[:16])}…</code></span>'
    config = html.escape(json.dumps(meta.get("config", {}), indent=1, sort_keys=True))
    return (
        f"<header><h1>treadle · {html.escape(str(meta['system']))}: {head}</h1>"
        f'<div class="meta">{cells}</div>'
        f'<div class="cmd">{"check" if meta.get("kind") == "history" else "replay"}: <code id="replaycmd">{html.escape(meta["replay"])}</code> '
        f'<button id="copy" type="button">copy</button> <span class="note">trace '
        f"{html.escape(meta['trace'])}</span></div>"
        f'<details class="cfg"><summary>config ({len(meta.get("config", {}))} keys)</summary>'
        f"<pre>{config}</pre></details></header>"
    )


_WHY = {
    "event": "named by the verdict",
    "operation": "an operation that cannot be linearized",
    "names": "a named node, with a named term or index",
    "commits": "a named node commits up to this index, in a named term",
}


def _verdict(verdict: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    if verdict is None:
        if meta.get("kind") == "history" and not (meta.get("config") or {}).get("model"):
            return (
                '<div id="verdict" class="ok">Not checked here: <code>treadle check '
                f"{html.escape(meta['trace'])} --model M --html OUT</code> draws it with its "
                "verdict.</div>"
            )
        what = "The history" if meta.get("kind") == "history" else "The replay"
        return f'<div id="verdict" class="ok">{what} violates no property.</div>'
    if verdict["verdict"] == "unknown":
        return (
            f'<div id="verdict" class="unknown"><span class="prop">unknown: '
            f"{html.escape(verdict['property'])}</span>: {html.escape(verdict['message'])}</div>"
        )
    refs = verdict.get("refs") or {}
    where = ""
    if verdict.get("step") is not None:
        link = _step_link(verdict["step"])
        if verdict.get("final"):
            where = f" (checked at the end of the run; the step it is about: {link}, key v)"
        else:
            where = f" (fails after {link}, key v)"
    rows = []
    for r in verdict.get("related") or []:
        strong = r["why"] in ("commits", "event")  # what the verdict is most about
        rows.append(
            f"<li{' class=key' if strong else ''}>{_step_link(r['step'])} {html.escape(r['lane'])}: "
            f"<code>{html.escape(r['text'])}</code> <span class='note'>— "
            f"{html.escape(_WHY.get(r['why'], r['why']))}</span></li>"
        )
    related = ""
    if rows:
        related = (
            "<div class='note'>events it names (marked on the chart and the scrubber):</div>"
            f"<ul>{''.join(rows)}</ul>"
        )
    return (
        f'<div id="verdict"><span class="prop">✖ {html.escape(verdict["property"])}</span>'
        f"{where}: {_marked(verdict['message'], refs)}{related}</div>"
    )


_TOOLBAR = """
<div id="toolbar">
 <fieldset id="f-lanes"><legend>lanes</legend></fieldset>
 <fieldset id="f-kinds"><legend>messages</legend></fieldset>
 <fieldset><label><input type="checkbox" id="f-timers" checked> timers</label>
 <label title="only the steps that happen-before the violation (Lamport): earlier steps of the
 same node, and the sends of the messages delivered"><input type="checkbox" id="f-causal"> only the
 causal past of the violation</label>
 <label>row <input type="range" id="f-zoom" min="12" max="30" value="18" style="width:70px"></label>
 </fieldset>
</div>
"""

_LEGEND = """
<div class="st-legend note">
 <span><svg width="26" height="8"><line x1="0" y1="4" x2="24" y2="4" stroke="#2563eb"/></svg> message
 (send step → step it was taken)</span>
 <span><svg width="26" height="8"><line x1="0" y1="4" x2="20" y2="4" stroke="#b45309"
 stroke-dasharray="4 3"/><path d="M18,0 L24,8 M18,8 L24,0" stroke="#b91c1c" stroke-width="2"/></svg>
 lost (down, partitioned, dropped)</span>
 <span><svg width="26" height="8"><line x1="0" y1="4" x2="24" y2="4" stroke="#7c3aed"
 stroke-dasharray="2 3"/></svg> network duplicate</span>
 <span><svg width="26" height="8"><line x1="0" y1="4" x2="24" y2="4" stroke="#64748b"
 stroke-dasharray="2 3" opacity=".5"/></svg> in flight at the end</span>
 <span><svg width="10" height="10"><circle cx="5" cy="5" r="4" fill="#fff" stroke="#0f766e"
 stroke-width="1.5"/></svg> timer fired</span>
 {marks}
 <span><svg width="14" height="10"><rect width="14" height="10" fill="#e5e7eb"/></svg> node down</span>
 <span><svg width="14" height="10"><rect width="7" height="10" fill="#dbeafe"/><rect x="7"
 width="7" height="10" fill="#ffedd5"/></svg> partition sides</span>
 <span><svg width="8" height="14"><rect width="8" height="14" fill="#93c5fd"/></svg> client op ok;
 yellow fading: info/pending; hatched: fail</span>
 <span><svg width="26" height="8"><line x1="0" y1="4" x2="24" y2="4" stroke="#b91c1c"
 stroke-width="2"/></svg> the violation</span>
 <span>keys: <b>n</b>/<b>p</b> next/previous step, <b>v</b> the violation; click any event</span>
</div>
"""

_PANEL = """
<div id="panel">
 <div id="panelhead">
 <div id="scrub"><input type="range" id="slider" min="0" value="0"><div id="ticks"></div></div>
 <div><button id="prev" type="button">◀ p</button> <button id="next" type="button">n ▶</button>
 <button id="goviol" type="button">violation (v)</button></div>
 <div id="stepline"></div>
 <div id="stepdesc"></div>
 <div class="note">state after this step; fields that changed at it are highlighted</div>
 </div>
 <div id="states"></div>
 <h2>messages in flight (<span id="npending">0</span>)</h2><ul class="pend" id="pending"></ul>
 <h2>timers set (<span id="ntimers">0</span>)</h2><ul class="pend" id="timers"></ul>
</div>
"""


def _lin_section(verdict: dict[str, Any] | None, raw: CheckResult | None, events: list) -> str:
    """For a history property: the linearizability view (partial linearization, failing point)
    with every operation of the counterexample linked to the steps of its events."""
    if raw is None or not isinstance((raw.details or {}).get("counterexample"), dict):
        return ""
    from treadle.checkers.linearizability.html import _CSS as LIN_CSS
    from treadle.checkers.linearizability.html import _LEGEND as LIN_LEGEND
    from treadle.checkers.linearizability.html import _timeline
    from treadle.checkers.linearizability.report import render_text

    cex = raw.details["counterexample"]
    plain = [{k: v for k, v in e.items() if not k.startswith("_")} for e in events]
    from treadle.study.extract import op_position

    positions = {e.get("index", i): i for i, e in enumerate(events)}
    rows = []
    for o in cex.get("operations", []):

        def at(end: str, o: dict[str, Any] = o) -> str:
            pos = op_position(o, end, positions)
            return "never" if pos is None else _step_link(events[pos]["_step"])

        rows.append(
            f"<tr><td>{html.escape(str(o['process']))}</td><td>{html.escape(o['describe'])}</td>"
            f"<td>{html.escape(o['status'])}</td><td>{at('call')}</td><td>{at('ret')}</td></tr>"
        )
    scoped = LIN_CSS.replace("body{", "#lin-body{").replace("h1{", "#lin h1{")
    return (
        f"<details id='lin' open><summary>linearizability view: the longest linearizable "
        "prefix and the failing point (operations link to their steps)</summary>"
        f"<style>{scoped}</style>"
        f"<div class='summary'>{html.escape(render_text(cex, short=True))}</div>{LIN_LEGEND}"
        f"{_timeline(raw, plain)}"
        "<details open><summary>the counterexample's operations and their steps</summary>"
        "<table class='ops'><tr><th>process</th><th>operation</th><th>status</th>"
        f"<th>invoked</th><th>completed</th></tr>{''.join(rows)}</table></details>"
        f"<details><summary>the longest linearizable prefixes</summary><pre>"
        f"{html.escape(render_text(cex))}</pre></details></details>"
    )


def render_page(
    data: dict[str, Any], raw_verdict: CheckResult | None = None, title: str | None = None
) -> str:
    marks = protocol_marks(data["events"])
    data = {**data, "marks": marks}  # the chart draws them as the legend says
    meta = data["meta"]
    verdict = data.get("verdict")
    title = title or f"treadle · {meta['system']} {meta.get('bug') or ''} seed {meta.get('seed')}"
    body = [
        _header(meta, verdict),
        _verdict(verdict, meta),
        _TOOLBAR,
        _LEGEND.replace("{marks}", legend_html(marks)),
        '<div id="main"><div id="chartbox"><div id="lanehead"></div><div id="chart"></div></div>',
        _PANEL,
        "</div>",
        _lin_section(verdict, raw_verdict, data["events"]),
        '<div id="tipbox"></div>',
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{html.escape(title)}</title><style>{_asset('page.css')}</style></head><body>"
        + "".join(body)
        + f'<script type="application/json" id="study-data">{_script_json(data)}</script>'
        f"<script>{_scripts()}</script></body></html>"
    )
