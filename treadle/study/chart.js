// treadle study page: the sequence chart (a lane per node and client, a row per visible step).
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
    const mark = MARKS.get(e.type) || { color: "#0e7490", label: null };
    const color = mark.color;
    const d = el("path", { d: `M${x},${y - 5} L${x + 5},${y} L${x},${y + 5} L${x - 5},${y} z`, fill: color, class: "mark" + (RELATED.has(e._step) ? " rel" : "") }, svg);
    d.dataset.step = e._step;
    d.dataset.kind = e.type;
    tipOn(d, `${lane} ${eventText(e)}\nstep ${e._step}, history event ${e.index}`);
    if (mark.label != null) {
      const t = el("text", { x: x - 7, y: y + 3, "font-size": 9, "text-anchor": "end", fill: color, "font-weight": 700 }, svg);
      t.textContent = mark.label + (e[mark.field] != null ? e[mark.field] : "");
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
