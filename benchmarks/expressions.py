"""Written expressions (`digitlab calc`) in real pen strokes: read exactly, and worked out right.

    python benchmarks/expressions.py [--split tes|tra|uji] [--n 200] [--seed 99] [--parens 0.3] [--without-slash]
                                     [--tablet] [--no-thickening] [--json PATH]

Each image is one writer's expression of 2 to 4 operations on numbers of 1 or 2 digits ("21*3+41*7-61"),
a third of them with an answer written after "=" (right or a slip), composed from the pen
trajectories of UCI pendigits' writers (``--split tes``: the 14 test writers, never used to choose
anything; ``tra``: the 30 training writers; ``uji``: UJI Pen Characters' 11 writers, their own "x" for
a times sign; ``--tablet``: written large in a fine line) as ``benchmarks/real_pens.py`` composes lines, and read
by ``predictor.calculate`` (what `digitlab calc` prints) with the default reader: with an answer
written, the reading is the one its verdict stands on (the arithmetic prior, as ``check``). Reported:
expressions read exactly, values right (the reading may differ and still give the value), and
seconds per image.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from digitlab.arithmetic.grammar import ParseError, evaluate
from digitlab.datasets.pens import load_pendigits, load_uji, pen_lines
from digitlab.digits.preprocess import NoDigitFound
from digitlab.io.files import atomic_write
from digitlab.page import ink as page_ink
from digitlab.predictor import calculate
from digitlab.reader.read import get_line_reader

sys.path.insert(0, str(Path(__file__).parent))
from real_pens import images  # noqa: E402


def expression(rng: np.random.Generator, parens: float = 0.0) -> str:
    """2-4 operations on numbers of 1-2 digits; a third with an answer (right, or off by one); with
    ``parens``, that share with a run of two or more numbers in parentheses ("(7+9*3)/2")."""
    while True:
        n = int(rng.integers(2, 5))
        parts = [str(int(rng.integers(1, 100 if rng.random() < 0.6 else 10))) for _ in range(n + 1)]
        ops = [str(rng.choice(list("+-*/"))) for _ in parts[1:]]
        if parens and rng.random() < parens:
            i = int(rng.integers(0, n))
            j = int(rng.integers(i + 1, n + 1))
            j = n - 1 if (i, j) == (0, n) else j  # not the whole expression
            parts[i], parts[j] = "(" + parts[i], parts[j] + ")"
        text = parts[0] + "".join(o + p for o, p in zip(ops, parts[1:]))
        try:
            value = evaluate(text)
        except ParseError:
            continue
        if value.denominator != 1 or value < 0:
            continue  # pupils' expressions come out whole
        if rng.random() < 1 / 3:
            text += f"={int(value) + int(rng.choice([0, 0, 1, -1]))}"
        return text


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["tes", "tra", "uji"], default="tes")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--parens", type=float, default=0.0, help="share of expressions with parentheses")
    ap.add_argument("--without-slash", action="store_true", help="read without the slash's lean (reader/slash.py)")
    ap.add_argument("--tablet", action="store_true",
                    help="written large in a fine line, as pen tablets export them (see pens.Writer.tablet)")
    ap.add_argument("--no-thickening", action="store_true", help="never widen thin strokes (page.ink.THIN = 0)")
    ap.add_argument("--json", default="benchmarks/results/expressions.json")
    args = ap.parse_args(argv)
    if args.no_thickening:
        page_ink.THIN = 0.0
    if args.split == "uji":
        pens, x_from, source = load_uji(chars="0123456789"), load_uji(chars="x"), "UJI Pen Characters v1"
    else:
        pens, x_from, source = load_pendigits(args.split), None, f"pendigits-orig.{args.split}"
    writers = sorted(pens.by_writer)
    inks, texts, _ = pen_lines(pens, args.n, seed=args.seed, x_from=x_from, make_text=lambda rng: expression(rng, args.parens),
                              tablet=args.tablet)
    reader = get_line_reader()
    if args.without_slash:
        reader.metadata["slash"] = dict(reader.metadata.get("slash") or {}, weight=0.0)
    exact = value_right = none = 0
    misread, with_parens = [], []  # (read exactly) for the expressions with parentheses
    t0 = time.perf_counter()
    for img, text in zip(images(inks, args.seed), texts):
        try:
            got = calculate(img, model=reader)["expression"]
        except NoDigitFound:
            none += 1
            continue
        exact += got == text
        if "(" in text:
            with_parens.append(got == text)
        try:
            value_right += evaluate(got.split("=")[0]) == evaluate(text.split("=")[0])
        except ParseError:
            pass
        if got != text and len(misread) < 20:
            misread.append({"truth": text, "read": got})
    seconds = (time.perf_counter() - t0) / len(texts)
    report = {"data": f"{source} ({len(writers)} writers), {args.n} expressions, seed {args.seed}"
                      + (", read without the slash's lean" if args.without_slash else "")
                      + (", pen tablet" if args.tablet else "") + (", no thickening" if args.no_thickening else ""),
              "machine": f"{platform.machine()}, {platform.system()}", "exact": exact / len(texts),
              "value_right": value_right / len(texts), "none_found": none, "seconds_per_image": seconds,
              **({"parentheses": {"expressions": len(with_parens), "exact": sum(with_parens) / len(with_parens)}}
                 if with_parens else {}),
              "misread": misread}
    print(f"expressions: exact {report['exact']:.1%}, value right {report['value_right']:.1%}, none found {none}, "
          f"{seconds:.3f} s/image" + (f"; with parentheses {len(with_parens)}, exact {sum(with_parens) / len(with_parens):.1%}"
                                      if with_parens else ""))
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=1) + "\n").encode())
    return report


if __name__ == "__main__":
    main()
