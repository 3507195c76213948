"""Homework-checking benchmark on held-out pages: writers and a generator the reader never saw.

    python benchmarks/worksheets.py [--pages 20] [--numbers 200] [--seed 0] [--variants clean touching notebook phone numbers]

Glyphs come only from held-out sources (MNIST test, optdigits ``windep``'s 13 unseen writers, the MDAS
operator test split) and pages from ``pagegen.py``, whose spacing, sizes and problems differ from the
reader's training generator. Variants:

- ``clean``: scanned A4, one column, dark pen, symbols spaced as usual;
- ``touching``: the same, neighbouring symbols touching or overlapping;
- ``notebook``: phone photos of exercise-book pages: squared or ruled paper with a margin line, blue or
  black pen, two columns of 6 lines, the sheet on a table in perspective, shadow, blur, JPEG;
- ``phone``: harsher phone photos from a second photo model (``digitlab.synthetic.phonegen``, written after the
  page pipeline was tuned, to find where it breaks): the sheet filling most of the frame, wood, pale or
  dark tables, open books with a binding shadow, a bowed page, strong perspective, 5 mm squares or
  8 mm rulings at the photo's own scale (symbols 18-70 px), drifting lines, 5-9 lines a column, hard
  shadows, colour casts, motion blur, JPEG down to quality 40, 1,200-3,000 px;
- ``numbers``: written numbers of 2-6 digits (neighbours often touching) through ``read_number``.

Per variant: right verdicts (status = the truth's correct/wrong), exact reads, unsure share (unsure or
unreadable), confident-verdict accuracy (of lines given a verdict, the share right), false crosses (a
right answer marked wrong) and seconds per page. A truth line counts as missed when no line found
overlaps it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitlab.synthetic import pagegen, phonegen
from digitlab.arithmetic import check_page
from digitlab.reader.glyphs import GlyphBank
from digitlab.predictor import read_number
from digitlab.reader.read import get_line_reader


def score_page(result, truths) -> list[dict]:
    rows = []
    for t in truths:
        best = max(result.lines, key=lambda l: pagegen.box_iou(l.bbox, t.box), default=None)
        if best is None or pagegen.box_iou(best.bbox, t.box) < 0.25:
            rows.append({"truth": t.text, "read": None, "status": "missed", "want": "correct" if t.correct else "wrong"})
            continue
        rows.append({"truth": t.text, "read": best.expression, "status": best.status,
                     "want": "correct" if t.correct else "wrong", "confidence": best.confidence})
    return rows


def summarise(rows: list[dict], seconds: list[float], extra: int) -> dict:
    n = len(rows)
    decided = [r for r in rows if r["status"] in ("correct", "wrong")]
    return {
        "lines": n,
        "right_verdicts": sum(r["status"] == r["want"] for r in rows) / n,
        "exact_reads": sum(r["read"] == r["truth"] for r in rows) / n,
        "unsure": sum(r["status"] in ("unsure", "unreadable") for r in rows) / n,
        "missed": sum(r["status"] == "missed" for r in rows) / n,
        "confident_accuracy": (sum(r["status"] == r["want"] for r in decided) / len(decided)) if decided else None,
        "false_crosses": sum(r["status"] == "wrong" and r["want"] == "correct" for r in rows),
        "extra_lines": extra,
        "seconds_per_page": float(np.mean(seconds)),
        "seconds_per_page_max": float(np.max(seconds)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20, help="pages per page variant")
    ap.add_argument("--numbers", type=int, default=200, help="written numbers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="+", default=["clean", "touching", "notebook", "phone", "numbers"],
                    choices=["clean", "touching", "notebook", "phone", "numbers"])
    ap.add_argument("--model", help="line-reader model file (default: the shipped one)")
    ap.add_argument("--json", default="benchmarks/results/worksheets.json")
    ap.add_argument("--save-pages", help="folder to save the generated pages for a look")
    ap.add_argument("--careless", type=float, default=0.0,
                    help="share of the wrong answers that are any number at all rather than a slip (default 0: "
                         "every wrong answer is off by 1, 10 or a few)")
    args = ap.parse_args()
    bank = GlyphBank.load("heldout", seed=args.seed)
    model = get_line_reader(args.model)
    # One untimed page first: the first read loads models and warms caches, which a server does once.
    check_page(pagegen.clean_page(bank, np.random.default_rng(10**6 + args.seed), touching=False)[0], model=model)
    results, misreads = {}, {}
    for variant in args.variants:
        rng = np.random.default_rng([args.seed, sum(map(ord, variant))])
        rows, seconds, extra, bad = [], [], 0, []
        if variant == "numbers":
            for i in tqdm(range(args.numbers), desc=variant):
                data, text = pagegen.number_image(bank, rng)
                t0 = time.perf_counter()
                try:
                    got = read_number(data, model=model)["text"]
                except Exception as exc:  # noqa: BLE001 - a benchmark records every failure
                    got = f"error: {exc}"
                seconds.append(time.perf_counter() - t0)
                rows.append({"truth": text, "read": got})
                if got != text and len(bad) < 20:
                    bad.append({"truth": text, "read": got})
            results[variant] = {"numbers": len(rows), "exact_reads": sum(r["read"] == r["truth"] for r in rows) / len(rows),
                                "seconds_per_image": float(np.mean(seconds))}
            misreads[variant] = bad
            continue
        for p in tqdm(range(args.pages), desc=variant):
            if variant == "notebook":
                data, truths, _ = pagegen.notebook_photo(bank, rng, careless=args.careless)
            elif variant == "phone":
                data, truths, _ = phonegen.phone_photo(bank, rng, careless=args.careless)
            else:
                data, truths = pagegen.clean_page(bank, rng, touching=variant == "touching", careless=args.careless)
            if args.save_pages:
                Path(args.save_pages).mkdir(parents=True, exist_ok=True)
                (Path(args.save_pages) / f"{variant}{p:03d}.{'jpg' if variant in ('notebook', 'phone') else 'png'}").write_bytes(data)
            t0 = time.perf_counter()
            result = check_page(data, model=model)
            seconds.append(time.perf_counter() - t0)
            page_rows = score_page(result, truths)
            rows += page_rows
            extra += max(0, len(result.lines) - len(truths))
            bad += [dict(r, page=p) for r in page_rows if r["read"] != r["truth"]][: max(0, 25 - len(bad))]
        results[variant] = summarise(rows, seconds, extra)
        misreads[variant] = bad
    out = {"data": "held-out: MNIST test digits, optdigits windep (13 unseen writers), MDAS operator test split; "
                   "pages from digitlab.synthetic.pagegen and digitlab.synthetic.phonegen (not the reader's training generator)",
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpus": __import__("os").cpu_count(),
           "seed": args.seed, "careless": args.careless, "results": results, "misreads": misreads}
    print(f"{'variant':<10} {'lines':>6} {'right verdict':>13} {'exact':>7} {'unsure':>7} {'confident acc':>13} "
          f"{'false ✘':>8} {'missed':>7} {'s/page':>7}")
    for v, r in results.items():
        if v == "numbers":
            print(f"{v:<10} {r['numbers']:6d} {'':>13} {r['exact_reads']:7.1%} {'':>7} {'':>13} {'':>8} {'':>7} "
                  f"{r['seconds_per_image']:7.3f}")
            continue
        ca = f"{r['confident_accuracy']:.1%}" if r["confident_accuracy"] is not None else "-"
        print(f"{v:<10} {r['lines']:6d} {r['right_verdicts']:13.1%} {r['exact_reads']:7.1%} {r['unsure']:7.1%} "
              f"{ca:>13} {r['false_crosses']:8d} {r['missed']:7.1%} {r['seconds_per_page']:7.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
