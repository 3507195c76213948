"""Choose how written numbers are read, on validation numbers.

    python benchmarks/numbers_val.py [--readers line_reader line_reader+line_reader_warp] [--digits cnn slice_cnn none]
                                     [--numbers 1500] [--seeds 7 8] [--json benchmarks/results/numbers_val.json]

Numbers of 2-6 digits composed by the reader's training generator from the *validation* glyphs
(MNIST's held-back 5k, optdigits ``cv``), a third photo-degraded, read as ``read_number`` reads a
line (``read_lines`` under the NUMBER grammar, test-time augmentation) by each reader spec (a reader
alone, or with partners joined by "+") and each second-opinion model. Exact reads per seed: what a
choice may use, never a held-out figure (that is ``benchmarks/worksheets.py --variants numbers``).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from digitlab.reader.decode import NUMBER
from digitlab.reader.glyphs import GlyphBank
from digitlab.reader.linegen import add_clutter, photo_degrade, render_tokens
from digitlab.reader.read import get_line_reader, read_lines, with_partners


def numbers(n: int, seed: int):
    bank, rng = GlyphBank.load("val", seed=seed), np.random.default_rng(seed)
    inks, texts = [], []
    for _ in range(n):
        tokens = [str(rng.integers(1 if i == 0 else 0, 10)) for i in range(int(rng.integers(2, 7)))]
        ink = add_clutter(render_tokens(tokens, bank, rng), rng, bank)
        if rng.random() < 0.3:
            ink = photo_degrade(ink, rng)
        inks.append(ink)
        texts.append("".join(tokens))
    return inks, texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", nargs="+", default=["line_reader", "line_reader+line_reader_warp"])
    ap.add_argument("--digits", nargs="+", default=["cnn"], help="second-opinion models ('cnn': the shipped CNN)")
    ap.add_argument("--numbers", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    ap.add_argument("--json", default="benchmarks/results/numbers_val.json")
    args = ap.parse_args()
    sets = {seed: numbers(args.numbers, seed) for seed in args.seeds}
    rows = []
    for spec in args.readers:
        first, *partners = spec.split("+")
        model = with_partners(get_line_reader(first, ensemble=False), partners)
        for d in args.digits:
            digits = {"cnn": True, "none": False}.get(d, d)
            row = {"reader": spec, "digits": d}
            for seed, (inks, texts) in sets.items():
                got = []
                for i in range(0, len(inks), 100):
                    got += [r.text for r in read_lines(inks[i : i + 100], NUMBER, model=model, digits=digits)]
                row[f"seed {seed}"] = float(np.mean([g == t for g, t in zip(got, texts)]))
            rows.append(row)
            print(f"{spec:<36} {d:<10} " + "   ".join(f"{k} {v:6.1%}" for k, v in row.items() if k.startswith("seed")),
                  flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"data": "validation glyphs, training generator, numbers of 2-6 digits",
                                           "numbers": args.numbers, "machine": platform.machine(), "results": rows},
                                          indent=1))


if __name__ == "__main__":
    main()
