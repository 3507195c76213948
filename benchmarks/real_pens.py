"""Lines and numbers written with real pen strokes, read through the whole product, old and new reader.

    python benchmarks/real_pens.py [--split tes] [--lines 600] [--numbers 400] [--seed 99] [--messy 0]
                                   [--squared] [--tablet] [--no-thickening] [--json PATH]

Each sample is one image, as a user would send it: a line "a op b = c" (about half of the answers
wrong, 20% of those any number at all) or a number of 1-6 digits, composed from the real pen
trajectories of one writer (``digitlab.datasets.pens``: UCI pendigits; the operators are drawn in the
same pen; ``--messy 0.4``: written as people write when nothing rules the line, each symbol up to 0.4
of its height off the baseline, the "=" lower, the answer climbing or falling), rendered on paper
(``--squared``: squared paper, the squares about a digit high; ``--tablet``: written large in a fine
line, symbols 100-300 px high in a 1-3 px pen, as pen tablets export them) and read by
``check_page`` / ``read_number`` with

- ``new``: the default reader (PP-OCRv6 fused with the two CRNNs, ``reader/ppocr.py``), and
- ``old``: the CRNN pair alone (``line_reader`` with its partner, test-time augmentation and the
  checker's calibrated second opinion), the reader before PP-OCR,

in the same run on the same machine. ``--split tes`` (default) draws pendigits' 14 *test* writers,
never used to choose anything; ``--split tra`` its 30 training writers (validation); ``--split uji``
the 11 writers of UJI Pen Characters (Spain: flagged 1s, crossed 7s), never used to choose anything. Reported: exact
readings, right verdicts, unsure, false ticks (a wrong answer marked correct), false crosses (a right
answer marked wrong: the worst mistake), and seconds per image.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from digitlab.arithmetic.check import adds_up
from digitlab.predictor import check_page
from digitlab.datasets.pens import as_paper, load_pendigits, load_uji, pen_lines
from digitlab.digits.preprocess import NoDigitFound
from digitlab.io.files import atomic_write
from digitlab.page import ink as page_ink
from digitlab.predictor import read_number
from digitlab.reader.read import get_line_reader


def score_lines(results: list[tuple[list[str], list[str]]], texts: list[str]) -> dict:
    """Verdict counts for one-line images: ``results`` are (expressions, statuses) per image."""
    n = len(texts)
    exact = right = unsure = false_tick = false_cross = missed = 0
    for (expr, status), text in zip(results, texts):
        truth = adds_up(text)
        if len(status) != 1:
            missed += 1  # no line, or the line cut in two: nothing the pupil can be told
            continue
        exact += expr[0] == text
        s = status[0]
        right += (s == "correct") == truth and s in ("correct", "wrong")
        unsure += s in ("unsure", "unreadable")
        false_tick += s == "correct" and not truth
        false_cross += s == "wrong" and truth
    return {"images": n, "exact": exact / n, "right_verdicts": right / n, "unsure": unsure / n,
            "false_ticks": false_tick, "false_crosses": false_cross, "not_one_line": missed}


def images(inks: list[np.ndarray], seed: int, squared: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [as_paper(np.pad(ink, 24), rng, squared=squared) for ink in inks]


def run(reader, line_imgs, line_texts, number_imgs, number_texts) -> dict:
    out: dict = {}
    t = time.perf_counter()
    res = []
    for img in line_imgs:
        try:
            page = check_page(img, name="line", model=reader)
            res.append(([l.expression for l in page.lines], [l.status for l in page.lines]))
        except NoDigitFound:
            res.append(([], []))
    out["lines"] = score_lines(res, line_texts)
    out["lines"]["seconds_per_image"] = (time.perf_counter() - t) / max(1, len(line_imgs))
    t = time.perf_counter()
    got = []
    for img in number_imgs:
        try:
            got.append(read_number(img, model=reader)["text"])
        except NoDigitFound:
            got.append(None)
    out["numbers"] = {"images": len(number_imgs), "exact": float(np.mean([g == w for g, w in zip(got, number_texts)])),
                      "none_found": sum(g is None for g in got),
                      "seconds_per_image": (time.perf_counter() - t) / max(1, len(number_imgs))}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["tes", "tra", "uji"], default="tes",
                    help="pendigits' test or training writers, or UJI Pen Characters' 11 writers (Spain)")
    ap.add_argument("--lines", type=int, default=600)
    ap.add_argument("--numbers", type=int, default=400)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--messy", type=float, default=0.0, help="symbols off the baseline, in heights (see pens.compose_line)")
    ap.add_argument("--squared", action="store_true", help="on squared paper (see pens.as_paper)")
    ap.add_argument("--tablet", action="store_true",
                    help="written large in a fine line, as pen tablets export them (see pens.Writer.tablet)")
    ap.add_argument("--no-thickening", action="store_true",
                    help="never widen thin strokes (page.ink.THIN = 0), as the page was read before it did")
    ap.add_argument("--readers", default="new,old")
    ap.add_argument("--json", default="benchmarks/results/real_pens.json")
    args = ap.parse_args(argv)
    if args.no_thickening:
        page_ink.THIN = 0.0
    if args.split == "uji":  # European hands; a "*" is the writer's own "x"
        pens, x_from, source = load_uji(chars="0123456789"), load_uji(chars="x"), "UJI Pen Characters v1"
    else:
        pens, x_from, source = load_pendigits(args.split), None, f"pendigits-orig.{args.split}"
    inks, line_texts, _ = pen_lines(pens, args.lines, seed=args.seed, messy=args.messy, x_from=x_from, tablet=args.tablet)
    line_imgs = images(inks, args.seed, args.squared)
    inks, number_texts, _ = pen_lines(pens, args.numbers, seed=args.seed + 1, kind="number", messy=args.messy,
                                      tablet=args.tablet)
    number_imgs = images(inks, args.seed + 1, args.squared)
    readers = {"new": lambda: get_line_reader(), "old": lambda: get_line_reader("line_reader")}
    report = {"data": f"{source} ({len(pens.by_writer)} writers), composed lines and numbers, seed {args.seed}"
                        + (f", messy {args.messy}" if args.messy else "") + (", squared paper" if args.squared else "")
                        + (", pen tablet" if args.tablet else "") + (", no thickening" if args.no_thickening else ""),
              "machine": f"{platform.machine()}, {platform.processor() or platform.system()}", "results": {}}
    for name in args.readers.split(","):
        r = run(readers[name](), line_imgs, line_texts, number_imgs, number_texts)
        report["results"][name] = r
        ln, nm = r["lines"], r["numbers"]
        print(f"{name:4s} lines: exact {ln['exact']:.1%}, right verdicts {ln['right_verdicts']:.1%}, unsure {ln['unsure']:.1%}, "
              f"false ticks {ln['false_ticks']}, false crosses {ln['false_crosses']}, not one line {ln['not_one_line']}, "
              f"{ln['seconds_per_image']:.3f} s/image | numbers: exact {nm['exact']:.1%}, none found {nm['none_found']}, "
              f"{nm['seconds_per_image']:.3f} s/image")
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=1) + "\n").encode())
    return report


if __name__ == "__main__":
    main()
