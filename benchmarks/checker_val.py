"""Choose how the checker reads, on validation lines read exactly as it reads them.

    python benchmarks/checker_val.py [--readers line_reader line_reader+line_reader_warp] [--digits slice_cnn]
                                     [--lines 4000] [--seed 8] [--photo 0.3] [--json benchmarks/results/checker_val.json]

Each reader spec is a line reader (name or path) alone, or with partners joined by "+" (read together,
``reader.read.ReaderEnsemble``). Lines are ``calibrate.validation_problems``: the *validation* glyphs
(MNIST's held-back 5k, optdigits ``cv``, MDAS ``val``) in the training generator, half of them right
answers, a share photo-degraded; what a choice may use, never a held-out figure. They are read as
``check`` reads a page's lines (test-time augmentation, near misses, the digit model's second
opinion), and for each arithmetic prior the calibration's thresholds are chosen on them: the table
gives exact reads of the best reading, the truth among the readings, and the unsure share left at
the calibration's bounds (for each prior and far-answer weight, ``check.with_prior``: confident verdicts
>= 99.5% right, at most ``calibrate.MAX_FALSE_CROSS`` of the lines a false cross).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitlab.arithmetic.calibrate import CARELESS, FARS, PRIORS, choose, validation_problems
from digitlab.arithmetic.check import read_for_verdicts, verdict_support, with_prior
from digitlab.reader.read import get_line_reader, with_partners


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", nargs="+", default=["line_reader", "line_reader+line_reader_warp"])
    ap.add_argument("--digits", default="slice_cnn", help="second-opinion digit model ('none': without)")
    ap.add_argument("--lines", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--photo", type=float, default=0.3)
    ap.add_argument("--kern", type=float, default=0.0,
                    help="share of the lines spaced by their ink, neighbours touching (default 0)")
    ap.add_argument("--careless", type=float, default=CARELESS,
                    help="share of the wrong answers that are any number at all (default: the calibration's)")
    ap.add_argument("--json", default="benchmarks/results/checker_val.json")
    args = ap.parse_args()
    inks, truth, texts = validation_problems(args.lines, args.seed, args.photo, careless=args.careless,
                                             kern=args.kern)
    digits = False if args.digits == "none" else args.digits
    rows = []
    for spec in args.readers:
        first, *partners = spec.split("+")
        model = with_partners(get_line_reader(first, ensemble=False), partners)
        t0, nbests = time.perf_counter(), []
        for i in tqdm(range(0, len(inks), 50), desc=spec, leave=False):
            nbests += [r.nbest for r in read_for_verdicts(inks[i : i + 50], model,
                                                          limits={"digits": digits, "near_misses": True})]
        row = {"reader": spec, "seconds": round(time.perf_counter() - t0, 1),
               "in_nbest": float(np.mean([any(t == x for x, _ in nb) for nb, t in zip(nbests, texts)]))}
        for prior, far in itertools.product(PRIORS, FARS):
            support, exact = [], []
            for nb, want, text in zip(nbests, truth, texts):
                nb = with_prior(nb, prior, far)
                support.append(verdict_support(nb) + (nb[0][1] if nb else 0.0, want))
                exact.append(bool(nb) and nb[0][0] == text)
            c = choose(support)
            row[f"prior {prior:g} far {far:g}"] = {"exact": float(np.mean(exact)),
                                                   "unsure": 1 - c["decided"] / len(nbests) if c else None}
        best = min((k for k in row if k.startswith("prior")), key=lambda k: 1.0 if row[k]["unsure"] is None else row[k]["unsure"])  # None: no thresholds met the bounds
        row["best"] = best
        rows.append(row)
        print(f"{spec:<36} in N-best {row['in_nbest']:6.1%}   best {best:<18} exact {row[best]['exact']:6.1%}"
              f"   unsure {row[best]['unsure']:5.1%}   {row['seconds']:.0f} s", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "data": f"validation glyphs, training generator, seed {args.seed}, {args.photo:.0%} photo-degraded, "
                f"{args.careless:.0%} of wrong answers careless, {args.kern:.0%} spaced by ink",
        "lines": args.lines, "digits": args.digits, "machine": platform.machine(), "results": rows}, indent=1))


if __name__ == "__main__":
    main()
