"use strict";
// Profiles: under a prediction in the Digit tab, "that's wrong, it is: [0-9]" stores a
// correction for the current profile; a built profile's own answer is shown beside the base model's.
// Under a number read in the Number tab, the right number stores each misread digit the same way.
// app.js announces each prediction with a "digitlab:prediction" event (detail: the answer, or null).
(() => {
  const el = (id) => document.getElementById(id);
  const answer = document.querySelector("#mode-draw .answer");
  if (!answer) return;
  const box = document.createElement("div");
  box.id = "profile-box"; box.className = "profile-box";
  box.innerHTML = `
    <label>Profile <input id="profile-name" list="profile-list" size="12" maxlength="64"
      placeholder="class or pupil" pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" autocomplete="off"></label>
    <datalist id="profile-list"></datalist>
    <p id="profile-answer" class="profile-answer"></p>
    <div id="profile-fix" class="profile-fix" hidden>That's wrong, it is:
      ${[...Array(10).keys()].map((d) => `<button type="button" data-digit="${d}" aria-label="it is ${d}">${d}</button>`).join("")}
    </div>
    <p id="profile-status" class="profile-status" role="status"></p>`;
  answer.insertBefore(box, el("draw-error"));

  const nameInput = el("profile-name");
  nameInput.value = localStorage.getItem("digitlab.profile") || "";
  let last = null; // the last prediction (its input28 is what a correction stores)
  let built = new Set(); // profiles that have been built (digitlab adapt)

  const headers = () => {
    const token = el("ws-token") && el("ws-token").value; // the teacher token of the Worksheets tab
    return { "Content-Type": "application/json", ...(token ? { "X-Teacher-Token": token } : {}) };
  };
  const profile = () => (nameInput.checkValidity() && nameInput.value.trim()) || null;
  // The Number and Homework tabs read with the chosen profile once it has been built (app.js).
  window.digitlabProfile = () => {
    const name = profile();
    return name && built.has(name) ? { name, headers: headers() } : null;
  };

  async function post(path, body) {
    const resp = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
    const data = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
    if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
    return data;
  }

  async function refreshProfiles() {
    try {
      const resp = await fetch("/api/profiles", { headers: headers() });
      if (!resp.ok) return;
      const rows = await resp.json();
      built = new Set(rows.filter((r) => r.examples > 0).map((r) => r.name));
      el("profile-list").replaceChildren(...rows.map((r) => Object.assign(document.createElement("option"), { value: r.name })));
    } catch (_) { /* the profile features are optional */ }
  }

  async function showProfileAnswer() {
    const out = el("profile-answer"); out.textContent = "";
    const name = profile();
    if (!last || !name || !built.has(name)) return;
    try {
      const r = await post(`/api/profiles/${encodeURIComponent(name)}/predict`, { pixels: last.input28 });
      out.textContent = `with profile ${name}: ${r.digit} (${(r.confidence * 100).toFixed(1)}%)`;
    } catch (err) { out.textContent = `profile ${name}: ${err.message}`; }
  }

  document.addEventListener("digitlab:prediction", (e) => {
    last = e.detail && e.detail.input28 ? e.detail : null;
    el("profile-fix").hidden = !last;
    el("profile-status").textContent = "";
    if (last) for (const b of el("profile-fix").querySelectorAll("button")) b.disabled = Number(b.dataset.digit) === last.digit;
    showProfileAnswer();
  });

  el("profile-fix").addEventListener("click", async (e) => {
    const d = e.target.dataset && e.target.dataset.digit;
    if (d === undefined || !last) return;
    const name = profile();
    try {
      const r = await post("/api/corrections", { pixels: last.input28, label: Number(d), profile: name, was_read: last.digit });
      el("profile-status").textContent = `Saved: it is a ${d}. ${r.corrections} correction(s) for ${name || "no profile"}` +
        (name ? `; learn them with: digitlab adapt --from-corrections --profile ${name}` : "; choose a profile to learn from them");
      el("profile-fix").hidden = true;
    } catch (err) { el("profile-status").textContent = err.message; }
  });

  // Number tab: "that's wrong, it is: [____]" stores each digit read wrongly as a correction, cropped
  // from the drawing by the box the reader gave it (so the typed number needs as many digits).
  const numberAnswer = document.querySelector("#mode-number .answer");
  let lastNumber = null;
  if (numberAnswer) {
    const form = document.createElement("form");
    form.id = "number-fix"; form.className = "profile-fix"; form.hidden = true;
    form.innerHTML = `<label>That's wrong, it is: <input id="number-fix-text" inputmode="numeric" pattern="[0-9]{1,12}"
      size="8" required autocomplete="off"></label> <button type="submit">Save correction</button>
      <p id="number-fix-status" class="profile-status" role="status"></p>`;
    numberAnswer.append(form);
    document.addEventListener("digitlab:number", (e) => {
      lastNumber = e.detail && e.detail.digits && e.detail.digits.length ? e.detail : null;
      form.hidden = !lastNumber; el("number-fix-status").textContent = ""; el("number-fix-text").value = "";
    });
    const crop = (img, [x0, y0, x1, y1]) => {
      const m = 4, w = x1 - x0 + 2 * m, h = y1 - y0 + 2 * m;
      const c = Object.assign(document.createElement("canvas"), { width: w, height: h });
      const ctx = c.getContext("2d"); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
      ctx.drawImage(img, x0 - m, y0 - m, w, h, 0, 0, w, h);
      return c.toDataURL("image/png");
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const status = el("number-fix-status"), typed = el("number-fix-text").value.trim(), read = lastNumber;
      if (!read) return;
      if (typed.length !== read.digits.length) {
        status.textContent = `Type ${read.digits.length} digits, one for each digit read (or write the number again).`;
        return;
      }
      const img = new Image();
      await new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = read.image; });
      const name = profile();
      let saved = 0, total = 0;
      try {
        for (let i = 0; i < typed.length; i++) {
          if (Number(typed[i]) === read.digits[i].digit) continue;
          const r = await post("/api/corrections", { image: crop(img, read.digits[i].box), label: Number(typed[i]),
                                                     profile: name, was_read: read.digits[i].digit });
          saved += 1; total = r.corrections;
        }
        status.textContent = saved ? `Saved ${saved} digit(s). ${total} correction(s) for ${name || "no profile"}` +
          (name ? `; learn them with: digitlab adapt --from-corrections --profile ${name}` : "; choose a profile (Digit tab) to learn from them")
          : "That is what was read: nothing to correct.";
      } catch (err) { status.textContent = err.message; }
    });
  }

  nameInput.addEventListener("change", () => {
    localStorage.setItem("digitlab.profile", nameInput.value.trim());
    showProfileAnswer();
  });
  refreshProfiles();
})();
