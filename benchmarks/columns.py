"""Column sums written with real pen strokes, checked through the whole product.

    python benchmarks/columns.py [--split tes] [--problems 300] [--pages 40] [--seed 5] [--times 0] [--row-sure 0,0.9,0.98]
                                 [--squared] [--tablet] [--no-thickening] [--json PATH]

Each problem is a column addition (two or three operands) or subtraction of 2-4 digit numbers, half
of the results a pupil's slip (``digitlab.datasets.pen_columns.column_problem``), written by one real writer
(UCI pendigits pen trajectories; the operator and the rule drawn in the same pen) with the carry or
borrow marks a pupil writes above the top number on 70% of them (``compose_column``), rendered on
paper (``--squared``: squared paper, grey or blue squares about a digit high; ``--tablet``: written
large in a fine line, as pen tablets export them). ``--times P``: that share are long multiplications instead (a 2-3 digit number times a 1-2
digit one, the partial products written between two rules, ``partial_products``; half of a wrong
result's slips are in a partial product). ``single``: one
problem per image, as a photo of one exercise; ``row``: three problems side
by side on one image. Read by ``check_page``, the CLI's and the API's checker, with the default reader
and with the CRNN pair. ``--split tes`` (default) draws pendigits' 14 test writers; ``--split tra``
its 30 training writers, on which the column finder was tuned.

Reported per variant: problems found as one column sum, read exactly, right verdicts, unsure, false
ticks (a wrong result marked correct) and false crosses (a right result marked wrong: the worst mistake).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from digitlab.arithmetic.check import adds_up
from digitlab.predictor import check_page
from digitlab.datasets.pen_columns import column_problem, compose_column, partial_products
from digitlab.datasets.pens import as_paper, load_pendigits
from digitlab.digits.preprocess import NoDigitFound
from digitlab.io.files import atomic_write
from digitlab.page import ink as page_ink
from digitlab.reader.read import get_line_reader


def score_columns(found: list[list[tuple[str, str, str]]], truths: list[list[str]]) -> dict:
    """Scores for images of column problems: ``found`` per image the (expression, status, layout) of
    each problem checked, ``truths`` per image the problems written ("78+99=177"), left to right."""
    n = sum(len(t) for t in truths)
    got = exact = right = unsure = false_tick = false_cross = 0
    ticked = 0  # right results ticked
    for lines, truth in zip(found, truths):
        cols = [l for l in lines if l[2] == "column"]
        if len(cols) != len(truth):
            continue  # a problem missed or split: nothing to tell the pupil about it
        for (expr, status, _), text in zip(cols, truth):
            ok = adds_up(text)
            got += 1
            exact += expr == text
            right += status in ("correct", "wrong") and (status == "correct") == ok
            unsure += status in ("unsure", "unreadable")
            false_tick += status == "correct" and not ok
            false_cross += status == "wrong" and ok
            ticked += ok and status == "correct"
    n_wrong = sum(not adds_up(t) for truth in truths for t in truth)
    return {"problems": n, "found": got / n, "exact": exact / n, "right_verdicts": right / n, "unsure": unsure / n,
            "false_ticks": false_tick, "false_crosses": false_cross,
            # a pupil's page holds mostly right results: how each kind fares, apart
            "right_results_ticked": ticked / max(1, sum(adds_up(t) for truth in truths for t in truth)),
            "wrong_results_crossed": (right - ticked) / max(1, n_wrong)}


def make(pens, n_images: int, per_image: int, seed: int, times: float = 0.0,
         squared: bool = False, tablet: bool = False) -> tuple[list[np.ndarray], list[list[str]]]:
    rng = np.random.default_rng(seed)
    writers = sorted(pens.by_writer)
    imgs, truths = [], []
    while len(imgs) < n_images:
        wid = writers[int(rng.integers(len(writers)))]
        inks, texts = [], []
        while len(inks) < per_image:
            operands, op, result = column_problem(rng, times=times)
            partials = partial_products(operands, result, rng) if op == "*" else []
            if any(ch not in pens.by_writer[wid] for ch in "".join(operands + partials) + result):
                continue
            inks.append(compose_column(operands, op, result, pens, wid, rng, carries=rng.random() < 0.7,
                                       partials=partials, tablet=tablet))
            texts.append(op.join(operands) + "=" + result)
        h = max(i.shape[0] for i in inks)
        gap = int(rng.uniform(60, 140) * (5 if tablet else 1))  # a tablet's symbols are ~5 times as high
        parts = []
        for ink in inks:
            top = int(rng.integers(0, h - ink.shape[0] + 1))
            parts += [np.pad(ink, ((top, h - ink.shape[0] - top), (0, 0))), np.zeros((h, gap), np.float32)]
        imgs.append(as_paper(np.pad(np.hstack(parts[:-1]), 30), rng, squared=squared))
        truths.append(texts)
    return imgs, truths


def run(reader, imgs, truths) -> dict:
    t = time.perf_counter()
    found = []
    for img in imgs:
        try:
            page = check_page(img, name="columns", model=reader)
            lines = sorted(page.lines, key=lambda l: l.bbox[0])
            found.append([(l.expression, l.status, l.layout) for l in lines])
        except NoDigitFound:
            found.append([])
    out = score_columns(found, truths)
    out["seconds_per_image"] = (time.perf_counter() - t) / max(1, len(imgs))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["tes", "tra"], default="tes")
    ap.add_argument("--problems", type=int, default=300, help="images of one problem")
    ap.add_argument("--pages", type=int, default=40, help="images of three problems side by side")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--times", type=float, default=0.0, help="share of long multiplications (partial products)")
    ap.add_argument("--squared", action="store_true", help="on squared paper (grey or blue squares about a digit high)")
    ap.add_argument("--tablet", action="store_true",
                    help="written large in a fine line, as pen tablets export them (see pens.Writer.tablet)")
    ap.add_argument("--no-thickening", action="store_true", help="never widen thin strokes (page.ink.THIN = 0)")
    ap.add_argument("--readers", default="new,old")
    ap.add_argument("--json", default="benchmarks/results/columns.json")
    ap.add_argument("--row-sure", help="comma-separated values of arithmetic.columns.ROW_SURE to compare "
                    "(default: the shipped one); choose on --split tra")
    ap.add_argument("--partial-slip", help="comma-separated values of arithmetic.columns.PARTIAL_SLIP to compare "
                    "(1: partial products ignored); choose on --split tra")
    args = ap.parse_args(argv)
    from digitlab.arithmetic import columns as checker

    sweep = [("ROW_SURE", checker.ROW_SURE)]
    for setting, values in (("ROW_SURE", args.row_sure), ("PARTIAL_SLIP", args.partial_slip)):
        sweep = [(setting, float(v)) for v in values.split(",")] if values else sweep
    pens = load_pendigits(args.split)
    if args.no_thickening:
        page_ink.THIN = 0.0
    sets = {"single": make(pens, args.problems, 1, args.seed, args.times, args.squared, args.tablet),
            "row": make(pens, args.pages, 3, args.seed + 1, args.times, args.squared, args.tablet)}
    sets = {k: v for k, v in sets.items() if v[0]}
    readers = {"new": lambda: get_line_reader(), "old": lambda: get_line_reader("line_reader")}
    kind = (f", {args.times:.0%} long multiplications" if args.times else "") + (", squared paper" if args.squared else "") \
        + (", pen tablet" if args.tablet else "") + (", no thickening" if args.no_thickening else "")
    report = {"data": f"pendigits-orig.{args.split} ({len(pens.by_writer)} writers), composed column sums{kind}, seed {args.seed}",
              "machine": f"{platform.machine()}, {platform.processor() or platform.system()}", "results": {}}
    for name in args.readers.split(","):
        reader = readers[name]()
        for setting, value in sweep:
            shipped = getattr(checker, setting)
            setattr(checker, setting, value)
            key = name if not (args.row_sure or args.partial_slip) else f"{name}, {setting} {value}"
            report["results"][key] = {}
            for variant, (imgs, truths) in sets.items():
                r = run(reader, imgs, truths)
                report["results"][key][variant] = r
                print(f"{key:4s} {variant:7s} found {r['found']:.1%}, exact {r['exact']:.1%}, right verdicts "
                      f"{r['right_verdicts']:.1%}, unsure {r['unsure']:.1%}, false ticks {r['false_ticks']}, "
                      f"false crosses {r['false_crosses']} of {r['problems']}, {r['seconds_per_image']:.3f} s/image",
                      flush=True)
            setattr(checker, setting, shipped)
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=1) + "\n").encode())
    return report


if __name__ == "__main__":
    main()
