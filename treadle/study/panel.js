// treadle study page: the step scrubber and the state panel.
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
