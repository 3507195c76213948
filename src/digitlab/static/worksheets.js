// Worksheets tab: create a sheet, grade a batch of photos, review "unsure" answers, the class table.
(() => {
  const el = (id) => document.getElementById(id);
  const api = "/api/worksheets";
  const headers = () => (el("ws-token").value ? { "X-Teacher-Token": el("ws-token").value } : {});
  async function call(url, opts = {}) {
    const r = await fetch(url, { ...opts, headers: { ...(opts.headers || {}), ...headers() } });
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return r;
  }
  async function download(url, name) {
    const blob = await (await call(url)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name; a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  }
  const text = (tag, t, cls) => { const e = document.createElement(tag); e.textContent = t; if (cls) e.className = cls; return e; };

  el("ws-create").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const body = { problems: +f.get("problems"), max: +f.get("max"), ops: f.getAll("op"), title: f.get("title"),
                   remainder: f.get("remainder") === "on", missing: f.get("missing") === "on",
                   columns: f.get("columns") === "on" };
    const out = el("ws-created"); out.textContent = "creating the sheet…"; out.classList.add("working");
    try {
      const s = await (await call(api, { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify(body) })).json();
      out.textContent = `Sheet ${s.sheet_id}: `;
      const a = text("a", "download PDF"); a.href = "#";
      a.addEventListener("click", (e) => { e.preventDefault(); download(s.pdf_url, `${s.sheet_id}.pdf`); });
      out.append(a);
    } catch (e) { out.textContent = "error: " + e.message; }
    out.classList.remove("working");
  });

  function answerRow(g, q) {
    const tr = document.createElement("tr"); tr.className = "ws-" + q.status;
    tr.append(text("td", q.id + "."), text("td", q.question), text("td", q.read.map((x) => x ?? "_").join(" R ")),
              text("td", q.expected.join(" R ")), text("td", q.status));
    const td = document.createElement("td");
    if (q.status === "unsure") {
      q.expected.forEach((_, k) => {
        const img = document.createElement("img");
        img.alt = `answer box ${q.id}`; img.height = 32;
        call(`${api}/gradings/${g.grading_id}/crops/${q.id}/${k}`).then(async (r) => { img.src = URL.createObjectURL(await r.blob()); }).catch(() => {});
        td.append(img);
      });
      const fixTo = async (labels) => {
        try {
          const r = await (await call(`${api}/gradings/${g.grading_id}/answers/${q.id}/fix`, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ labels }) })).json();
          tr.className = "ws-" + r.status; tr.children[4].textContent = r.status + " (fixed)";
          td.textContent = `score now ${r.score}/${g.total}`;
        } catch (e) { td.textContent = "error: " + e.message; }
      };
      for (const [label, labels] of [[`is ${q.expected.join(" R ")}`, q.expected],
                                     ...(q.read.every((x) => x !== null) ? [[`is ${q.read.join(" R ")}`, q.read]] : [])]) {
        const b = text("button", label); b.type = "button"; b.addEventListener("click", () => fixTo(labels)); td.append(b);
      }
      const other = text("button", "other..."); other.type = "button";
      other.addEventListener("click", () => {
        const v = prompt(`What is written in problem ${q.id}? (boxes separated by spaces)`, q.read.map((x) => x ?? "").join(" "));
        if (v !== null) fixTo(v.trim().split(/\s+/).map((x) => x || null));
      });
      td.append(other);
    }
    tr.append(td);
    return tr;
  }

  function showGraded(g) {
    const box = document.createElement("details"); box.open = true;
    box.append(text("summary", `${g.file}: ${g.score}/${g.total} correct (sheet ${g.sheet_id})`));
    const name = document.createElement("input"); name.placeholder = "pupil name"; name.value = g.pupil_name || "";
    name.addEventListener("change", () => call(`${api}/gradings/${g.grading_id}/name`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: name.value }) }));
    box.append(name);
    if (g.annotated_png) {
      const img = document.createElement("img"); img.src = "data:image/png;base64," + g.annotated_png;
      img.alt = "graded sheet with marks"; img.className = "ws-marked"; box.append(img);
    }
    const t = document.createElement("table"); t.className = "compare";
    t.innerHTML = "<thead><tr><th>#</th><th>question</th><th>read</th><th>answer</th><th>mark</th><th>review</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const q of g.problems) if (q.status !== "correct") body.append(answerRow(g, q));
    t.append(body);
    const scroll = document.createElement("div"); scroll.className = "scroll"; scroll.append(t); box.append(scroll);
    el("ws-graded").prepend(box);
  }

  el("ws-photos").addEventListener("change", async (ev) => {
    const files = [...ev.target.files];
    const bar = el("ws-progress"); bar.hidden = false; bar.max = files.length; bar.value = 0;
    let failed = 0;
    el("ws-status").classList.add("working");
    for (const [i, f] of files.entries()) {
      el("ws-status").textContent = `grading ${i + 1} of ${files.length}: ${f.name}`;
      const fd = new FormData(); fd.append("file", f);
      try { showGraded(await (await call(`${api}/grade`, { method: "POST", body: fd })).json()); }
      catch (e) { failed++; el("ws-graded").prepend(text("p", `${f.name}: ${e.message}`, "error")); }
      bar.value = i + 1;
    }
    el("ws-status").classList.remove("working");
    el("ws-status").textContent = `${files.length - failed} graded` + (failed ? `, ${failed} not recognised` : "");
    ev.target.value = ""; refresh();
  });

  async function refresh() {
    try {
      const rep = await (await call(`${api}/report/class`)).json();
      const body = el("ws-class").querySelector("tbody"); body.innerHTML = "";
      for (const r of rep.pupils) {
        const tr = document.createElement("tr");
        tr.append(text("td", r.pupil), text("td", r.sheet_id), text("td", `${r.score}/${r.total}`), text("td", r.unsure), text("td", r.time));
        body.append(tr);
      }
      el("ws-class-empty").hidden = rep.pupils.length > 0;
      const plot = el("ws-plot");
      if (rep.pupils.length) {
        plot.src = URL.createObjectURL(await (await call(`${api}/report/plot.png`)).blob()); plot.hidden = false;
      }
    } catch (e) { el("ws-status").textContent = "class table: " + e.message; }
  }
  el("ws-refresh").addEventListener("click", refresh);
  el("ws-csv").addEventListener("click", (e) => { e.preventDefault(); download(`${api}/report/class.csv`, "class.csv"); });
  el("tab-worksheets").addEventListener("click", refresh);
})();
