"use strict";
// Verdicts on the page: the arithmetic of a line (the same grammar and exact fractions as
// digitlab.arithmetic.grammar, so a teacher's correction is checked here), the marks drawn over a
// photo or drawing (ticks, crosses with the right answer, unsure lines highlighted), and the panel
// that shows a line's alternatives and lets the teacher confirm or correct the reading.
window.digitlabVerdicts = (() => {
  // ---- exact arithmetic: line := expr '=' ['-'] NUMBER -------------------------------------------
  const gcd = (a, b) => { a = a < 0n ? -a : a; b = b < 0n ? -b : b; while (b) [a, b] = [b, a % b]; return a; };
  const frac = (n, d = 1n) => {
    if (d < 0n) { n = -n; d = -d; }
    const g = gcd(n, d) || 1n; return { n: n / g, d: d / g };
  };
  const ops = {
    "+": (a, b) => frac(a.n * b.d + b.n * a.d, a.d * b.d),
    "-": (a, b) => frac(a.n * b.d - b.n * a.d, a.d * b.d),
    "*": (a, b) => frac(a.n * b.n, a.d * b.d),
    "/": (a, b) => { if (b.n === 0n) throw new Error("division by zero"); return frac(a.n * b.d, a.d * b.n); },
  };

  function tokenize(text) {
    if (text.length > 200) throw new Error("line longer than 200 characters");
    const norm = text.replace(/[×·xX]/g, "*").replace(/÷|:/g, "/").replace(/−/g, "-");
    const out = [];
    for (const m of norm.matchAll(/\s+|\d+|[-+*/()=]|./g)) {
      const t = m[0];
      if (/^\s+$/.test(t)) continue;
      if (/^\d+$/.test(t) && t.length > 30) throw new Error("number longer than 30 digits");
      if (!/^(\d+|[-+*/()=])$/.test(t)) throw new Error(`unexpected character '${t}'`);
      out.push(t);
    }
    return out;
  }

  function parseLine(text) {
    const t = tokenize(text); let i = 0;
    const peek = () => t[i];
    const take = (want) => {
      const tok = t[i];
      if (tok === undefined) throw new Error("line ends too early");
      if (want !== undefined && tok !== want) throw new Error(`expected '${want}' but found '${tok}'`);
      i++; return tok;
    };
    const factor = (depth) => {
      if (depth > 20) throw new Error("too deeply nested");
      const tok = peek();
      if (tok === "-") { take(); const v = factor(depth + 1); return frac(-v.n, v.d); }
      if (tok === "(") { take(); const v = expr(depth + 1); take(")"); return v; }
      if (tok !== undefined && /^\d+$/.test(tok)) return frac(BigInt(take()));
      throw new Error("expected a number" + (tok ? ` but found '${tok}'` : " at the end"));
    };
    const term = (depth) => {
      let v = factor(depth);
      while (peek() === "*" || peek() === "/") { const op = take(); v = ops[op](v, factor(depth)); }
      return v;
    };
    const expr = (depth = 0) => {
      let v = term(depth);
      while (peek() === "+" || peek() === "-") { const op = take(); v = ops[op](v, term(depth)); }
      return v;
    };
    if (!t.includes("=")) throw new Error("no '=' in the line");
    const value = expr(); take("=");
    const neg = peek() === "-"; if (neg) take();
    const tok = take();
    if (!/^\d+$/.test(tok)) throw new Error(`the answer must be a number, found '${tok}'`);
    if (peek() !== undefined) throw new Error(`unexpected '${peek()}' after the answer`);
    return { value, answer: frac(neg ? -BigInt(tok) : BigInt(tok)) };
  }

  // The verdict of a line of text, as the server words it: status, value, value_exact, error.
  function checkText(text) {
    try {
      const { value, answer } = parseLine(text);
      const num = (f) => (f.d === 1n ? Number(f.n) : Number(f.n) / Number(f.d));
      const right = value.n === answer.n && value.d === answer.d;
      return { expression: text, value: num(value), written_answer: num(answer), correct: right,
               status: right ? "correct" : "wrong", error: null,
               value_exact: value.d === 1n ? null : `${value.n}/${value.d}` };
    } catch (err) {
      return { expression: text, value: null, written_answer: null, correct: null, status: "unreadable",
               error: err.message, value_exact: null };
    }
  }

  const statusOf = (line) => line.status || (line.error ? "unreadable" : line.correct ? "correct" : "wrong");
  const rightAnswer = (line) => line.value_exact || line.value;
  const COLOUR = { correct: "#1a8a3a", wrong: "#c62828", unsure: "#d98200", unreadable: "#5b6570", computed: "#1e5ac8" };

  // ---- marks over the image ------------------------------------------------------------------------
  // ``scale``: canvas pixels per image pixel. ``selected``: the index of the line to outline in blue.
  function drawMarks(ctx, lines, scale, selected) {
    lines.forEach((line, i) => {
      const status = statusOf(line), colour = COLOUR[status];
      const [x0, y0, x1, y1] = line.bbox.map((v) => v * scale);
      // the height of the writing: the polygon's left edge (a slanted line's box is taller)
      const p = line.polygon && line.polygon.length === 4 ? line.polygon : null;
      const h = Math.max(12, p ? Math.hypot(p[3][0] - p[0][0], p[3][1] - p[0][1]) * scale : y1 - y0), lw = Math.max(2, h / 18);
      const poly = (line.polygon && line.polygon.length >= 3 ? line.polygon : [[x0 / scale, y0 / scale],
        [x1 / scale, y0 / scale], [x1 / scale, y1 / scale], [x0 / scale, y1 / scale]]).map(([x, y]) => [x * scale, y * scale]);
      ctx.beginPath(); poly.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.closePath();
      if (status === "unsure" || status === "unreadable") {
        ctx.fillStyle = status === "unsure" ? "rgba(255, 176, 0, 0.28)" : "rgba(91, 101, 112, 0.18)"; ctx.fill();
      }
      ctx.setLineDash(status === "unreadable" ? [lw * 3, lw * 2] : []);
      ctx.lineWidth = i === selected ? lw * 2 : lw; ctx.strokeStyle = i === selected ? "#2f6fdf" : colour; ctx.stroke();
      ctx.setLineDash([]);
      // the mark, right of the line (inside it when the image ends there)
      let size = Math.min(h * 0.9, 64 * Math.max(scale, 0.5) + h * 0.3);
      const font = (px) => { ctx.font = `bold ${Math.round(px)}px system-ui, sans-serif`; return ctx.measureText(mark).width; };
      const mark = { correct: "✔", wrong: `✘ ${rightAnswer(line)}`, unsure: "?", unreadable: "?" }[status];
      ctx.textBaseline = "middle";
      // right of the line (smaller, down to 60%, to fit); where the image ends there, under the line's end
      let w = font(size), x = x1 + size * 0.3, cy = p ? (p[1][1] + p[2][1]) / 2 * scale : (y0 + y1) / 2;
      const room = ctx.canvas.width - 4 - x;
      if (w > room && w * 0.6 <= room) { size *= room / w; w = font(size); }
      else if (w > room) { x = Math.max(0, Math.min(x1, ctx.canvas.width) - w); cy = y1 + size * 0.55; }
      ctx.lineWidth = Math.max(3, size / 6); ctx.strokeStyle = "rgba(255, 255, 255, 0.9)"; ctx.strokeText(mark, x, cy);
      ctx.fillStyle = colour; ctx.fillText(mark, x, cy);
      if (line.confirmed) {
        ctx.font = `${Math.round(size * 0.45)}px system-ui, sans-serif`;
        ctx.fillStyle = "#2f6fdf"; ctx.fillText("checked", x, cy + size * 0.7);
      }
    });
  }

  // The line under an image point: inside its polygon (or box), else the nearest box within half a line.
  function lineAt(lines, x, y) {
    const inside = (poly) => {
      let hit = false;
      for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
        const [xi, yi] = poly[i], [xj, yj] = poly[j];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
      }
      return hit;
    };
    let best = -1, bestD = Infinity;
    lines.forEach((line, i) => {
      const [x0, y0, x1, y1] = line.bbox;
      const poly = line.polygon && line.polygon.length >= 3 ? line.polygon : [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
      if (inside(poly)) { best = i; bestD = -1; return; }
      const dx = Math.max(x0 - x, 0, x - x1), dy = Math.max(y0 - y, 0, y - y1), d = Math.hypot(dx, dy);
      if (bestD >= 0 && d < bestD && d < (y1 - y0) * 0.6 + 8) { best = i; bestD = d; }
    });
    return best;
  }

  // ---- the panel of one line -----------------------------------------------------------------------
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };

  function note(line) {
    const status = statusOf(line);
    const alt = (line.alternatives || []).slice(0, 2).join(", ");
    return {
      correct: "correct",
      wrong: `should be ${rightAnswer(line)}`,
      unsure: `unsure, please look${alt ? ` (or ${alt})` : ""}`,
      unreadable: `unreadable${line.error ? `: ${line.error}` : ""}`,
    }[status] + (line.confirmed ? " (checked by you)" : "");
  }

  // ``onFix(i, text)``: the teacher says line i reads ``text``.
  function renderPanel(panel, lines, i, onFix) {
    panel.replaceChildren();
    if (i < 0 || !lines[i]) { panel.hidden = true; return; }
    const line = lines[i], status = statusOf(line);
    panel.hidden = false; panel.dataset.line = i;
    const head = el("p", `Line ${i + 1}: `, "detail-head");
    const expr = el("span", "", "detail-expr");
    // uncertain symbols highlighted
    [...(line.expression || "?")].forEach((ch, k) => expr.append((line.low_confidence || []).includes(k) && !line.confirmed ? el("mark", ch) : ch));
    head.append(expr, el("span", ` — ${note(line)}`, "detail-status " + status));
    panel.append(head);
    const readings = [line.expression, ...(line.alternatives || []).filter((a) => a !== line.expression)].filter(Boolean);
    const opts = el("div", undefined, "detail-options");
    opts.append(el("span", "It says: "));
    readings.forEach((text, k) => {
      const v = checkText(text);
      const b = el("button", text, "alt"); b.type = "button"; b.dataset.reading = text;
      b.title = v.status === "correct" ? "this reading is right" : v.status === "wrong" ? `this reading is wrong (${v.value_exact || v.value})` : "not a sum";
      if (k === 0) { b.classList.add("as-read"); b.setAttribute("aria-label", `it says ${text}, as read`); }
      b.addEventListener("click", () => onFix(i, text));
      opts.append(b);
    });
    panel.append(opts);
    const form = el("form", undefined, "detail-other");
    const input = el("input"); input.name = "reading"; input.value = line.expression || ""; input.size = 14;
    input.setAttribute("aria-label", `what line ${i + 1} says`); input.autocomplete = "off"; input.spellcheck = false;
    const use = el("button", "Use"); use.type = "submit";
    form.append(el("label", "Something else: "), input, use);
    form.addEventListener("submit", (e) => { e.preventDefault(); if (input.value.trim()) onFix(i, input.value.trim()); });
    panel.append(form);
  }

  return { checkText, statusOf, drawMarks, lineAt, renderPanel, note };
})();
