"""Validation errors of digit models, for choosing between them without the test set.

    python benchmarks/cnn_choice.py cnn runs/NEW.dlm ... [--json benchmarks/results/cnn_choice_errors.json]

Counts errors on MNIST's validation split (the CNN's held-back 5k, as arrays) and on optdigits
``cv`` (30 validation writers, in MNIST's format). With ``python benchmarks/styles.py --sets val``
(stylised validation 1/4/7/9) and ``python benchmarks/predict_user_images.py --split val`` (validation
digits as user pictures, clean and degraded) these are the sums the shipped CNN was chosen on
(``benchmarks/results/cnn_choice_val.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digitlab.datasets.mnist import load_mnist, optdigits_as_mnist, train_val_split
from digitlab.models import get_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model names or .dlm files")
    ap.add_argument("--json", default="benchmarks/results/cnn_choice_errors.json")
    args = ap.parse_args()
    val, cv = train_val_split(load_mnist("train"))[1], optdigits_as_mnist("cv")
    out = {}
    for spec in args.models:
        model = get_model(spec)
        out[spec] = {"mnist_val_errors": int((model.predict(val.images) != val.labels).sum()),
                     "cv_errors": int((model.predict(cv.images) != cv.labels).sum()), "n": [len(val), len(cv)]}
        print(f"{spec:40} MNIST val errors {out[spec]['mnist_val_errors']:4d} of {len(val)}, "
              f"optdigits cv errors {out[spec]['cv_errors']:3d} of {len(cv)}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
