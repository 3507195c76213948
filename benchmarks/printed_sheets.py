"""Printed-worksheet grading benchmark: held-out handwriting in the boxes, phone photos, graded end to end.

    python benchmarks/printed_sheets.py [--pages 20] [--seed 0] [--bank heldout] [--overflow 0.3] [--inside-only]
                                        [--columns] [--calibrate] [--alone] [--out PATH]

Each page is a 40-problem sheet made by ``digitlab.worksheets.layout`` (the options vary by page:
all four operations, +/- up to 100 with missing operands, x and ÷ with remainders), filled in by one
"pupil" whose digits come from held-out glyphs (MNIST *test*, optdigits *windep*; ``--bank val`` uses
the validation glyphs instead, for choosing thresholds) rendered by ``pagegen.render_text``: about 10%
of the answers left blank and 25% wrong. The page is rendered at 200 dpi, then photographed: warped
in perspective onto a table, rotated, uneven light and a shadow, blur, noise, JPEG
(``worksheets.simulate``). Every photo goes through ``grade_photo`` (markers, QR id, boxes, reader).

Figures, over all answers (problems):

- graded right: of the answers given a mark (correct / wrong / blank), the share whose mark is the
  truth's (what the pupil wrote deserves);
- unsure: the share left to the teacher;
- false ticks / false crosses: a wrong answer marked correct / a right answer marked wrong;
- seconds per page (median, after the first page which loads the model).

``--calibrate`` also prints graded-right / unsure over a grid of the marking thresholds (readings
are kept, only the marking is redone). Results go to benchmarks/results/printed_sheets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from digitlab.predictor import grade_photo
from digitlab.reader.glyphs import GlyphBank
from digitlab.reader.read import get_line_reader
from digitlab.worksheets import grade as G
from digitlab.worksheets.layout import key_of, layout, make_problems, new_sheet_id
from digitlab.worksheets.simulate import fill, phone_photo, pupil_answers

VARIANTS = [
    {"ops": ["+", "-", "x", "/"], "max_value": 20},
    {"ops": ["+", "-"], "max_value": 100, "missing": True},
    {"ops": ["x", "/"], "max_value": 12, "remainder": True},
    {"ops": ["+", "-", "x", "/"], "max_value": 50, "remainder": True, "missing": True},
]
COLUMNS = [{"ops": ["+", "-", "x"], "max_value": 999, "columns": True}]  # --columns: sheets of column sums


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bank", default="heldout", choices=["heldout", "val"])
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--overflow", type=float, default=0.0,
                    help="share of answers written at full size over the box's edge (simulate.fill)")
    ap.add_argument("--columns", action="store_true", help="sheets of column sums (+ - x, up to 999; --problems 24 at most)")
    ap.add_argument("--inside-only", action="store_true",
                    help="read each box's inside alone, not the writing that runs over its edge (for comparison)")
    ap.add_argument("--alone", action="store_true", help="the shipped line reader without its partner")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "printed_sheets.json"))
    ap.add_argument("--save-photos", metavar="DIR", help="keep the photos (and annotated pages) here")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    bank = GlyphBank.load(args.bank)
    model = get_line_reader(ensemble=not args.alone)
    rows, seconds, raw = [], [], []
    conf, misgraded = {}, []
    failed = 0
    for i in range(args.pages):
        variants = COLUMNS if args.columns else VARIANTS
        v = variants[i % len(variants)]
        problems = make_problems(args.problems, seed=int(rng.integers(1 << 31)), **v)
        sheet = layout(problems, new_sheet_id(), f"Benchmark {i + 1}")
        key = key_of(sheet)
        answers = pupil_answers(key, rng)
        page = fill(sheet, answers, bank, rng, dpi=200, overflow=args.overflow)
        photo = phone_photo(page, rng, out_side=int(rng.integers(1800, 2600)))
        if args.save_photos:
            Path(args.save_photos).mkdir(parents=True, exist_ok=True)
            Path(args.save_photos, f"page{i:03d}.jpg").write_bytes(photo)
        t0 = time.perf_counter()
        try:
            g = grade_photo(photo, name=f"page{i}", key=key, model=model, keep_crops=bool(args.save_photos),
                              overflow=not args.inside_only)
        except Exception as exc:  # a page the grader could not find counts against it
            print(f"page {i}: {exc}")
            failed += 1
            for w in answers:
                rows.append((w.truth, "unsure"))
            continue
        seconds.append(time.perf_counter() - t0)
        if args.save_photos:
            Path(args.save_photos, f"page{i:03d}_marked.png").write_bytes(G.annotate(g))
        truth = {w.problem_id: w for w in answers}
        for q in g.result["problems"]:
            rows.append((truth[q["id"]].truth, q["status"]))
            if q["status"] not in ("unsure", truth[q["id"]].truth) and len(misgraded) < 40:
                misgraded.append({"page": i, "problem": q["id"], "written": truth[q["id"]].written,
                                  "expected": q["expected"], "read": q["read"], "status": q["status"],
                                  "confidence": q["confidence"]})
                for k in range(len(q["expected"])) if args.save_photos else ():
                    Path(args.save_photos, f"page{i:03d}_p{q['id']}_{k}.png").write_bytes(g.crops[(q["id"], k)])
            conf[(truth[q["id"]].truth, q["status"])] = conf.get((truth[q["id"]].truth, q["status"]), 0) + 1
        if args.calibrate:
            raw.append((g, truth))
        print(f"page {i + 1:3d}/{args.pages}: {g.result['score']}/{g.result['total']} correct, "
              f"{g.result['unsure']} unsure, {seconds[-1]:.2f} s", flush=True)

    n = len(rows)
    marked = [(t, s) for t, s in rows if s != "unsure"]
    right = sum(t == s for t, s in marked)
    result = {
        "pages": args.pages, "problems_per_page": args.problems, "answers": n, "bank": args.bank, "seed": args.seed, "overflow": args.overflow,
        "read": "box's inside alone" if args.inside_only else "whole, past the box's edge",
        "layout": "column sums" if args.columns else "lines",
        "pages_not_found": failed,
        "graded_right_rate": round(right / max(1, len(marked)), 4),
        "graded_right_of_all": round(right / max(1, n), 4),
        "unsure_rate": round(sum(s == "unsure" for _, s in rows) / max(1, n), 4),
        "false_ticks": sum(t != "correct" and s == "correct" for t, s in rows),
        "false_crosses": sum(t == "correct" and s in ("wrong", "blank") for t, s in rows),
        "confusion": {f"{t}->{s}": c for (t, s), c in sorted(conf.items())},
        "seconds_per_page_median": round(float(np.median(seconds[1:] or seconds)), 3) if seconds else None,
        "seconds_first_page": round(seconds[0], 3) if seconds else None,
        "thresholds": {"correct": G.T_CORRECT, "wrong": G.T_WRONG, "expected": G.T_EXPECTED},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"load {os.getloadavg()[0]:.1f}",
        "reader": str(getattr(model, "metadata", {}).get("steps", "")),
        "ensemble": [] if args.alone else list(model.metadata.get("ensemble") or []),
        "misgraded": misgraded,
    }
    print()
    print(f"{'answers':>9} {'graded right':>13} {'unsure':>8} {'false ticks':>12} {'false crosses':>14} {'s/page':>7}")
    print(f"{n:9d} {result['graded_right_rate']:13.2%} {result['unsure_rate']:8.2%} {result['false_ticks']:12d} "
          f"{result['false_crosses']:14d} {result['seconds_per_page_median'] or 0:7.2f}")
    print("truth -> mark:", result["confusion"])
    if args.calibrate and raw:
        result["calibration"] = calibrate(raw)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


def calibrate(raw) -> list[dict]:
    """Graded right / unsure for other thresholds (needs the readings: re-grades with keep_crops=False)."""
    out = []
    for tc in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for tw in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            for te in (0.02, 0.05, 0.1, 0.2):
                rows = []
                for g, truth in raw:
                    for q in g.result["problems"]:
                        parts = []
                        for k, r in enumerate(g.readings[q["id"]]):
                            if r is None:
                                parts.append(("blank", 1.0))
                            else:
                                parts.append(_mark(r, q["expected"][k], tc, tw, te))
                        rows.append((truth[q["id"]].truth, G.mark_problem(parts)[0]))
                marked = [(t, s) for t, s in rows if s != "unsure"]
                out.append({"t_correct": tc, "t_wrong": tw, "t_expected": te,
                            "graded_right": round(sum(t == s for t, s in marked) / max(1, len(marked)), 4),
                            "unsure": round(sum(s == "unsure" for _, s in rows) / len(rows), 4)})
    best = sorted(out, key=lambda r: (-(r["graded_right"] >= 0.99), r["unsure"] if r["graded_right"] >= 0.99 else -r["graded_right"]))
    print("calibration (best 8):")
    for r in best[:8]:
        print("  ", r)
    return out


def _mark(r, expected, tc, tw, te):
    old = G.T_CORRECT, G.T_WRONG, G.T_EXPECTED
    G.T_CORRECT, G.T_WRONG, G.T_EXPECTED = tc, tw, te
    try:
        return G.mark_part(r, expected)
    finally:
        G.T_CORRECT, G.T_WRONG, G.T_EXPECTED = old


if __name__ == "__main__":
    main()
