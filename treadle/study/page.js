// treadle study page: data, filters, layout and wiring. chart.js (the sequence chart) and
// panel.js (scrubber and state panel) follow it in the same <script>; page.py appends start().
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
// protocol event kinds of this run: colour and label (treadle/study/marks.py, also the legend)
const MARKS = new Map((D.marks || []).map((m) => [m.type, m]));

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

// called once every script is loaded (page.py appends the call)
function start() {
  buildToolbar();
  wire();
  drawChart();
  setStep(cur);
  document.body.dataset.ready = "1";
  document.body.dataset.renderMs = String(Math.round(performance.now())); // bench/study_page.py
}
