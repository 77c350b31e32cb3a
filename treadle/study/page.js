// treadle study page: sequence chart + step scrubber + verdict, drawn from the embedded data.
"use strict";
const D = JSON.parse(document.getElementById("study-data").textContent);
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const LAST = D.steps.length ? D.steps[D.steps.length - 1].step : 0;
const V = D.verdict;
const VSTEP = V && V.step != null ? V.step : null;
const REFS = (V && V.refs) || { nodes: [], terms: [], indexes: [] };
const REF_NODES = new Set(REFS.nodes || []);
const REF_TERMS = new Set((REFS.terms || []).map(String));
const REF_INDEXES = new Set((REFS.indexes || []).map(String));
const RELATED = new Set(((V && V.related) || []).map((r) => r.step));
// history events of the operations a linearizability verdict names
const REF_OP_EVENTS = new Set(((V && V.related) || []).filter((r) => r.why === "operation").map((r) => r.event));
const stepByNum = new Map(D.steps.map((s) => [s.step, s]));
const msgById = new Map(D.messages.map((m) => [m.id, m]));
const laneIds = D.lanes.map((l) => l.id);
function stepText(s) {
  const m = s.msg != null ? msgById.get(s.msg) : null;
  return m ? `${m.src} → ${m.dst}: ${m.text}` : s.text || s.kind;
}

// ---------------------------------------------------------------- node states per step
// states[s][node]: the fields after step s (unchanged nodes share their object)
const states = [D.initial];
const changed = [{}];
for (let i = 0; i < D.deltas.length; i++) {
  const prev = states[states.length - 1], delta = D.deltas[i], next = Object.assign({}, prev);
  const chg = {};
  for (const [node, d] of Object.entries(delta)) {
    const old = prev[node] || {}, st = Object.assign({}, old);
    for (const [k, v] of Object.entries(d.set)) {
      if (v !== null && typeof v === "object" && "$patch" in v) {
        // a map that changed in a few keys
        const m = Object.assign({}, old[k] || {}, v.$patch);
        for (const g of v.$del) delete m[g];
        st[k] = m;
      } else st[k] = v;
    }
    for (const k of d.gone || []) delete st[k];
    next[node] = st;
    chg[node] = new Set(Object.keys(d.set));
  }
  states.push(next);
  changed.push(chg);
}

// ---------------------------------------------------------------- filters
const hiddenLanes = new Set();
const hiddenKinds = new Set();
let showTimers = true, causalOnly = false, rowH = 18;
const eventsByStep = new Map();
D.events.forEach((e, i) => {
  if (!eventsByStep.has(e._step)) eventsByStep.set(e._step, []);
  eventsByStep.get(e._step).push(i);
});

function causalPast(target) {
  // happens-before (Lamport): the previous step of the same node, and the step that sent the
  // message a delivery takes
  const past = new Set();
  const lastOnLane = new Map(), prevOf = new Map();
  for (const s of D.steps) {
    if (lastOnLane.has(s.node)) prevOf.set(s.step, lastOnLane.get(s.node));
    lastOnLane.set(s.node, s.step);
  }
  const todo = [target];
  while (todo.length) {
    const k = todo.pop();
    if (past.has(k) || k <= 0) continue;
    past.add(k);
    if (prevOf.has(k)) todo.push(prevOf.get(k));
    const s = stepByNum.get(k);
    if (s && s.msg != null) {
      const m = msgById.get(s.msg);
      if (m) todo.push(m.sent);
    }
  }
  past.add(0);
  return past;
}
const CAUSAL = VSTEP != null ? causalPast(VSTEP) : null;

function stepVisible(s) {
  if (s.kind === "partition" || s.kind === "heal") return true; // drawn as bands: kept
  if (hiddenLanes.has(s.node)) return false;
  if (s.kind === "timer" && !showTimers) return false;
  if (s.msg != null) {
    const m = msgById.get(s.msg);
    if (m && (hiddenKinds.has(m.kind) || hiddenLanes.has(m.src))) {
      // a hidden kind's delivery stays only if it made the node record something
      const evs = eventsByStep.get(s.step) || [];
      if (!evs.length || hiddenKinds.has(m.kind)) return false;
    }
  }
  if (causalOnly && CAUSAL && !CAUSAL.has(s.step)) return false;
  return true;
}

// ---------------------------------------------------------------- layout
let visLanes = [], laneX = new Map(), rowOfStep = new Map(), visSteps = [], colW = 90;
function layout() {
  visLanes = D.lanes.filter((l) => !hiddenLanes.has(l.id));
  // the lanes share what the step texts (at least ~420px) leave of the chart's width
  const avail = ($("chartbox").clientWidth || 1000) - 440;
  colW = Math.max(44, Math.min(96, Math.floor(avail / Math.max(visLanes.length, 1))));
  laneX = new Map(visLanes.map((l, i) => [l.id, 20 + i * colW + colW / 2]));
  visSteps = [0].concat(D.steps.filter(stepVisible).map((s) => s.step));
  rowOfStep = new Map(visSteps.map((s, i) => [s, i]));
}
function rowOf(step) {
  // the row of a step, or of the last visible step before it
  if (rowOfStep.has(step)) return rowOfStep.get(step);
  let lo = 0, hi = visSteps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (visSteps[mid] <= step) lo = mid; else hi = mid - 1;
  }
  return lo;
}
const yOf = (step) => rowOf(step) * rowH + rowH / 2;

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function tipOn(node, text) { node.dataset.tip = text; }

const KIND_COLORS = ["#2563eb", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#c2410c",
  "#4f46e5", "#0d9488", "#9333ea", "#be123c", "#15803d"];
const kinds = [...new Set(D.messages.map((m) => m.kind))].sort();
const kindColor = new Map(kinds.map((k, i) => [k, KIND_COLORS[i % KIND_COLORS.length]]));

function opLabel(o) {
  const arg = [o.key, o.value].filter((x) => x !== null && x !== undefined).map((x) => JSON.stringify(x)).join(" ");
  let t = `${o.f}(${arg})`;
  if (o.status === "ok") t += " → " + JSON.stringify(o.output);
  return t;
}
function eventText(e) {
  const skip = new Set(["index", "time", "node", "process", "type", "_step", "_lane"]);
  const rest = Object.entries(e).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${e.type} ${rest.join(" ")}`.trim();
}
const MARK_COLORS = { "became-leader": "#ca8a04", "became-candidate": "#a16207", commit: "#15803d",
  apply: "#16a34a", "stepped-down": "#6b7280", truncate: "#dc2626", execute: "#15803d",
  "view-change": "#9333ea", "new-view": "#7e22ce" };

// ---------------------------------------------------------------- the chart
function drawChart() {
  layout();
  const width = 20 + visLanes.length * colW + 10;
  const height = visSteps.length * rowH + 20;
  const chart = $("chart");
  chart.style.height = height + "px";
  const head = $("lanehead");
  head.innerHTML = "";
  for (const l of visLanes) {
    const d = document.createElement("div");
    d.textContent = l.id;
    d.className = l.kind + (REF_NODES.has(l.id) ? " ref" : "");
    d.style.left = laneX.get(l.id) - colW / 2 + 4 + "px";
    d.style.width = colW - 8 + "px";
    d.dataset.lane = l.id;
    head.appendChild(d);
  }
  const svg = el("svg", { width, height, id: "chartsvg" });
  const defs = el("defs", {}, svg);
  for (const [k, c] of [["ok", "#64748b"], ["bad", "#b45309"], ["dup", "#7c3aed"]].concat(kinds.map((k, i) => ["k" + i, kindColor.get(k)]))) {
    const m = el("marker", { id: "ah-" + k, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: c }, m);
  }
  const hatch = el("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
  el("rect", { width: 6, height: 6, fill: "#e5e7eb" }, hatch);
  el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9ca3af", "stroke-width": 3 }, hatch);
  const grad = el("linearGradient", { id: "infofade", x1: 0, y1: 0, x2: 0, y2: 1 }, defs);
  el("stop", { offset: "0", "stop-color": "#fcd34d" }, grad);
  el("stop", { offset: "1", "stop-color": "#fffbeb" }, grad);

  // partitions: a band over every lane, each side tinted
  for (const p of D.partitions) {
    const y1 = yOf(p.from) - rowH / 2, y2 = yOf(p.to) + rowH / 2;
    const band = el("rect", { x: 0, y: y1, width, height: Math.max(y2 - y1, 2), fill: "#fff7ed", class: "partition" }, svg);
    const sides = p.sides.map((s) => "{" + s.join(", ") + "}").join(" | ");
    tipOn(band, `partition ${sides}\nsteps ${p.from} → ${p.open ? "end (never healed)" : p.to}`);
    p.sides.forEach((side, i) => {
      for (const n of side) {
        if (!laneX.has(n)) continue;
        el("rect", { x: laneX.get(n) - colW / 2 + 2, y: y1, width: colW - 4, height: Math.max(y2 - y1, 2), fill: i === 0 ? "#dbeafe" : "#ffedd5", opacity: 0.7 }, svg);
      }
    });
    const t = el("text", { x: 4, y: y1 + 11, "font-size": 10, fill: "#9a3412" }, svg);
    t.textContent = "partition " + sides;
  }
  // lanes
  for (const l of visLanes) {
    const x = laneX.get(l.id);
    el("line", { x1: x, y1: 0, x2: x, y2: height, stroke: l.kind === "client" ? "#bfdbfe" : "#d1d5db", "stroke-width": 2 }, svg);
  }
  // crash to restart: the lane shaded
  for (const s of D.down) {
    if (!laneX.has(s.node)) continue;
    const y1 = yOf(s.from), y2 = yOf(s.to);
    const r = el("rect", { x: laneX.get(s.node) - 9, y: y1, width: 18, height: Math.max(y2 - y1, 3), fill: "url(#hatch)", class: "down" }, svg);
    tipOn(r, `${s.node} down: crashed at step ${s.from}, ${s.open ? "never restarted" : "restarted at step " + s.to}`);
  }
  // current step and violation lines
  el("rect", { id: "curbar", x: 0, y: 0, width, height: rowH, fill: "#fde68a", opacity: 0.55 }, svg);
  if (VSTEP != null) {
    const y = yOf(VSTEP);
    el("line", { x1: 0, y1: y, x2: width, y2: y, stroke: "#b91c1c", "stroke-width": 2, class: "violation-line" }, svg);
  }
  // client operations: a bar from invoke to completion, beside the client's lane
  for (const o of D.operations) {
    if (!laneX.has(o.lane)) continue;
    const x = laneX.get(o.lane) + 6;
    const y1 = yOf(o.invoke) - 5, y2 = o.end != null ? yOf(o.end) + 5 : height - 4;
    const fill = { ok: "#93c5fd", fail: "url(#hatch)", info: "url(#infofade)", pending: "url(#infofade)" }[o.status];
    const named = REF_OP_EVENTS.has(o.invoke_event) || REF_OP_EVENTS.has(o.end_event);
    const stroke = named ? "#b91c1c" : o.status === "ok" ? "#60a5fa" : o.status === "fail" ? "#9ca3af" : "#f5c542";
    const r = el("rect", { x, y: y1, width: 9, height: Math.max(y2 - y1, 6), rx: 2, fill, stroke, "stroke-width": named ? 2.5 : 1, class: "cop cop-" + o.status + (named ? " ref" : "") }, svg);
    r.dataset.step = o.invoke;
    tipOn(r, `${o.process}: ${opLabel(o)}\n${o.status}; invoked at step ${o.invoke}, ` + (o.end != null ? `${o.status} at step ${o.end}` : "never completed"));
  }
  // messages: an arrow from the send step to the step that took it
  const wantArrows = [];
  for (const m of D.messages) {
    if (!laneX.has(m.src) || !laneX.has(m.dst) || hiddenKinds.has(m.kind)) continue;
    wantArrows.push(m);
  }
  for (const m of wantArrows) {
    const x1 = laneX.get(m.src), x2 = laneX.get(m.dst);
    const y1 = yOf(m.sent);
    const lost = m.fate.startsWith("lost") || m.fate === "dropped";
    const flying = m.taken == null;
    const y2 = flying ? height - 6 : yOf(m.taken);
    const color = lost ? "#b45309" : m.dup_of != null ? "#7c3aed" : kindColor.get(m.kind);
    const g = el("g", { class: "msg" + (lost ? " lost" : "") + (m.dup_of != null ? " dup" : "") + (flying ? " flying" : "") }, svg);
    const ax = x2 === x1 ? x1 + 20 : x2;
    const line = el("line", { x1, y1, x2: ax, y2, stroke: color, "stroke-width": 1.3, opacity: flying ? 0.5 : 0.85 }, g);
    if (lost || flying || m.dup_of != null) line.setAttribute("stroke-dasharray", lost ? "4 3" : "2 3");
    if (lost) {
      el("path", { d: `M${ax - 4},${y2 - 4} L${ax + 4},${y2 + 4} M${ax - 4},${y2 + 4} L${ax + 4},${y2 - 4}`, stroke: "#b91c1c", "stroke-width": 2 }, g);
    } else if (!flying) {
      line.setAttribute("marker-end", m.dup_of != null ? "url(#ah-dup)" : `url(#ah-k${kinds.indexOf(m.kind)})`);
    }
    // a wide invisible twin makes thin arrows easy to hover and click
    const hit = el("line", { x1, y1, x2: ax, y2, stroke: "transparent", "stroke-width": 7 }, g);
    hit.dataset.step = m.taken != null ? m.taken : m.sent;
    const fate = flying ? "still in flight at the end" : `${m.fate} at step ${m.taken}`;
    tipOn(hit, `${m.src} → ${m.dst}: ${m.text}\nsent at step ${m.sent} (time ${m.sent_time}, due ${m.due}); ${fate}` + (m.dup_of != null ? `\na duplicate made by the network of message #${m.dup_of}` : ""));
  }
  // timers fired, and protocol events as marks
  for (const t of D.timers) {
    if (!showTimers || t.fate !== "fired" || !laneX.has(t.node) || !rowOfStep.has(t.end)) continue;
    const x = laneX.get(t.node), y = yOf(t.end);
    const c = el("circle", { cx: x, cy: y, r: 4, fill: "#fff", stroke: "#0f766e", "stroke-width": 1.5, class: "timer" }, svg);
    c.dataset.step = t.end;
    tipOn(c, `timer ${JSON.stringify(t.name)} fired at ${t.node}, step ${t.end}\nset at step ${t.set}, due time ${t.due}`);
  }
  D.events.forEach((e, i) => {
    if (e.process !== undefined || ["crash", "restart", "partition", "heal"].includes(e.type)) return;
    const lane = e._lane;
    if (!laneX.has(lane) || !rowOfStep.has(e._step)) return;
    const x = laneX.get(lane) - 10, y = yOf(e._step);
    const color = MARK_COLORS[e.type] || "#0e7490";
    const d = el("path", { d: `M${x},${y - 5} L${x + 5},${y} L${x},${y + 5} L${x - 5},${y} z`, fill: color, class: "mark" + (RELATED.has(e._step) ? " rel" : "") }, svg);
    d.dataset.step = e._step;
    tipOn(d, `${lane} ${eventText(e)}\nstep ${e._step}, history event ${e.index}`);
    if (e.type === "became-leader") {
      const t = el("text", { x: x - 7, y: y + 3, "font-size": 9, "text-anchor": "end", fill: color, "font-weight": 700 }, svg);
      t.textContent = "L" + (e.term != null ? e.term : "");
    }
  });
  // the rows: one per visible step, the readable log of the run
  const rows = document.createElement("div");
  rows.id = "rows";
  rows.style.left = width + "px";
  for (let i = 0; i < visSteps.length; i++) {
    const sn = visSteps[i], s = stepByNum.get(sn);
    const r = document.createElement("div");
    r.className = "r";
    r.style.top = i * rowH + "px";
    r.style.height = r.style.lineHeight = rowH + "px";
    r.dataset.step = sn;
    let text = sn === 0 ? "start " + laneIds.join(", ") : stepText(s);
    if (s) {
      if (s.fate && s.fate !== "delivered") text = `[${s.fate}] ` + text;
      if (["crash", "restart", "partition", "heal"].includes(s.kind)) r.classList.add("fault");
      if (s.fate && (s.fate.startsWith("lost") || s.fate === "dropped")) r.classList.add("lost");
    }
    // a history's rows are its events already: no need to list them again
    const evs = D.meta.kind === "history" ? [] : (eventsByStep.get(sn) || []).map((j) => D.events[j]).filter((e) => !["crash", "restart", "partition", "heal"].includes(e.type));
    const evText = evs.map((e) => `${e.process || e.node}: ${eventText(e)}`).join("; ");
    r.innerHTML = `<span class="n">${sn}</span><span class="t">t${s ? s.time : 0}</span>`;
    r.appendChild(document.createTextNode(text));
    if (evText) {
      const sp = document.createElement("span");
      sp.className = "ev";
      sp.textContent = "  ⟶ " + evText;
      r.appendChild(sp);
    }
    if (sn === VSTEP) r.classList.add("viol");
    if (RELATED.has(sn)) r.classList.add("rel");
    tipOn(r, `step ${sn}${s ? ", time " + s.time : ""}: ${text}` + (evText ? "\nrecorded: " + evText : "") + (sn === VSTEP ? `\n✖ ${V.property} fails here` : ""));
    rows.appendChild(r);
  }
  rows.style.width = "2400px";
  chart.innerHTML = "";
  chart.appendChild(svg);
  chart.appendChild(rows);
  $("chartbox").style.setProperty("--row", rowH + "px");
  setStep(cur, true); // rows came or went: bring the current step back into view
}

// ---------------------------------------------------------------- the scrubber and state panel
let cur = VSTEP != null ? VSTEP : 0;
function fmtVal(k, v, node) {
  const hitNode = REF_NODES.has(node);
  if (v !== null && typeof v === "object") {
    const box = document.createElement("span");
    const entries = Array.isArray(v) ? v.map((x, i) => [null, x]) : Object.entries(v);
    if (!entries.length) box.textContent = Array.isArray(v) ? "[]" : "{}";
    for (const [kk, x] of entries) {
      const c = document.createElement("span");
      c.className = "chip";
      if (kk !== null) {
        const b = document.createElement("b");
        b.textContent = kk + " ";
        c.appendChild(b);
        if (hitNode && REF_INDEXES.has(kk)) c.classList.add("hit");
      }
      c.appendChild(document.createTextNode(typeof x === "string" ? x : JSON.stringify(x)));
      box.appendChild(c);
    }
    return box;
  }
  const s = document.createElement("span");
  s.textContent = typeof v === "string" ? v : JSON.stringify(v);
  if (hitNode && /term|view/.test(k) && REF_TERMS.has(String(v))) s.className = "hit";
  return s;
}
function renderPanel() {
  const st = states[Math.min(cur, states.length - 1)] || {};
  const chg = changed[Math.min(cur, changed.length - 1)] || {};
  const s = stepByNum.get(cur);
  $("slider").value = cur;
  const line = $("stepline");
  line.innerHTML = "";
  line.appendChild(document.createTextNode(`step ${cur} / ${LAST}` + (s ? ` · time ${s.time} · ${s.node}` : " · start")));
  if (cur === VSTEP) {
    const b = document.createElement("span");
    b.className = "viol";
    b.textContent = ` · ✖ ${V.property} fails here`;
    line.appendChild(b);
  }
  const evs = (eventsByStep.get(cur) || []).map((j) => D.events[j]);
  $("stepdesc").textContent = (cur === 0 ? "start: " + laneIds.join(", ") : (s.fate ? `[${s.fate}] ` : "") + stepText(s)) +
    (evs.length ? "\nrecorded: " + evs.map((e) => `${e.process || e.node}: ${eventText(e)}`).join("\n          ") : "");
  const box = $("states");
  box.innerHTML = "";
  for (const l of D.lanes) {
    if (hiddenLanes.has(l.id)) continue;
    const fields = st[l.id] || {};
    const card = document.createElement("div");
    const isDown = fields.status === "down";
    card.className = "card" + (REF_NODES.has(l.id) ? " ref" : "") + (isDown ? " down" : "");
    card.dataset.node = l.id;
    const h = document.createElement("h3");
    h.textContent = l.id;
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = l.kind + (isDown ? " · DOWN" : "") + (chg[l.id] ? " · changed" : "");
    h.appendChild(badge);
    card.appendChild(h);
    const tb = document.createElement("table");
    for (const [k, v] of Object.entries(fields)) {
      const tr = document.createElement("tr");
      tr.dataset.field = k;
      if (chg[l.id] && chg[l.id].has(k) && cur > 0) tr.className = "chg";
      const a = document.createElement("td"); a.className = "k"; a.textContent = k;
      const b = document.createElement("td"); b.appendChild(fmtVal(k, v, l.id));
      tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
    }
    card.appendChild(tb);
    box.appendChild(card);
  }
  // what is pending after this step
  const pm = $("pending"), pt = $("timers");
  pm.innerHTML = ""; pt.innerHTML = "";
  let nm = 0, nt = 0;
  for (const m of D.messages) {
    if (m.sent > cur || (m.taken != null && m.taken <= cur)) continue;
    if (hiddenLanes.has(m.src) || hiddenLanes.has(m.dst) || hiddenKinds.has(m.kind)) continue;
    nm++;
    const li = document.createElement("li");
    li.textContent = `${m.src} → ${m.dst}: ${m.text}  (due t${m.due}; ${m.taken != null ? m.fate + " at step " + m.taken : "never taken"})`;
    pm.appendChild(li);
  }
  for (const t of D.timers) {
    if (t.set > cur || (t.end != null && t.end <= cur) || hiddenLanes.has(t.node)) continue;
    nt++;
    const li = document.createElement("li");
    li.textContent = `${t.node} ${JSON.stringify(t.name)} due t${t.due}` + (t.end != null ? ` (${t.fate} at step ${t.end})` : "");
    pt.appendChild(li);
  }
  $("npending").textContent = nm;
  $("ntimers").textContent = nt;
  // keep the card of the node that took this step in view
  const card = s && box.querySelector(`.card[data-node="${CSS.escape(s.node)}"]`);
  if (card) {
    const panel = $("panel"), head = $("panelhead").offsetHeight;
    const top = card.offsetTop - panel.offsetTop;
    if (top - head < panel.scrollTop || top + Math.min(card.offsetHeight, 300) > panel.scrollTop + panel.clientHeight)
      panel.scrollTop = Math.max(0, top - head - 8);
  }
}
function setStep(n, scroll = true) {
  cur = Math.max(0, Math.min(LAST, n | 0));
  const bar = $("curbar");
  if (bar) bar.setAttribute("y", rowOf(cur) * rowH);
  document.querySelectorAll(".r.cur").forEach((r) => r.classList.remove("cur"));
  const row = document.querySelector(`.r[data-step="${cur}"]`);
  if (row) row.classList.add("cur");
  if (scroll) {
    const box = $("chartbox"), y = rowOf(cur) * rowH;
    if (y < box.scrollTop + 40 || y > box.scrollTop + box.clientHeight - 60) box.scrollTop = y - box.clientHeight / 2;
  }
  renderPanel();
}
function stepBy(d) {
  // n/p move through the visible steps
  const i = rowOf(cur) + d;
  if (i >= 0 && i < visSteps.length) setStep(visSteps[i]);
}

// ---------------------------------------------------------------- wiring
function buildToolbar() {
  const lanesF = $("f-lanes");
  for (const l of D.lanes) {
    const lab = document.createElement("label");
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = true; cb.dataset.lane = l.id;
    cb.addEventListener("change", () => { cb.checked ? hiddenLanes.delete(l.id) : hiddenLanes.add(l.id); drawChart(); });
    lab.appendChild(cb); lab.appendChild(document.createTextNode(l.id));
    lanesF.appendChild(lab);
  }
  const kindsF = $("f-kinds");
  const counts = new Map();
  for (const m of D.messages) counts.set(m.kind, (counts.get(m.kind) || 0) + 1);
  for (const k of kinds) {
    const lab = document.createElement("label");
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = true; cb.dataset.kind = k;
    cb.addEventListener("change", () => { cb.checked ? hiddenKinds.delete(k) : hiddenKinds.add(k); drawChart(); });
    const sw = document.createElement("span");
    sw.style.cssText = `display:inline-block;width:10px;height:3px;vertical-align:middle;margin:0 3px;background:${kindColor.get(k)}`;
    lab.appendChild(cb); lab.appendChild(sw); lab.appendChild(document.createTextNode(`${k} (${counts.get(k)})`));
    kindsF.appendChild(lab);
  }
  $("f-timers").addEventListener("change", (e) => { showTimers = e.target.checked; drawChart(); });
  const causal = $("f-causal");
  if (CAUSAL) causal.addEventListener("change", (e) => { causalOnly = e.target.checked; drawChart(); });
  else causal.disabled = true;
  $("f-zoom").addEventListener("input", (e) => { rowH = +e.target.value; drawChart(); });
}
function wire() {
  const slider = $("slider");
  slider.max = LAST;
  slider.addEventListener("input", () => setStep(+slider.value));
  const ticks = $("ticks");
  const addTick = (s, cls, title) => {
    const t = document.createElement("span");
    t.className = cls; t.title = title;
    t.style.left = (LAST ? (100 * s) / LAST : 0) + "%";
    ticks.appendChild(t);
  };
  for (const r of (V && V.related) || []) addTick(r.step, "rel", `step ${r.step}: ${r.text}`);
  if (VSTEP != null) addTick(VSTEP, "v", `step ${VSTEP}: ${V.property} fails`);
  $("prev").addEventListener("click", () => stepBy(-1));
  $("next").addEventListener("click", () => stepBy(1));
  const gv = $("goviol");
  if (VSTEP != null) gv.addEventListener("click", () => setStep(VSTEP)); else gv.disabled = true;
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "checkbox" && e.target.type !== "range") return;
    if (e.key === "n" || e.key === "j") { stepBy(1); e.preventDefault(); }
    else if (e.key === "p" || e.key === "k") { stepBy(-1); e.preventDefault(); }
    else if (e.key === "v" && VSTEP != null) setStep(VSTEP);
  });
  document.addEventListener("click", (e) => {
    const t = e.target.closest("[data-step]");
    if (t && !t.closest("#panel")) setStep(+t.dataset.step, !t.closest("#chart"));
    else if (t && t.tagName === "A") setStep(+t.dataset.step);
  });
  const tip = $("tipbox");
  document.addEventListener("mousemove", (e) => {
    const t = e.target.closest && e.target.closest("[data-tip]");
    if (!t) { tip.style.display = "none"; return; }
    tip.style.display = "block";
    tip.textContent = t.dataset.tip;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(e.clientX + 14, innerWidth - w - 8) + "px";
    tip.style.top = (e.clientY + h + 24 > innerHeight ? e.clientY - h - 10 : e.clientY + 14) + "px";
  });
  const copy = $("copy");
  copy.addEventListener("click", () => {
    const text = $("replaycmd").textContent;
    const done = (ok) => {
      copy.textContent = ok ? "copied" : "select and copy";
      setTimeout(() => (copy.textContent = "copy"), 1500);
    };
    // select-and-copy works from file:// everywhere; the async clipboard API (which may ask
    // for a permission) only if it did not
    if (selectCopy(text)) done(true);
    else if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => done(true), () => done(false));
    else done(false);
  });
}
function selectCopy(text) {
  const ta = document.createElement("textarea");
  ta.value = text; ta.style.position = "fixed"; ta.style.opacity = "0";
  document.body.appendChild(ta); ta.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  ta.remove();
  return ok;
}
buildToolbar();
wire();
drawChart();
setStep(cur);
document.body.dataset.ready = "1";
document.body.dataset.renderMs = String(Math.round(performance.now())); // bench/study_page.py
