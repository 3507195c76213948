"use strict";
// digitlab page: drawing pads, live prediction, number reading, homework checking, network view.

const $ = (id) => document.getElementById(id);
let lastDigitImage = null; // data URL of the last drawing, for the network view

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

// On a busy machine answers can come back out of order (a reading of half a stroke after the
// reading of the whole): each request takes a ticket, and only the newest ticket's answer is shown.
function tickets() {
  let n = 0;
  return () => { const mine = ++n; return () => mine === n; };
}
const predictTicket = tickets(), numberTicket = tickets(), checkTicket = tickets();

async function api(path, body) {
  const chosen = (path === "/api/read" || path === "/api/check") && window.digitlabProfile?.(); // profiles.js
  let headers = { "Content-Type": "application/json" };
  if (chosen) {
    headers = chosen.headers;
    if (body instanceof FormData) body.append("profile", chosen.name); else body = { ...body, profile: chosen.name };
  }
  const formHeaders = { ...headers }; delete formHeaders["Content-Type"]; // the browser sets the multipart boundary
  const opts = body instanceof FormData ? { method: "POST", body, headers: formHeaders }
    : { method: "POST", headers, body: JSON.stringify(body) };
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

// A drawing pad: strokes kept as point lists so undo can redraw everything.
class Pad {
  constructor(canvas, onChange, lineWidth) {
    this.canvas = canvas; this.ctx = canvas.getContext("2d");
    this.strokes = []; this.current = null; this.onChange = onChange;
    this.lineWidth = lineWidth;
    canvas.style.setProperty("--ar", canvas.width / canvas.height);
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const ev of ["pointerup", "pointercancel", "pointerleave"]) canvas.addEventListener(ev, (e) => this.up(e));
    canvas.addEventListener("keydown", (e) => {
      if (e.key === "Delete" || e.key === "Escape") { this.clear(); e.preventDefault(); }
      if ((e.ctrlKey || e.metaKey) && e.key === "z") { this.undo(); e.preventDefault(); }
    });
    this.redraw();
  }
  pos(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * this.canvas.width / r.width, (e.clientY - r.top) * this.canvas.height / r.height];
  }
  down(e) { this.canvas.setPointerCapture?.(e.pointerId); this.current = [this.pos(e)]; this.strokes.push(this.current); this.redraw(); }
  move(e) { if (!this.current) return; this.current.push(this.pos(e)); this.redraw(); this.onChange(this, false); }
  up() { if (!this.current) return; this.current = null; this.onChange(this, true); }
  undo() { this.strokes.pop(); this.redraw(); this.onChange(this, true); }
  clear() { this.strokes = []; this.redraw(); this.onChange(this, true); }
  empty() { return this.strokes.length === 0; }
  // The extent of the ink in canvas units: a pen that has only just touched down is not a digit yet.
  extent() {
    const pts = this.strokes.flat(); if (!pts.length) return 0;
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    return Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  }
  redraw() {
    const c = this.ctx;
    c.fillStyle = "#fff"; c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    c.strokeStyle = "#000"; c.lineWidth = this.lineWidth; c.lineCap = "round"; c.lineJoin = "round";
    for (const s of this.strokes) {
      c.beginPath(); c.moveTo(s[0][0], s[0][1]);
      for (const [x, y] of s.slice(1)) c.lineTo(x, y);
      if (s.length === 1) c.lineTo(s[0][0] + 0.1, s[0][1]);
      c.stroke();
    }
  }
  dataURL() { return this.canvas.toDataURL("image/png"); }
}

// ---- tabs -----------------------------------------------------------------------------------
function showMode(mode) {
  for (const tab of document.querySelectorAll("nav [role=tab]")) {
    const on = tab.dataset.mode === mode;
    tab.setAttribute("aria-selected", on); $("mode-" + tab.dataset.mode).hidden = !on;
  }
  if (mode === "study") $("study-frame").src = "/report";
  if (mode === "network") renderNetwork();
}
for (const tab of document.querySelectorAll("nav [role=tab]")) tab.addEventListener("click", () => showMode(tab.dataset.mode));

// ---- digit mode -----------------------------------------------------------------------------
function renderPrediction(r) {
  $("result-digit").textContent = r.digit;
  $("result-conf").textContent = `${(r.confidence * 100).toFixed(1)}%`;
  const order = r.probabilities.map((p, d) => [p, d]).sort((a, b) => b[0] - a[0]);
  $("top3").textContent = "top 3: " + order.slice(0, 3).map(([p, d]) => `${d} (${(p * 100).toFixed(1)}%)`).join(", ");
  const bars = $("bars"); bars.innerHTML = "";
  r.probabilities.forEach((p, d) => {
    const label = document.createElement("span"); label.textContent = d;
    const bar = document.createElement("div"); bar.className = "bar"; bar.style.width = `${Math.max(p * 100, 0.5)}%`;
    const pct = document.createElement("span"); pct.textContent = `${(p * 100).toFixed(1)}%`;
    if (d === r.digit) { label.className = "best"; pct.className = "best"; }
    bars.append(label, bar, pct);
  });
  drawArray($("thumb"), r.input28);
  const table = $("compare-table");
  if (r.compare) {
    const body = table.querySelector("tbody"); body.innerHTML = "";
    for (const [name, a] of Object.entries(r.compare)) {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td>${name}</td><td>${a.digit}</td><td>${(a.confidence * 100).toFixed(1)}%</td>`;
      body.append(tr);
    }
    table.hidden = false;
  } else table.hidden = true;
}

function drawArray(canvas, arr) {
  const h = arr.length, w = arr[0].length, ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  arr.flat().forEach((v, i) => { const g = Math.round(Math.max(0, Math.min(1, v)) * 255); img.data.set([g, g, g, 255], i * 4); });
  const tmp = document.createElement("canvas"); tmp.width = w; tmp.height = h; tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false; ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function resetDigit(message) {
  $("result-digit").textContent = "–"; $("result-conf").textContent = ""; $("top3").textContent = message || "";
  $("bars").innerHTML = ""; $("compare-table").hidden = true;
  document.dispatchEvent(new CustomEvent("digitlab:prediction", { detail: null })); // profiles.js
}

async function predictDigit(body) {
  $("draw-error").textContent = "";
  const newest = predictTicket();
  try {
    const r = await api("/api/predict", body);
    if (!newest()) return;
    renderPrediction(r);
    document.dispatchEvent(new CustomEvent("digitlab:prediction", { detail: r })); // profiles.js
  } catch (err) { if (newest()) { resetDigit(); $("draw-error").textContent = err.message; } }
}

const predictSoon = debounce((pad) => {
  if (pad.empty()) { resetDigit("draw a digit"); lastDigitImage = null; return; }
  if (pad.current && pad.extent() < pad.canvas.height / 8) return; // still the first dab of a stroke
  lastDigitImage = pad.dataURL();
  predictDigit({ image: lastDigitImage, model: $("model-select").value || "cnn", compare: $("compare-toggle").checked });
}, 120);

const drawPad = new Pad($("draw-canvas"), (pad) => predictSoon(pad), 18);
$("draw-undo").onclick = () => drawPad.undo();
$("draw-clear").onclick = () => drawPad.clear();
$("compare-toggle").onchange = () => predictSoon(drawPad);
$("model-select").onchange = () => predictSoon(drawPad);
$("draw-upload").onchange = (e) => {
  const f = e.target.files[0]; if (!f) return;
  const fd = new FormData(); fd.append("file", f); fd.append("model", $("model-select").value || "cnn");
  fd.append("compare", $("compare-toggle").checked);
  const reader = new FileReader(); reader.onload = () => { lastDigitImage = reader.result; }; reader.readAsDataURL(f);
  predictDigit(fd); e.target.value = "";
};

fetch("/api/models").then((r) => r.json()).then((models) => {
  const sel = $("model-select");
  for (const m of models) {
    const o = document.createElement("option"); o.value = m.name;
    o.textContent = m.name + (m.test_accuracy ? ` (${(m.test_accuracy * 100).toFixed(2)}%)` : "");
    sel.append(o);
  }
  sel.value = "cnn";
}).catch(() => {});

// ---- number mode ----------------------------------------------------------------------------
async function readNumber(body, pad) {
  $("number-error").textContent = "";
  const newest = numberTicket();
  try {
    const r = await api("/api/read", body);
    if (!newest()) return;
    $("number-result").textContent = r.text;
    // profiles.js offers a correction of a drawn number, digit by digit (crops of the image sent)
    document.dispatchEvent(new CustomEvent("digitlab:number", { detail: pad ? { digits: r.digits, image: body.image } : null }));
    if (pad) {
      pad.redraw();
      const c = pad.ctx; c.lineWidth = 2; c.strokeStyle = "#2f6fdf"; c.fillStyle = "#2f6fdf"; c.font = "bold 20px system-ui";
      for (const d of r.digits) {
        const [x0, y0, x1, y1] = d.box; c.strokeRect(x0 - 3, y0 - 3, x1 - x0 + 6, y1 - y0 + 6);
        c.fillText(String(d.digit), x0, Math.max(18, y0 - 6));
      }
    }
  } catch (err) {
    if (!newest()) return;
    $("number-result").textContent = "–"; $("number-error").textContent = err.message;
    document.dispatchEvent(new CustomEvent("digitlab:number", { detail: null }));
  }
}
const readSoon = debounce((pad) => pad.empty() ? ($("number-result").textContent = "–") : readNumber({ image: pad.dataURL() }, pad), 300);
const numberPad = new Pad($("number-canvas"), (pad, done) => { if (done) readSoon(pad); }, 14);
$("number-undo").onclick = () => numberPad.undo();
$("number-clear").onclick = () => numberPad.clear();
$("number-upload").onchange = (e) => {
  const f = e.target.files[0]; if (!f) return;
  const fd = new FormData(); fd.append("file", f); readNumber(fd, null); e.target.value = "";
};

// ---- homework mode --------------------------------------------------------------------------
async function checkSheet(body) {
  $("check-error").textContent = ""; const ul = $("check-result"); ul.innerHTML = "";
  const newest = checkTicket();
  try {
    const r = await api("/api/check", body);
    if (!newest()) return;
    ul.innerHTML = "";
    const cls = { correct: "ok", wrong: "bad", unsure: "unsure", unreadable: "unreadable" };
    for (const line of r.lines) {
      const li = document.createElement("li");
      const status = line.status || (line.error ? "unreadable" : line.correct ? "correct" : "wrong");
      li.className = cls[status]; li.dataset.status = status;
      li.textContent = `${line.expression || "?"} `;
      const note = document.createElement("small");
      const alt = (line.alternatives || []).slice(0, 2).join(", ");
      note.textContent = {
        correct: "correct",
        wrong: `should be ${line.value_exact || line.value}`,
        unsure: `unsure, please look${alt ? ` (or ${alt})` : ""}`,
        unreadable: `unreadable${line.error ? `: ${line.error}` : ""}`,
      }[status];
      li.append(note); ul.append(li);
    }
    if (!r.lines.length) $("check-error").textContent = "no lines found";
  } catch (err) { if (newest()) $("check-error").textContent = err.message; }
}
const checkPad = new Pad($("check-canvas"), () => {}, 10);
$("check-undo").onclick = () => checkPad.undo();
$("check-clear").onclick = () => { checkPad.clear(); $("check-result").innerHTML = ""; };
$("check-run").onclick = () => { if (!checkPad.empty()) checkSheet({ image: checkPad.dataURL() }); };
$("check-upload").onchange = (e) => {
  const f = e.target.files[0]; if (!f) return;
  const fd = new FormData(); fd.append("file", f); checkSheet(fd); e.target.value = "";
};

// ---- network view ---------------------------------------------------------------------------
function figure(title, arr, size) {
  const fig = document.createElement("figure");
  const c = document.createElement("canvas"); c.width = size; c.height = size; drawArray(c, arr);
  const cap = document.createElement("figcaption"); cap.textContent = title;
  fig.append(c, cap); return fig;
}

async function renderNetwork() {
  const view = $("network-view"); view.innerHTML = "";
  if (!lastDigitImage) { view.textContent = "Nothing drawn yet."; return; }
  try {
    const r = await api("/api/visualize", { image: lastDigitImage });
    const head = document.createElement("p");
    head.textContent = `prediction ${r.prediction.digit} (${(r.prediction.confidence * 100).toFixed(1)}%), ` +
      `${r.total_params.toLocaleString()} parameters`;
    view.append(head);
    const row = document.createElement("div"); row.className = "maps";
    row.append(figure("input (28×28)", r.input, 112), figure("saliency: pixels that move the answer", r.saliency, 112),
               figure("Grad-CAM: where the last conv layer looks", r.gradcam, 112));
    view.append(row);
    const fh = document.createElement("h3"); fh.textContent = "first-layer filters (5×5)"; view.append(fh);
    const filters = document.createElement("div"); filters.className = "maps";
    for (const f of r.filters) filters.append(figure("", f, 40));
    view.append(filters);
    for (const layer of r.layers.filter((l) => l.maps)) {
      const h = document.createElement("h3");
      h.textContent = `${layer.name}: ${layer.shape.join("×")} — the ${layer.maps.length} most active feature maps`;
      const maps = document.createElement("div"); maps.className = "maps";
      for (const m of layer.maps) maps.append(figure("", m, 56));
      view.append(h, maps);
    }
    const table = document.createElement("table"); table.className = "compare";
    table.innerHTML = "<thead><tr><th>layer</th><th>type</th><th>output</th><th>parameters</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const l of r.layers.filter((l) => !l.maps)) {
      const tr = document.createElement("tr");
      for (const v of [l.name, l.type, l.shape.join("×"), l.params.toLocaleString()]) {
        const td = document.createElement("td"); td.textContent = v; tr.append(td);
      }
      body.append(tr);
    }
    table.append(body); view.append(table);
  } catch (err) { view.textContent = err.message; }
}
