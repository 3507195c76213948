"""Profiles on whole lines: does a handwriting profile make `read`/`check` better?

A profile is built from k examples per digit of optdigits ``windep`` (13 writers neither the CNN nor
the line reader ever saw), exactly as ``digitlab adapt`` does. Arithmetic lines ("17+25=42") are
then written with the *other* ``windep`` digits of the same writers (operators: the MDAS test split)
by the held-out page generator's line renderer, and read by the shipped line reader with and
without the profile. A second set, written with MNIST test digits (other writers), checks that the
profile does not hurt writers it was not built for.

    DIGITLAB_DATA=/path/to/datasets nice -n 10 python benchmarks/profile_lines.py --lines 300

Prints a table and writes benchmarks/results/profile_lines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from digitlab.synthetic import pagegen  # noqa: E402
from digitlab.datasets.mnist import load_optdigits  # noqa: E402
from digitlab.digits.preprocess import crop_and_fit  # noqa: E402
from digitlab.profiles.core import build_profile  # noqa: E402
from digitlab.reader.decode import ARITHMETIC  # noqa: E402
from digitlab.reader.glyphs import GlyphBank, tight  # noqa: E402
from digitlab.reader.read import get_line_reader, read_lines  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def windep_split(k: int, seed: int):
    """(examples X, y) for the profile: k per digit, MNIST-style; and the rest as glyph crops."""
    s = load_optdigits("windep")
    rng = np.random.default_rng(seed)
    labels = np.asarray(s.labels)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == d), size=k, replace=False) for d in range(10)])
    X = np.stack([crop_and_fit(s.images[i].astype(np.float32) / 255) for i in idx]).astype(np.float32)
    rest = np.setdiff1d(np.arange(len(labels)), idx)
    glyphs = {d: [] for d in range(10)}
    for i in rest:  # as GlyphBank does: soften the bitmap's staircase, crop to the ink
        glyphs[int(labels[i])].append(tight(cv2.GaussianBlur(s.images[i].astype(np.float32) / 255, (3, 3), 0.7)))
    return X, labels[idx], glyphs


def lines(bank: GlyphBank, n: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    inks, texts = [], []
    for _ in range(n):
        text = pagegen.school_problem(rng)
        w = pagegen.Writer.sample(rng, (26, 44))
        ink = pagegen.render_text(text, bank, w, rng)
        inks.append(np.pad(ink, ((8, 8), (0, 0))))
        texts.append(text)
    return inks, texts


def score(readings, texts) -> dict:
    exact = [r.text == t for r, t in zip(readings, texts)]
    return {"exact": float(np.mean(exact)), "errors": int(len(exact) - sum(exact))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300, help="lines per set")
    ap.add_argument("--k", type=int, nargs="+", default=[10], help="examples per digit for the profile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "profile_lines.json"))
    args = ap.parse_args(argv)

    reader = get_line_reader()
    heldout = GlyphBank.load("heldout", max_per_digit=1000)
    rows = []
    for k in args.k:
        X, y, glyphs = windep_split(k, args.seed)
        t0 = time.perf_counter()
        profile = build_profile(X, y, name=f"windep-{k}")
        build_s = time.perf_counter() - t0
        sets = {"windep (profile's writers)": GlyphBank(glyphs, heldout.ops, "windep rest"),
                "MNIST test (other writers)": GlyphBank({d: [g for g in heldout.digits[d] if g.shape[0] > 12]
                                                         for d in range(10)}, heldout.ops, "mnist")}
        for label, bank in sets.items():
            inks, texts = lines(bank, args.lines, args.seed + 1)
            t0 = time.perf_counter()
            base = score(read_lines(inks, ARITHMETIC, model=reader), texts)
            t_base = time.perf_counter() - t0
            t0 = time.perf_counter()
            prof = score(read_lines(inks, ARITHMETIC, model=reader, profile=profile), texts)
            t_prof = time.perf_counter() - t0
            row = {"k": k, "set": label, "lines": len(texts), "exact_without": base["exact"],
                   "exact_with": prof["exact"], "errors_without": base["errors"], "errors_with": prof["errors"],
                   "ms_per_line_without": round(1000 * t_base / len(texts), 1),
                   "ms_per_line_with": round(1000 * t_prof / len(texts), 1), "profile_build_s": round(build_s, 1)}
            rows.append(row)
            print(f"k={k:<3} {label:<28} exact {base['exact']:.1%} -> {prof['exact']:.1%}  "
                  f"(errors {base['errors']} -> {prof['errors']} of {len(texts)}; "
                  f"{row['ms_per_line_without']} -> {row['ms_per_line_with']} ms/line)", flush=True)
    out = {"rows": rows, "reader": reader.metadata.get("val_line_accuracy"),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "seed": args.seed,
           "data": "optdigits windep (profile examples and lines, disjoint digits), MNIST test, MDAS test operators"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
