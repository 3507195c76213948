"use strict";
// digitlab page: drawing pads, live prediction, number reading, homework checking, network view.

const $ = (id) => document.getElementById(id);
let lastDigitImage = null; // data URL of the last drawing, for the network view

function debounce(fn, ms) {
  let t = null;
  const call = (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
  call.cancel = () => clearTimeout(t);
  return call;
}

// On a busy machine answers can come back out of order (a reading of half a stroke after the
// reading of the whole): each request takes a ticket, and only the newest ticket's answer is shown.
function tickets() {
  let n = 0;
  return () => { const mine = ++n; return () => mine === n; };
}
const predictTicket = tickets(), numberTicket = tickets(), checkTicket = tickets();

// Long work shows progress: the "reading…" line appears when an answer takes more than a moment.
function busy(id) {
  const node = $(id), timer = setTimeout(() => { node.hidden = false; }, 200);
  return (hide = true) => { clearTimeout(timer); if (hide) node.hidden = true; };
}

// An uploaded photo shown in place of a drawing pad, with marks drawn over it on a canvas in the
// photo's own pixels (at most 2000 a side): ``draw(ctx, scale)`` draws them.
class Photo {
  constructor(box) {
    this.box = box; this.img = box.querySelector("img"); this.canvas = box.querySelector("canvas");
    this.url = null; this.scale = 1;
  }
  async show(file) {
    this.clear();
    this.url = URL.createObjectURL(file);
    await new Promise((ok, fail) => { this.img.onload = ok; this.img.onerror = () => fail(new Error("the browser cannot show this image")); this.img.src = this.url; });
    const w = this.img.naturalWidth, h = this.img.naturalHeight;
    this.scale = Math.min(1, 2000 / Math.max(w, h));
    this.canvas.width = Math.round(w * this.scale); this.canvas.height = Math.round(h * this.scale);
    this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
    // shown up to 640 px wide (small photos at most twice their size), its height within the window
    this.img.style.width = `${Math.round(Math.min(640, 2 * w, 0.75 * window.innerHeight * w / h))}px`;
    this.box.hidden = false; this.box.parentElement.classList.add("has-photo");
  }
  draw(fn) {
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height); fn(ctx, this.scale);
  }
  // a click or tap, in the photo's pixels
  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) / r.width * this.img.naturalWidth, (e.clientY - r.top) / r.height * this.img.naturalHeight];
  }
  shown() { return !this.box.hidden; }
  clear() {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null; this.img.removeAttribute("src"); this.box.hidden = true; this.box.parentElement.classList.remove("has-photo");
  }
}

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
  $("draw-hint").hidden = true;
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
  $("bars").innerHTML = ""; $("compare-table").hidden = true; $("draw-hint").hidden = false;
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
  predictSoon.cancel(); drawPad.strokes = []; drawPad.redraw(); // the answer is the photo's, not the old drawing's
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
const numberPhoto = new Photo($("number-photo"));

function markDigits(ctx, digits, scale, size) {
  ctx.lineWidth = Math.max(2, size / 10); ctx.strokeStyle = "#2f6fdf"; ctx.fillStyle = "#2f6fdf";
  ctx.font = `bold ${Math.round(size)}px system-ui`; ctx.textBaseline = "alphabetic";
  for (const d of digits) {
    const [x0, y0, x1, y1] = d.box.map((v) => v * scale), m = size / 6;
    ctx.strokeRect(x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m);
    ctx.fillText(String(d.digit), x0, Math.max(size, y0 - size / 3));
  }
}

function showAlternatives(alts) {
  const p = $("number-alts"); p.replaceChildren();
  p.hidden = !alts.length;
  if (!alts.length) return;
  p.append("or perhaps: ");
  for (const a of alts.slice(0, 3)) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = a; b.className = "alt";
    b.title = "use this as the correction below";
    b.onclick = () => { const input = $("number-fix-text"); if (input) { input.value = a; input.focus(); } };
    p.append(b, " ");
  }
}

async function readNumber(body, pad, photoURL) {
  $("number-error").textContent = "";
  const newest = numberTicket(), done = busy("number-busy");
  try {
    const r = await api("/api/read", body);
    if (!newest()) return;
    $("number-hint").hidden = true;
    $("number-result").textContent = r.text;
    showAlternatives((r.alternatives || []).filter((a) => a !== r.text));
    // profiles.js offers a correction of a number, digit by digit (crops of the image sent)
    const image = pad ? body.image : photoURL;
    document.dispatchEvent(new CustomEvent("digitlab:number", { detail: image ? { digits: r.digits, image } : null }));
    if (pad) {
      pad.redraw(); markDigits(pad.ctx, r.digits, 1, 20);
    } else if (numberPhoto.shown()) {
      numberPhoto.draw((ctx, scale) => markDigits(ctx, r.digits, scale, Math.max(16, ctx.canvas.height / 12)));
    }
  } catch (err) {
    if (!newest()) return;
    $("number-result").textContent = "–"; $("number-error").textContent = err.message; showAlternatives([]);
    document.dispatchEvent(new CustomEvent("digitlab:number", { detail: null }));
  } finally { done(newest()); }
}
function resetNumber() {
  $("number-result").textContent = "–"; $("number-hint").hidden = false; showAlternatives([]);
  document.dispatchEvent(new CustomEvent("digitlab:number", { detail: null }));
}
const readSoon = debounce((pad) => pad.empty() ? resetNumber() : readNumber({ image: pad.dataURL() }, pad), 300);
const numberPad = new Pad($("number-canvas"), (pad, done) => {
  if (numberPhoto.shown()) numberPhoto.clear();
  if (done) readSoon(pad);
}, 14);
$("number-undo").onclick = () => numberPad.undo();
$("number-clear").onclick = () => { numberPhoto.clear(); numberPad.clear(); };
$("number-upload").onchange = async (e) => {
  const f = e.target.files[0]; if (!f) return;
  e.target.value = "";
  readSoon.cancel(); numberPad.strokes = []; numberPad.redraw(); // the upload replaces the drawing
  try { await numberPhoto.show(f); } catch (_) { numberPhoto.clear(); }
  const fd = new FormData(); fd.append("file", f); readNumber(fd, null, numberPhoto.url);
};

// ---- homework mode --------------------------------------------------------------------------
// The lines of the last check, as the teacher has confirmed or corrected them; drawn over the photo
// (or the drawing); a click on a line, in the photo or in the list, shows its alternatives.
const V = window.digitlabVerdicts;
const checkPhoto = new Photo($("check-photo"));
const checked = { lines: [], selected: -1, drawn: false };
const CLS = { correct: "ok", wrong: "bad", unsure: "unsure", unreadable: "unreadable", computed: "ok" };

function renderChecked() {
  const ul = $("check-result"); ul.innerHTML = "";
  checked.lines.forEach((line, i) => {
    const li = document.createElement("li");
    const status = V.statusOf(line);
    li.className = CLS[status] + (i === checked.selected ? " selected" : ""); li.dataset.status = status;
    li.tabIndex = 0; li.setAttribute("role", "button"); li.setAttribute("aria-expanded", i === checked.selected);
    li.textContent = `${line.expression || "?"} `;
    li.append(Object.assign(document.createElement("small"), { textContent: V.note(line) }));
    li.onclick = () => select(i);
    li.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(i); } };
    ul.append(li);
  });
  const marks = (ctx, scale) => V.drawMarks(ctx, checked.lines, scale, checked.selected);
  if (checkPhoto.shown()) checkPhoto.draw(marks);
  else if (checked.drawn) { checkPad.redraw(); marks(checkPad.ctx, 1); }
  V.renderPanel($("check-detail"), checked.lines, checked.selected, fix);
}
function select(i) { checked.selected = i === checked.selected ? -1 : i; renderChecked(); }
function fix(i, text) {
  const old = checked.lines[i], v = V.checkText(text);
  const read = old.read || { expression: old.expression, alternatives: old.alternatives || [] }; // the reader's
  const alternatives = [...new Set([read.expression, ...read.alternatives])].filter((a) => a && a !== text);
  checked.lines[i] = { ...old, ...v, alternatives, read, low_confidence: [], confirmed: true };
  renderChecked();
}

async function checkSheet(body, drawn) {
  $("check-error").textContent = "";
  Object.assign(checked, { lines: [], selected: -1, drawn: false }); renderChecked();
  const newest = checkTicket(), done = busy("check-busy");
  try {
    const r = await api("/api/check", body);
    if (!newest()) return;
    Object.assign(checked, { lines: r.lines, selected: -1, drawn });
    $("check-hint").hidden = r.lines.length > 0;
    renderChecked();
    if (!r.lines.length) $("check-error").textContent = "no lines found";
  } catch (err) { if (newest()) $("check-error").textContent = err.message; }
  finally { done(newest()); }
}
const checkPad = new Pad($("check-canvas"), () => { checked.drawn = false; }, 10);
$("check-undo").onclick = () => checkPad.undo();
$("check-clear").onclick = () => {
  checkTicket(); busy("check-busy")(); checkPhoto.clear(); checkPad.clear();
  Object.assign(checked, { lines: [], selected: -1, drawn: false }); renderChecked();
  $("check-hint").hidden = false; $("check-error").textContent = "";
};
$("check-run").onclick = () => { if (!checkPad.empty()) checkSheet({ image: checkPad.dataURL() }, true); };
$("check-upload").onchange = async (e) => {
  const f = e.target.files[0]; if (!f) return;
  e.target.value = "";
  checkPad.strokes = []; checkPad.redraw(); // the upload replaces the drawing
  try { await checkPhoto.show(f); } catch (_) { checkPhoto.clear(); }
  const fd = new FormData(); fd.append("file", f); checkSheet(fd, false);
};
const pickLine = (e) => {
  if (!checked.lines.length) return;
  const [x, y] = checkPhoto.point(e), i = V.lineAt(checked.lines, x, y);
  if (i < 0) return;
  select(i);
  const panel = $("check-detail"), r = panel.getBoundingClientRect(); // on a phone the panel is below the photo
  if (!panel.hidden && (r.bottom > window.innerHeight || r.top < 0)) panel.scrollIntoView({ block: "nearest" });
};
$("check-photo").querySelector("canvas").addEventListener("click", pickLine);
$("check-photo").querySelector("canvas").addEventListener("keydown", (e) => { // the lines in turn, from the keyboard
  const n = checked.lines.length, step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
  if (!n || !step) return;
  e.preventDefault(); checked.selected = (checked.selected + step + n + (checked.selected < 0 && step < 0 ? 1 : 0)) % n; renderChecked();
});

// ---- network view ---------------------------------------------------------------------------
function figure(title, arr, size) {
  const fig = document.createElement("figure");
  const c = document.createElement("canvas"); c.width = size; c.height = size; drawArray(c, arr);
  const cap = document.createElement("figcaption"); cap.textContent = title;
  fig.append(c, cap); return fig;
}

async function renderNetwork() {
  const view = $("network-view"); view.innerHTML = "";
  if (!lastDigitImage) { view.textContent = "Nothing drawn yet: draw a digit in the Digit tab first."; return; }
  const wait = setTimeout(() => { view.innerHTML = '<p class="busy"><span class="spinner" aria-hidden="true"></span> looking inside the network…</p>'; }, 200);
  try {
    const r = await api("/api/visualize", { image: lastDigitImage });
    clearTimeout(wait); view.innerHTML = "";
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
    table.append(body);
    const scroll = document.createElement("div"); scroll.className = "scroll"; scroll.append(table); view.append(scroll);
  } catch (err) { clearTimeout(wait); view.textContent = err.message; }
}
