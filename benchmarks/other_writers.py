"""How well does `digitlab predict` read writers who are not MNIST's? (optdigits, UCI dataset 80)

    python benchmarks/other_writers.py [--model cnn|FILE.dlm] [--json benchmarks/results/other_writers.json]

Each optdigits 32x32 bitmap is scaled up with smoothing onto paper as a user image
(``digitlab.synthetic.renders.render_bitmap``, seeded) and read through ``recognize.predict_source``, the
function behind `digitlab predict`, with the non-digit refusal off (accuracy of the reading) and on
(how many real digits it refuses). ``cv`` (946 digits of the 30 training-side writers) is the
validation set used to choose between models; ``windep`` (1,797 digits of 13 other writers, never
used for anything else) is the test. MNIST test accuracy is scored on its arrays, as `digitlab evaluate` does.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np

from digitlab.datasets.mnist import load_mnist, load_optdigits
from digitlab.digits.preprocess import NoDigitFound
from digitlab.models import get_model
from digitlab.digits.recognize import predict_source
from digitlab.synthetic.renders import render_bitmap


def read_split(model, split: str, seed: int) -> dict:
    data = load_optdigits(split)
    rng = np.random.default_rng(seed)
    preds, refused = [], 0
    t0 = time.perf_counter()
    for bitmap in data.images:
        raw = render_bitmap(bitmap, rng)
        preds.append(predict_source(model, raw, reject=False).digit)
        try:
            predict_source(model, raw)
        except NoDigitFound:
            refused += 1
    preds = np.array(preds)
    wrong = preds != data.labels
    pairs = Counter(zip(data.labels[wrong].tolist(), preds[wrong].tolist()))
    return {"n": len(data), "accuracy": float((~wrong).mean()), "errors": int(wrong.sum()),
            "refused_as_non_digit": refused, "seconds": round(time.perf_counter() - t0, 1),
            "confusions": [{"true": t, "read_as": p, "count": c} for (t, p), c in pairs.most_common(10)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--splits", default="cv,windep")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="benchmarks/results/other_writers.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one image at a time: 1 is fastest)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model = get_model(args.model)
    test = load_mnist("test")
    out = {"model": str(args.model or "shipped cnn"),
           "mnist_test_accuracy": float((model.predict(test.images) == test.labels).mean()), "splits": {}}
    print(f"MNIST test (arrays): {out['mnist_test_accuracy']:.2%}")
    for split in args.splits.split(","):
        row = read_split(model, split, args.seed)
        out["splits"][split] = row
        pairs = ", ".join(f"{c['true']}->{c['read_as']} x{c['count']}" for c in row["confusions"][:6])
        print(f"optdigits {split:7} n={row['n']}  accuracy {row['accuracy']:.2%} ({row['errors']} errors), "
              f"refused as non-digits {row['refused_as_non_digit']}; most confused: {pairs}")
    out["machine"] = {"processor": platform.processor() or platform.machine(), "python": platform.python_version()}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
