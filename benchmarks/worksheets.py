"""Homework-checking benchmark on generated worksheets (fixed seed).

    python benchmarks/worksheets.py [--pages 40] [--lines 5] [--seed 0]

Pages are composed from MNIST *test* digits and the MDAS operator *test* split (never seen in
training): several lines per page, about half the written answers wrong, half the pages rotated
up to +-10 degrees with uneven light and noise like phone photos. Reports the share of lines with
the right verdict, the share read exactly, and the skew error.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitlab.arithmetic import check_expression, check_page
from digitlab.recognize import get_model
from digitlab.synth import SymbolBank, render_worksheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--lines", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="benchmarks/results/worksheets.json")
    ap.add_argument("--save-pages", help="folder to save the generated pages (PNG) for a look")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    bank = SymbolBank("test", seed=args.seed)
    model = get_model("symbols")
    lines = verdict_ok = exact = found_lines = 0
    skew_err, seconds, examples = [], [], []
    for p in tqdm(range(args.pages), desc="worksheets"):
        photo = p % 2 == 1
        angle = float(rng.uniform(-10, 10)) if photo else 0.0
        page, truth = render_worksheet(bank, rng, n_lines=args.lines, rotate_deg=angle, photo=photo)
        if args.save_pages:
            from PIL import Image

            Path(args.save_pages).mkdir(parents=True, exist_ok=True)
            Image.fromarray(page).save(Path(args.save_pages) / f"page{p:03d}.png")
        t0 = time.perf_counter()
        result = check_page(page, model=model)
        seconds.append(time.perf_counter() - t0)
        skew_err.append(abs(result.skew_degrees - angle))
        found_lines += len(result.lines)
        read = [l.expression for l in result.lines] if len(result.lines) == len(truth) else [None] * len(truth)
        for got, line, want in zip(read, result.lines if read[0] is not None else [None] * len(truth), truth):
            lines += 1
            expected = check_expression(want)["correct"]
            exact += got == want
            verdict_ok += line is not None and line.correct is expected
            if got != want and len(examples) < 15:
                examples.append({"page": p, "truth": want, "read": got})
    res = {
        "pages": args.pages, "lines": lines, "lines_found": found_lines,
        "verdict_accuracy": verdict_ok / lines, "exact_read": exact / lines,
        "skew_error_mean_deg": float(np.mean(skew_err)), "skew_error_max_deg": float(np.max(skew_err)),
        "seconds_per_page": float(np.mean(seconds)), "misreads": examples,
        "machine": platform.processor() or platform.machine(),
    }
    print(f"{'pages':>5} {'lines':>5} {'right verdict':>13} {'read exactly':>12} {'skew err mean/max':>18} {'s/page':>7}")
    print(f"{args.pages:5d} {lines:5d} {res['verdict_accuracy']:13.1%} {res['exact_read']:12.1%} "
          f"{res['skew_error_mean_deg']:8.2f}/{res['skew_error_max_deg']:.2f} deg {res['seconds_per_page']:7.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
