"""Accuracy of `predict` on MNIST test digits re-rendered as user images, and degraded.

    python benchmarks/predict_user_images.py [--n 2000] [--model cnn] [--split test|val] [--json out.json]

Clean set: random size 40-200 px, random margins (off-centre), paper/pen colours, 30% inverted,
half JPEG (quality 60-95), mild noise. Degraded sets (at 84x84, 3x MNIST): binarised at 16x16 then
upscaled; strokes dilated or eroded by 1-2 px; slanted +-15 degrees; on request (``--sets``) also
``marker`` (strokes dilated 3-5 px) and ``stretch`` (width 0.6-0.75 or 1.35-1.6 of the height's share).
Seeded: same images every run.
``--split val`` draws the digits from the CNN's validation split of MNIST train (its held-back 5k)
instead of MNIST test, for choosing between models without touching the test set.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from tqdm import tqdm

from digitlab.datasets.mnist import load_mnist, subset, train_val_split
from digitlab.digits.preprocess import preprocess_digit
from digitlab.models import get_model
from digitlab.synthetic.renders import degrade, render_user_image

SETS = ["clean", "binarise", "dilate", "erode", "slant"]
EXTRA_SETS = ["marker", "stretch"]  # not in the default run: the study's four degradations are the reference


def build(images: np.ndarray, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for img in tqdm(images, desc=f"render {kind}", leave=False):
        src = render_user_image(img, rng) if kind == "clean" else degrade(img, kind, rng)
        # The reading's accuracy, with the non-digit refusal off (benchmarks/non_digits.py counts refusals).
        out.append(preprocess_digit(src, reject=False))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default=",".join(SETS),
                    help=f"comma-separated, from {', '.join(SETS + EXTRA_SETS)} (default: the first five)")
    ap.add_argument("--split", choices=["test", "val"], default="test")
    ap.add_argument("--json", default="benchmarks/results/predict_user_images.json")
    args = ap.parse_args()
    digits = load_mnist("test") if args.split == "test" else train_val_split(load_mnist("train"))[1]
    test = subset(digits, args.n, seed=args.seed)
    model = get_model(args.model)
    rows = []
    for i, kind in enumerate(args.sets.split(",")):
        t0 = time.perf_counter()
        X = build(test.images, kind, args.seed + i)
        prep = time.perf_counter() - t0
        pred = model.predict(X)
        acc = float((pred == test.labels).mean())
        rows.append({"set": kind, "n": len(X), "accuracy": acc, "errors": int((pred != test.labels).sum()),
                     "preprocess_ms_per_image": round(1000 * prep / len(X), 2)})
    degraded = [r for r in rows if r["set"] in SETS[1:]]
    if degraded:
        rows.append({"set": "degraded (all)", "n": sum(r["n"] for r in degraded),
                     "accuracy": sum(r["accuracy"] * r["n"] for r in degraded) / sum(r["n"] for r in degraded),
                     "errors": sum(r["errors"] for r in degraded), "preprocess_ms_per_image": None})
    print(f"{'set':16} {'n':>6} {'accuracy':>9} {'errors':>7} {'prep ms':>8}")
    for r in rows:
        prep = f"{r['preprocess_ms_per_image']:.2f}" if r["preprocess_ms_per_image"] is not None else "-"
        print(f"{r['set']:16} {r['n']:6d} {r['accuracy']:9.2%} {r['errors']:7d} {prep:>8}")
    result = {"model": model.name, "split": args.split, "rows": rows, "machine": platform.processor() or platform.machine(),
              "python": platform.python_version()}
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
