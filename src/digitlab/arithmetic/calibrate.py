"""Choose the verdict thresholds on validation lines, so that "correct" and "wrong" can be trusted.

Validation lines are composed (training generator) from the *validation* glyphs (MNIST's held-back
5k, optdigits ``cv``, MDAS ``val``): writers the reader did not train on, and none of the benchmarks'.
The thresholds are the loosest pair whose confident verdicts are at least ``target`` right there,
with at most ``max_false_cross`` of the lines a false cross (a right answer marked wrong); they are
stored in the model file's metadata. Zero false crosses on 1,000 lines was tried first: a CTC
reader is sometimes confidently wrong (one misread at p = 0.992), and excluding every such line
left 43% of the validation lines unsure, against 24% for one false cross in 1,000.
"""

from __future__ import annotations

import numpy as np

from .grammar import check_expression


def verdict_support(nbest) -> tuple[float, float, bool | None]:
    p_right = sum(p for t, p in nbest if check_expression(t)["correct"] is True)
    p_wrong = sum(p for t, p in nbest if check_expression(t)["correct"] is False)
    best = check_expression(nbest[0][0])["correct"] if nbest else None
    return p_right, p_wrong, best


def calibrate(model, data_dir=None, n: int = 1000, seed: int = 7, target: float = 0.995,
              max_false_cross: float = 0.002, progress: bool = True) -> dict:
    from tqdm import tqdm

    from ..preprocess import NoDigitFound
    from ..reader.decode import ARITHMETIC
    from ..reader.glyphs import GlyphBank
    from ..reader.linegen import add_clutter, problem_tokens, render_tokens
    from ..reader.read import read_lines

    bank = GlyphBank.load("val", data_dir, seed=seed)
    rng = np.random.default_rng(seed)
    inks, truth = [], []
    while len(inks) < n:
        want = bool(rng.random() < 0.5)
        tokens = problem_tokens(rng, want)
        inks.append(add_clutter(render_tokens(tokens, bank, rng), rng, bank))
        truth.append(want)
    support = []
    for i in tqdm(range(0, n, 50), desc="calibrating", disable=not progress):
        try:
            readings = read_lines(inks[i : i + 50], ARITHMETIC, model=model)
        except NoDigitFound:
            continue
        support += [verdict_support(r.nbest) + (w,) for r, w in zip(readings, truth[i : i + 50])]
    # Up to 0.999: a confident reader is sometimes confidently wrong, and a cross must not be.
    grid = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999]
    best = None
    for tc in grid:
        for tw in grid:
            decided = right = false_cross = 0
            for p_right, p_wrong, b, want in support:
                status = ("correct" if b is True and p_right >= tc else
                          "wrong" if b is False and p_wrong >= tw else "unsure")
                if status != "unsure":
                    decided += 1
                    right += (status == "correct") == want
                    false_cross += status == "wrong" and want
            acc = right / decided if decided else 0.0
            if (acc >= target and false_cross <= max_false_cross * len(support)
                    and (best is None or decided > best["decided"])):
                best = {"correct": tc, "wrong": tw, "decided": decided, "accuracy": acc, "false_crosses": false_cross}
    if best is None:
        best = {"correct": 0.99, "wrong": 0.99, "decided": 0, "accuracy": None}
    best.update({"lines": len(support), "unsure": 1 - best["decided"] / max(1, len(support)), "target": target,
                 "max_false_cross": max_false_cross,
                 "data": "validation glyphs (MNIST held-back 5k, optdigits cv, MDAS val), training generator"})
    return best
