"""Numbers cut out of a page, as forms, registers and data sets hand them over, read by ``read_number``.

    python benchmarks/crops.py [--split tes] [--numbers 300] [--seed 31] [--readers new,old] [--json PATH]

Each image is one number of 1-4 digits written by one real writer (UCI pendigits pen trajectories,
``digitlab.datasets.pens``), cut out of the page in one of these ways:

- ``tight``: cropped to the ink with 0-3 px of paper, at 40-130 px high;
- ``fixed``: the tight crop stretched to 130x120 px whatever its width, as some data sets store them;
- ``ruled``: cut from a ruled register, the rulings above and below running through the crop;
- ``cell``: cut along a table cell's borders (a register's row number, a form's box), the borders 1-3
  px thick, as dark as the ink or lighter, a few pixels from the digits or touching them;
- ``comb``: a form's comb of boxes, one digit written in each (the same numbers, a lone digit written
  twice), cut along its outline.

Paper from 170 to 235 grey, ink 20-90, noise, then shrunk to 50-100%. Read with the default reader
(``new``) and the CRNN pair (``old``), both in the same run. ``--split tes`` (default): pendigits'
14 test writers, never used to choose anything; ``--split tra``: its 30 training writers (validation).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import cv2
import numpy as np

from digitlab.datasets.pens import Writer, as_paper, compose_line, load_pendigits, pen_lines
from digitlab.digits.preprocess import NoDigitFound
from digitlab.io.files import atomic_write
from digitlab.predictor import read_number
from digitlab.reader.read import get_line_reader

CUTS = ("tight", "fixed", "ruled", "cell", "comb")


def cut(ink: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """A greyscale image (uint8) of one number's ink map cut out as ``how`` says (see the module)."""
    ys, xs = np.nonzero(ink > 0.2)
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = ink.shape
    m = rng.integers(0, 4, 4) if how in ("tight", "fixed") else rng.integers(0, 6, 4) + 4
    c = np.zeros((h + m[0] + m[1], w + m[2] + m[3]), np.float32)
    c[m[0]:m[0] + h, m[2]:m[2] + w] = ink
    H, W = c.shape
    t, dark = int(rng.integers(1, 4)), float(rng.uniform(0.5, 1.0))
    if how in ("ruled", "cell"):
        for y in (int(rng.integers(0, 4)), H - 1 - int(rng.integers(0, 4))):
            cv2.line(c, (0, y), (W - 1, y + int(rng.integers(-2, 3))), dark, t)
    if how == "cell":
        for x in (int(rng.integers(0, 4)), W - 1 - int(rng.integers(0, 4))):
            cv2.line(c, (x, 0), (x + int(rng.integers(-2, 3)), H - 1), dark, t)
    paper, tone = rng.uniform(170, 235), rng.uniform(20, 90)
    img = np.clip(paper - (paper - tone) * np.clip(c, 0, 1) + rng.normal(0, 5, c.shape), 0, 255).astype(np.uint8)
    if how == "fixed":
        return cv2.resize(img, (130, 120), interpolation=cv2.INTER_AREA)
    if how == "tight":
        s = rng.uniform(40, 130) / img.shape[0]
    else:
        s = rng.uniform(0.5, 1.0)
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def comb(text: str, pens, writer_id: str, rng: np.random.Generator) -> np.ndarray:
    """A greyscale image of ``text`` written one digit to a box of a form's comb, cut along its outline."""
    w = Writer.draw(rng)
    box, t, tone = int(w.height * rng.uniform(1.1, 1.4)), int(rng.integers(1, 3)), float(rng.uniform(0.5, 1.0))
    h = box + 2 * t
    cells = []
    for ch in text:
        g = compose_line(ch, pens, writer_id, rng, writer=w, margin=0)
        s = min(1.0, (box - 6) / g.shape[0], (box - 6) / g.shape[1])
        g = cv2.resize(g, (max(1, int(g.shape[1] * s)), max(1, int(g.shape[0] * s))))
        c = np.zeros((h, box), np.float32)
        y0 = int(np.clip((h - g.shape[0]) // 2 + rng.integers(-2, 3), 0, h - g.shape[0]))
        x0 = int(np.clip((box - g.shape[1]) // 2 + rng.integers(-3, 4), 0, box - g.shape[1]))
        c[y0:y0 + g.shape[0], x0:x0 + g.shape[1]] = g
        c[:, :t] = tone
        cells.append(c)
    ink = np.hstack(cells + [np.full((h, t), tone, np.float32)])
    ink[:t], ink[-t:] = np.maximum(ink[:t], tone), np.maximum(ink[-t:], tone)
    return as_paper(np.pad(ink, int(rng.integers(0, 4))), rng)


def number(rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 5))
    return str(int(rng.integers(0, 10))) if n == 1 else str(int(rng.integers(10 ** (n - 1), 10 ** n)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["tes", "tra"], default="tes")
    ap.add_argument("--numbers", type=int, default=300, help="numbers per kind of cut")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--readers", default="new,old")
    ap.add_argument("--json", default="benchmarks/results/crops.json")
    args = ap.parse_args(argv)
    pens = load_pendigits(args.split)
    inks, texts, who = pen_lines(pens, args.numbers, seed=args.seed, make_text=number)
    two_up = [t if len(t) > 1 else t + t for t in texts]  # a comb holds two digits or more: "7" -> "77"
    report = {"data": f"pendigits-orig.{args.split} ({len(pens.by_writer)} writers), {args.numbers} numbers of "
                      f"1-4 digits per cut, seed {args.seed}",
              "machine": f"{platform.machine()}, {platform.processor() or platform.system()}", "results": {}}
    readers = {"new": lambda: get_line_reader(), "old": lambda: get_line_reader("line_reader")}
    for name in args.readers.split(","):
        reader, res = readers[name](), {}
        for k, how in enumerate(CUTS):
            rng = np.random.default_rng(args.seed * 10 + k)
            t, got = time.perf_counter(), []
            truth = two_up if how == "comb" else texts
            for ink, text, wid in zip(inks, truth, who):
                img = comb(text, pens, wid, rng) if how == "comb" else cut(ink, how, rng)
                try:
                    got.append(read_number(img, model=reader)["text"])
                except NoDigitFound:
                    got.append(None)
            wrong = [(w, g) for g, w in zip(got, truth) if g != w]
            res[how] = {"exact": 1 - len(wrong) / len(truth), "none_found": sum(g is None for g in got),
                        "seconds_per_image": (time.perf_counter() - t) / len(texts), "first_errors": wrong[:12]}
            print(f"{name:4s} {how:6s} exact {res[how]['exact']:.1%}, none found {res[how]['none_found']}, "
                  f"{res[how]['seconds_per_image']:.3f} s/image")
        report["results"][name] = res
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=1) + "\n").encode())
    return report


if __name__ == "__main__":
    main()
