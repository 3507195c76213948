"use strict";
// Calculator tab: one expression, drawn or photographed, read and worked out exactly (/api/calc).
// Uses app.js's Pad, Photo, api, busy and tickets.

const calcPhoto = new Photo($("calc-photo")), calcTicket = tickets();
const shown = (text) => text.replace(/\*/g, "×").replace(/\//g, "÷");

function calcReset() {
  calcTicket(); busy("calc-busy")();
  $("calc-expression").textContent = "–"; $("calc-value").textContent = ""; $("calc-value").className = "calc-value";
  $("calc-alts").hidden = true; $("calc-error").textContent = ""; $("calc-hint").hidden = false;
}

function calcResult(r) {
  const value = r.value_exact ?? r.value;
  $("calc-hint").hidden = true;
  $("calc-expression").textContent = shown(r.expression);
  const out = $("calc-value");
  if (r.status === "computed") { out.textContent = `= ${value}`; out.className = "calc-value ok"; }
  else if (r.status === "correct") { out.textContent = `✓ right: the value is ${value}`; out.className = "calc-value ok"; }
  else if (r.status === "wrong") { out.textContent = `✗ the value is ${value}, not ${r.written_answer}`; out.className = "calc-value bad"; }
  else if (r.status === "unsure") { out.textContent = `? unsure: the value is ${value}; please look at the answer`; out.className = "calc-value unreadable"; }
  else { out.textContent = r.status; out.className = "calc-value unreadable"; }
  const alts = (r.alternatives || []).filter((a) => a !== r.expression);
  $("calc-alts").hidden = !alts.length;
  $("calc-alts").textContent = alts.length ? `or perhaps: ${alts.map(shown).join(", ")}` : "";
  if (calcPhoto.shown() && r.bbox) {
    calcPhoto.draw((ctx, scale) => {
      const [x0, y0, x1, y1] = r.bbox.map((v) => v * scale);
      ctx.lineWidth = Math.max(2, ctx.canvas.width / 300); ctx.strokeStyle = "#1565c0";
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    });
  }
}

async function calculate(body) {
  $("calc-error").textContent = "";
  const newest = calcTicket(), done = busy("calc-busy");
  try {
    const r = await api("/api/calc", body);
    if (newest()) calcResult(r);
  } catch (err) {
    if (!newest()) return;
    $("calc-expression").textContent = "–"; $("calc-value").textContent = ""; $("calc-error").textContent = err.message;
  } finally { done(newest()); }
}

const calcPad = new Pad($("calc-canvas"), () => { if (calcPhoto.shown()) calcPhoto.clear(); }, 10);
$("calc-undo").onclick = () => calcPad.undo();
$("calc-clear").onclick = () => { calcPhoto.clear(); calcPad.clear(); calcReset(); };
$("calc-run").onclick = () => { if (!calcPad.empty()) calculate({ image: calcPad.dataURL() }); };
$("calc-upload").onchange = async (e) => {
  const f = e.target.files[0]; if (!f) return;
  e.target.value = "";
  calcPad.strokes = []; calcPad.redraw(); // the upload replaces the drawing
  try { await calcPhoto.show(f); } catch (_) { calcPhoto.clear(); }
  const fd = new FormData(); fd.append("file", f); calculate(fd);
};
