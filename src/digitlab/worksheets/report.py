"""The class's results from the database: a table of pupils, per-operation error rates, most-missed problems.

Names are the ones typed by the teacher (``grade --name`` or ``rename``); a pupil without one is
"pupil N" (N in grading order). Unsure answers count neither as right nor as wrong in the error rates.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections import defaultdict

from .layout import OP_TEXT

OP_NAMES = {"+": "addition", "-": "subtraction", "x": "multiplication", "/": "division"}


def class_report(db, sheet_id: str | None = None) -> dict:
    gradings = db.gradings(sheet_id)
    answers = db.answers(sheet_id)
    by_grading = defaultdict(list)
    for a in answers:
        by_grading[a["grading_id"]].append(a)
    rows = []
    for n, g in enumerate(gradings, 1):
        ans = by_grading[g["id"]]
        rows.append({"grading_id": g["id"], "pupil": g["pupil_name"] or f"pupil {n}", "named": bool(g["pupil_name"]),
                     "sheet_id": g["sheet_id"], "score": g["score"], "total": g["total"],
                     "percent": round(100 * g["score"] / max(1, g["total"]), 1),
                     "unsure": sum(a["status"] == "unsure" for a in ans),
                     "blank": sum(a["status"] == "blank" for a in ans), "time": g["graded_at"], "file": g["file"]})
    ops = {}
    for op in ("+", "-", "x", "/"):
        sel = [a for a in answers if a["op"] == op]
        if not sel:
            continue
        decided = [a for a in sel if a["status"] != "unsure"]
        missed = sum(a["status"] in ("wrong", "blank") for a in decided)
        ops[op] = {"name": OP_NAMES[op], "answers": len(sel), "missed": missed,
                   "error_rate": round(missed / len(decided), 4) if decided else None}
    miss = defaultdict(lambda: [0, 0])
    for a in answers:
        k = (a["sheet_id"], a["id"], a["question"], " R ".join(a["expected"]))
        miss[k][1] += 1
        miss[k][0] += a["status"] in ("wrong", "blank")
    most = sorted(((m, n, k) for k, (m, n) in miss.items() if m), key=lambda t: (-t[0] / t[1], -t[0], t[2]))[:10]
    most_missed = [{"sheet_id": k[0], "problem": k[1], "question": k[2], "answer": k[3], "missed": m, "of": n}
                   for m, n, k in most]
    return {"sheet_id": sheet_id, "pupils": rows, "operations": ops, "most_missed": most_missed,
            "mean_percent": round(sum(r["percent"] for r in rows) / len(rows), 1) if rows else None}


def text_table(rep: dict) -> str:
    if not rep["pupils"]:
        return "no graded sheets yet" + (f" for sheet {rep['sheet_id']}" if rep["sheet_id"] else "")
    w = max(12, *(len(r["pupil"]) for r in rep["pupils"]))
    lines = [f"{'#':>4}  {'pupil':<{w}}  {'sheet':<11}  {'score':>7}  {'%':>5}  {'unsure':>6}  time"]
    for r in rep["pupils"]:
        lines.append(f"{r['grading_id']:>4}  {r['pupil']:<{w}}  {r['sheet_id']:<11}  {r['score']:>3}/{r['total']:<3}  "
                     f"{r['percent']:>5.1f}  {r['unsure']:>6}  {r['time']}")
    lines.append("")
    lines.append("errors by operation: " + ", ".join(
        f"{o['name']} {o['error_rate']:.0%} ({o['missed']} of {o['answers']})" if o["error_rate"] is not None
        else f"{o['name']} -" for o in rep["operations"].values()))
    if rep["most_missed"]:
        lines.append("most missed: " + "; ".join(f"#{m['problem']} {m['question'].replace('?', '_')} "
                                                 f"({m['missed']}/{m['of']})" for m in rep["most_missed"][:5]))
    return "\n".join(lines)


def _cell(value):
    """Typed text (names, file names) as a spreadsheet shows it, never as a formula it would run."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(rep: dict, path) -> None:
    from ..io.files import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["grading_id", "pupil", "sheet_id", "score", "total", "percent", "unsure", "blank", "graded_at", "file"])
    for r in rep["pupils"]:
        w.writerow([r["grading_id"], _cell(r["pupil"]), _cell(r["sheet_id"]), r["score"], r["total"], r["percent"],
                    r["unsure"], r["blank"], r["time"], _cell(r["file"])])
    atomic_write(path, buf.getvalue().encode())


def plot_png(rep: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2.2, 1]})
    names = [r["pupil"] for r in rep["pupils"]]
    a1.bar(range(len(names)), [r["percent"] for r in rep["pupils"]], color="#3a7bd5")
    a1.set_xticks(range(len(names)), names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                  fontsize=8)
    a1.set_ylim(0, 100)
    a1.set_ylabel("score (%)")
    a1.set_title("Scores")
    ops = [(OP_TEXT[o], v["error_rate"] or 0) for o, v in rep["operations"].items()]
    a2.bar([o for o, _ in ops], [100 * e for _, e in ops], color="#d5573a")
    a2.set_ylim(0, 100)
    a2.set_ylabel("answers missed (%)")
    a2.set_title("Errors by operation")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_html(rep: dict, path) -> None:
    from ..io.files import atomic_write

    e = html.escape
    img = base64.b64encode(plot_png(rep)).decode() if rep["pupils"] else ""
    rows = "".join(f"<tr><td>{e(r['pupil'])}</td><td>{e(r['sheet_id'])}</td><td>{r['score']}/{r['total']}</td>"
                   f"<td>{r['percent']:.0f}%</td><td>{r['unsure']}</td><td>{e(r['time'])}</td></tr>" for r in rep["pupils"])
    ops = "".join(f"<tr><td>{e(v['name'])}</td><td>{v['answers']}</td><td>{v['missed']}</td>"
                  f"<td>{'' if v['error_rate'] is None else format(v['error_rate'], '.0%')}</td></tr>"
                  for v in rep["operations"].values())
    most = "".join(f"<tr><td>{e(m['sheet_id'])} #{m['problem']}</td><td>{e(m['question'].replace('?', '_'))}</td>"
                   f"<td>{e(m['answer'])}</td><td>{m['missed']} of {m['of']}</td></tr>" for m in rep["most_missed"])
    title = "Class results" + (f" - sheet {e(rep['sheet_id'])}" if rep["sheet_id"] else "")
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:left}}th{{background:#f3f3f3}}</style></head><body>
<h1>{title}</h1><p>{len(rep['pupils'])} graded sheet(s); mean score {rep['mean_percent'] if rep['mean_percent'] is not None else '-'}%.</p>
{f'<img alt="scores and errors by operation" src="data:image/png;base64,{img}">' if img else ''}
<h2>Pupils</h2><table><tr><th>pupil</th><th>sheet</th><th>score</th><th>%</th><th>unsure</th><th>graded</th></tr>{rows}</table>
<h2>Errors by operation</h2><table><tr><th>operation</th><th>answers</th><th>missed</th><th>error rate</th></tr>{ops}</table>
<h2>Most missed problems</h2><table><tr><th>problem</th><th>question</th><th>answer</th><th>missed</th></tr>{most}</table>
</body></html>"""
    atomic_write(path, doc.encode())
