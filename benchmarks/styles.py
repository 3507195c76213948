"""Does the digit model read the styles MNIST's writers seldom use? (flagged 1s, open 4s, crossed 7s, hooked 9s)

    python benchmarks/styles.py [--model cnn|FILE.dlm ...] [--reader FILE.dlm ...] [--refusal N]
                                [--json benchmarks/results/styles.json]

Every 1, 4, 7 and 9 of a set gets the stroke its writer did not draw (the 4 is redrawn open;
``digitlab.synthetic.styles``, seeded), and the model reads the original and the stylised copy
(MNIST format, as `digitlab evaluate`). ``--refusal N`` also sends N stylised digits of each set,
rendered as a user's picture, through ``recognize.predict_source`` (what `digitlab predict` runs):
how many the "is this a digit?" checks refuse, and how many are read right.
Sets: ``val`` = the CNN's 5,000 validation digits of MNIST train + optdigits ``cv`` (what a
choice between models may use); ``test`` = MNIST test + optdigits ``windep`` (held-out writers;
the styles are still synthetic, so this says whether a model learnt the strokes, not how it
reads real Italian writers). ``--reader`` scores line readers the same way on validation lines
(``reader.linegen`` from the validation glyphs) with every 1, 7 and 9 stylised.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import Counter
from pathlib import Path

import numpy as np

from digitlab.datasets.mnist import Split, load_mnist, optdigits_as_mnist, train_val_split
from digitlab.digits.recognize import get_model
from digitlab.synthetic.styles import STYLES, stylised_mnist


def digit_set(name: str) -> Split:
    if name == "val":
        mnist, opt = train_val_split(load_mnist("train"))[1], optdigits_as_mnist("cv")
    elif name == "test":
        mnist, opt = load_mnist("test"), optdigits_as_mnist("windep")
    else:
        raise SystemExit(f"unknown set {name!r} (val or test)")
    x, y = np.concatenate([mnist.images, opt.images]), np.concatenate([mnist.labels, opt.labels])
    keep = np.isin(y, list(STYLES))
    return Split(x[keep], y[keep])


def score(model, x: np.ndarray, y: np.ndarray) -> dict:
    pred = model.predict(x)
    wrong = pred != y
    per = {int(d): round(float((pred[y == d] == d).mean()), 5) for d in STYLES}
    pairs = Counter(zip(y[wrong].tolist(), pred[wrong].tolist()))
    return {"n": len(y), "accuracy": round(float((~wrong).mean()), 5), "per_digit": per,
            "confusions": [{"true": t, "read_as": p, "count": c} for (t, p), c in pairs.most_common(6)]}


def reader_lines(specs: list[str], n: int, seed: int) -> dict:
    """Exact line reads on validation lines whose 1s, 7s and 9s are all stylised, and on plain ones."""
    from digitlab.reader.crnn import LineReader, prepare_line
    from digitlab.reader.train import model_line_accuracy
    from digitlab.reader.glyphs import GlyphBank
    from digitlab.reader.linegen import training_line
    from digitlab.synthetic.styles import stylise

    out = {}
    for styled in (False, True):
        bank = GlyphBank.load("val", seed=seed)
        rng = np.random.default_rng(seed)
        if styled:
            for d in STYLES:
                bank.digits[d] = [stylise(g, d, rng) for g in bank.digits[d]]
        lines, texts = [], []
        while len(lines) < n:
            ink, text = training_line(bank, rng)
            try:
                lines.append(prepare_line(ink))
                texts.append(text)
            except Exception:  # an empty render: draw another
                continue
        for spec in specs:
            acc = model_line_accuracy(LineReader.load(spec), lines, texts)
            out.setdefault(spec, {})["stylised" if styled else "plain"] = round(acc, 4)
    for spec, res in out.items():
        print(f"line reader {spec}: validation lines read exactly, plain {res['plain']:.1%}, "
              f"all 1/4/7/9 stylised {res['stylised']:.1%} ({n} lines each)")
    return out


def refusal(model, sx: np.ndarray, sy: np.ndarray, n: int, seed: int) -> dict:
    """Stylised digits as user pictures through `digitlab predict`'s path: refused, and read right."""
    from digitlab.digits.preprocess import NoDigitFound
    from digitlab.digits.recognize import predict_source
    from digitlab.synthetic.renders import render_user_image

    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(sy))[:n]
    refused, right = Counter(), 0
    for i in pick:
        try:
            right += predict_source(model, render_user_image(sx[i], rng)).digit == sy[i]
        except NoDigitFound:
            refused[int(sy[i])] += 1
    return {"n": len(pick), "refused": sum(refused.values()), "refused_by_digit": dict(refused),
            "accuracy_all": round(right / max(1, len(pick)), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["cnn"])
    ap.add_argument("--sets", default="val,test")
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--json", default="benchmarks/results/styles.json")
    ap.add_argument("--reader", nargs="*", help="also score these line-reader files on stylised validation lines")
    ap.add_argument("--lines", type=int, default=400)
    ap.add_argument("--refusal", type=int, default=0, metavar="N",
                    help="also read N stylised digits of each set as user pictures, refusal on")
    args = ap.parse_args()
    results = {"machine": platform.processor() or platform.machine(), "seed": args.seed, "models": {}}
    if args.reader:
        results["line_readers"] = reader_lines(args.reader, args.lines, args.seed)
    sets = {}
    for name in args.sets.split(","):
        data = digit_set(name)
        sx, sy = stylised_mnist(data.images, data.labels, np.random.default_rng(args.seed),
                                share={d: 1.0 for d in STYLES})
        sets[name] = (data, sx, sy)
    print(f"{'model':<28} {'set':<5} {'plain 1/4/7/9':>12} {'stylised':>9}  per digit (stylised)  top confusions")
    for spec in args.model:
        model = get_model(spec)
        res = {}
        for name, (data, sx, sy) in sets.items():
            plain, styled = score(model, data.images, data.labels), score(model, sx, sy)
            res[name] = {"plain": plain, "stylised": styled}
            conf = ", ".join(f"{c['true']}→{c['read_as']} {c['count']}" for c in styled["confusions"][:3])
            per = " ".join(f"{d}:{a:.1%}" for d, a in styled["per_digit"].items())
            print(f"{Path(spec).name:<28} {name:<5} {plain['accuracy']:>12.2%} {styled['accuracy']:>9.2%}  {per}  {conf}")
            if args.refusal:
                res[name]["as_pictures"] = r = refusal(model, sx, sy, args.refusal, args.seed)
                print(f"{'':<28} {name:<5} as pictures: {r['refused']} of {r['n']} refused "
                      f"{r['refused_by_digit']}, {r['accuracy_all']:.2%} read right (refused count as wrong)")
        results["models"][spec] = res
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
