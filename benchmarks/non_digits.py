"""Does `digitlab predict` refuse pictures that are not digits, and only those?

    python benchmarks/non_digits.py [--mnist 10000] [--degraded-test 1000] [--json benchmarks/results/non_digits.json]
    python benchmarks/non_digits.py --calibrate      # choose digitlab.digits.reject's bounds (validation data)

Measurement (the default): 300 non-digit pictures from ``digitlab.synthetic.renders.non_digit_image`` with seed 0
(noise, blobs, grids, stripes, checkerboards, gradients; 50 each, PNG bytes as a user sends them),
MNIST *test* digits rendered as user images (``render_user_image``) and the 13 unseen optdigits
writers (``windep``; each 32x32 bitmap scaled up with smoothing onto paper, ``render_bitmap``), all
through ``recognize.predict_source``, the function behind `digitlab predict`. It prints how many
of each are refused and why, and the accuracy on the digits that are read.

Calibration (``--calibrate``) never touches those sets: real digits come from MNIST's validation
split (the CNN's held-back 5k) and optdigits ``cv``, both rendered the same way, plus degraded
validation digits (thick, thin, binarised, slanted pens); non-digits from the generator with seed 1.
A greedy search tightens one bound at a time while no more than ``--budget`` of the validation
digits are refused (averaged over the digit sets, and at most twice that in any one set); then a
logistic score (cross-validated) within the same budget; then, where the learned reject model
exists (``weights/reject.dlm`` or ``--reject-model FILE``, trained by ``digitlab train reject`` on
other data), the most refusing bound on its P(not a digit) that keeps all three within
``--budget`` + ``--net-budget``. ``--write`` saves them all to ``digitlab/weights/reject.json``
(the learned model's bound with the SHA-256 of the weights it was set for).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from digitlab.datasets.mnist import load_mnist, load_optdigits, subset, train_val_split
from digitlab.digits.preprocess import NoDigitFound, preprocess_digit
from digitlab.models import get_model
from digitlab.digits.recognize import predict_source
from digitlab.digits.reject import CALIBRATION, LOWER, REASONS, SCORE_KEYS, UPPER, features, thresholds
from digitlab.digits.rejectnet import NET_WEIGHTS, net_model
from digitlab.synthetic.renders import NON_DIGIT_KINDS, degrade, non_digit_image, render_bitmap, render_user_image

REASON_KEY = {v: k for k, v in REASONS.items()}


def non_digits(seed: int, per_kind: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    return [(kind, non_digit_image(kind, rng)) for kind in NON_DIGIT_KINDS for _ in range(per_kind)]


def rendered(images: np.ndarray, seed: int, bitmap: bool = False) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [render_bitmap(im, rng) if bitmap else render_user_image(im, rng) for im in images]


def reason_of(exc: NoDigitFound) -> str:
    text = str(exc)
    for msg, key in REASON_KEY.items():
        if msg in text:
            return key
    return "no ink"


# -- measurement ------------------------------------------------------------------------------------
def run_set(model, sources, labels=None, desc="") -> dict:
    refused: Counter = Counter()
    preds = np.full(len(sources), -1)
    t0 = time.perf_counter()
    for i, src in enumerate(tqdm(sources, desc=desc, leave=False, mininterval=5)):
        try:
            preds[i] = predict_source(model, src).digit
        except NoDigitFound as exc:
            refused[reason_of(exc)] += 1
    seconds = time.perf_counter() - t0
    n_ref = sum(refused.values())
    # Shape checks run in preprocessing (also behind the web API); confidence only after the model.
    row = {"n": len(sources), "refused": n_ref, "refused_rate": n_ref / len(sources),
           "refused_by_shape_rate": (n_ref - refused["score"] - refused["net"]) / len(sources),
           "reasons": dict(refused),
           "ms_per_image": round(1000 * seconds / len(sources), 2)}
    if labels is not None:
        read = preds >= 0
        row["accuracy_of_read"] = float((preds[read] == labels[read]).mean()) if read.any() else None
        row["accuracy_all"] = float((preds == labels).mean())  # a refused digit counts as an error
        pairs = Counter((int(t), int(p)) for t, p in zip(labels, preds) if p >= 0 and p != t)
        row["confusions"] = [{"true": t, "read_as": p, "count": c} for (t, p), c in pairs.most_common(10)]
    return row


def measure(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)  # one image at a time: threads only wait for each other
    model = get_model(args.model)
    net = net_model()
    out = {"model": model.name, "thresholds": thresholds(), "sets": {},
           "reject_model": None if net is None else {"file": str(NET_WEIGHTS), "threshold": net[1]}}
    nd = non_digits(seed=0, per_kind=args.per_kind)
    for kind in NON_DIGIT_KINDS:
        out["sets"][f"non-digit: {kind}"] = run_set(model, [b for k, b in nd if k == kind], desc=kind)
    tot = [out["sets"][f"non-digit: {k}"] for k in NON_DIGIT_KINDS]
    n_all = sum(r["n"] for r in tot)
    out["sets"]["non-digits (all)"] = {"n": n_all, "refused": sum(r["refused"] for r in tot),
                                       "refused_rate": sum(r["refused"] for r in tot) / n_all,
                                       "refused_by_shape_rate": sum(r["refused_by_shape_rate"] * r["n"] for r in tot) / n_all}
    test = subset(load_mnist("test"), args.mnist, seed=0)
    out["sets"]["MNIST test (user images)"] = run_set(model, rendered(test.images, seed=0), test.labels, "mnist test")
    wd = subset(load_optdigits("windep"), args.optdigits, seed=0)
    out["sets"]["optdigits windep (paper-like)"] = run_set(model, rendered(wd.images, seed=0, bitmap=True),
                                                           wd.labels, "windep")
    if args.degraded_test:  # other pens: 1,000 MNIST test digits each, as a user's picture
        few = subset(load_mnist("test"), args.degraded_test, seed=3)
        for kind in ("dilate", "erode", "binarise", "slant", "marker", "stretch"):
            rng = np.random.default_rng(5)
            srcs = [cv2.imencode(".png", degrade(im, kind, rng))[1].tobytes() for im in few.images]
            out["sets"][f"MNIST test {kind}"] = run_set(model, srcs, few.labels, kind)
    return out


# -- calibration ------------------------------------------------------------------------------------
def feature_table(model, sources, net=None) -> dict[str, np.ndarray]:
    """Features of every source as arrays; NaN where preprocessing already finds no ink (refused).

    ``net``: the learned reject model, whose P(not a digit) becomes the column ``net``.
    """
    images = []
    for src in tqdm(sources, leave=False, desc="features", mininterval=5):
        try:
            images.append(preprocess_digit(src, reject=False))
        except NoDigitFound:
            images.append(None)
    ok = [im for im in images if im is not None]
    proba = iter(model.predict_proba(np.stack(ok)) if ok else [])
    rows = [None if im is None else features(im, next(proba)) for im in images]
    out = {k: np.array([np.nan if r is None else r[k] for r in rows], float) for k in (*UPPER, *LOWER, "confidence")}
    out["net"] = np.full(len(images), np.nan)
    if net is not None and ok:
        out["net"][[i for i, im in enumerate(images) if im is not None]] = net.not_digit(np.stack(ok))
    return out


def refused(F: dict[str, np.ndarray], t: dict[str, float]) -> np.ndarray:
    out = np.isnan(F["fill"])
    for k, v in t.items():
        out |= (F[k] > v) if k in UPPER else (F[k] < v)
    return out


def calibrate(args) -> dict:
    model = get_model(args.model)
    net = None
    net_path = Path(args.reject_model) if args.reject_model else NET_WEIGHTS
    if net_path.exists():
        from digitlab.models.base import read_header
        from digitlab.digits.rejectnet import load_reject

        net, net_sha = load_reject(net_path), read_header(net_path)[0]["sha256"]
        print(f"learned reject model: {net_path}")
    val = subset(train_val_split(load_mnist("train"))[1], args.mnist, seed=1)
    cv = subset(load_optdigits("cv"), args.optdigits, seed=1)
    rng = np.random.default_rng(11)
    digit_sets = {
        "MNIST val (user images)": rendered(val.images, seed=1),
        "optdigits cv (paper-like)": rendered(cv.images, seed=1, bitmap=True),
    }
    # "marker": a broad pen (3-5 px at 3x) that the shape bounds once took for a blob (1.4% of such
    # test digits refused by "core" and "thickness" when only the four thinner pens were here).
    for kind in ("dilate", "erode", "binarise", "slant", "marker"):
        digit_sets[f"MNIST val {kind}"] = [degrade(im, kind, rng) for im in val.images[: args.degraded]]
    digits = {name: feature_table(model, srcs, net) for name, srcs in digit_sets.items()}
    nd = non_digits(seed=1, per_kind=args.per_kind)
    nd_F = feature_table(model, [b for _, b in nd], net)
    nd_kinds = np.array([k for k, _ in nd])
    keys = [*UPPER, *LOWER, "confidence"]
    if args.dump:  # the feature tables, to study them without recomputing
        np.savez(args.dump, **{f"{name}|{k}": v for name, F in [*digits.items(), ("non-digits", nd_F)] for k, v in F.items()},
                 kinds=nd_kinds)
    # Every digit set weighs the same in the budget, so the 5k MNIST digits do not drown the other writers.
    all_F = {k: np.concatenate([F[k] for F in digits.values()]) for k in keys}
    weights = np.concatenate([np.full(len(F["fill"]), 1 / len(F["fill"])) for F in digits.values()]) / len(digits)
    budget = args.budget

    def digit_rate(t):
        return float((refused(all_F, t) * weights).sum())

    def within_budget(t):  # on average over the digit sets, and no set more than twice that
        return digit_rate(t) <= budget and all(refused(F, t).mean() <= 2 * budget for F in digits.values())

    # Start refusing nothing (beyond "no ink"), then tighten one bound at a time: each step takes the
    # bound that refuses the most validation non-digits while the digits refused stay within budget.
    t: dict[str, float] = {}
    cands = {k: np.unique(np.round(np.nanquantile(np.concatenate([all_F[k], nd_F[k]]), np.linspace(0, 1, 201)), 3))
             for k in keys}
    for k in ("components", "holes"):
        cands[k] = np.arange(1, 12)
    # 1. Shape bounds (they also guard the web API, which checks shape only).
    greedy(t, [*UPPER, *LOWER], cands, nd_F, digit_rate, within_budget)
    # 2. A logistic score on all features with the CNN's confidence, for what no single bound
    # separates. Its bound is set on 5-fold cross-validated scores (not on the scores of the data
    # it was fitted on), as the most refusing bound that keeps the digits within the same budget.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    sets = [*digits.items(), ("non-digits", nd_F)]
    X = np.concatenate([np.stack([F[k] for k in SCORE_KEYS], 1) for _, F in sets])
    y = np.concatenate([np.full(len(F["fill"]), name == "non-digits") for name, F in sets])
    group = np.concatenate([np.full(len(F["fill"]), name, dtype=object) for name, F in sets])
    shape_ref = np.concatenate([refused(F, t) for _, F in sets])
    ok = ~np.isnan(X).any(1)
    pipe = make_pipeline(StandardScaler(), PolynomialFeatures(2), LogisticRegression(C=1.0, max_iter=5000))
    w = np.where(y[ok], 5.0, 1.0)  # non-digits are fewer: weigh them up
    p = np.zeros(len(y))
    p[ok] = cross_val_predict(pipe, X[ok], y[ok], cv=StratifiedKFold(5, shuffle=True, random_state=0),
                              method="predict_proba", params={"logisticregression__sample_weight": w})[:, 1]
    names = list(digits)
    bound = 1.0
    for th in np.unique(np.quantile(p[ok & ~y], np.linspace(0.98, 1, 801))):
        ref = shape_ref | (p > th)
        rates = [ref[group == n].mean() for n in names]
        if np.mean(rates) <= budget and max(rates) <= 2 * budget:
            bound = float(th)
            break
    pipe.fit(X[ok], y[ok], logisticregression__sample_weight=w)
    sc, poly, lr = pipe.named_steps.values()
    score_model = {"keys": list(SCORE_KEYS), "mean": sc.mean_.tolist(), "scale": sc.scale_.tolist(),
                   "powers": poly.powers_.tolist(), "coef": lr.coef_[0].tolist(), "intercept": float(lr.intercept_[0]),
                   "threshold": bound}
    cv_ref = shape_ref | (p > bound)
    print(f"  score bound {bound:.4f} (cross-validated): non-digits refused {cv_ref[y].mean():.1%}")
    result = _report(t, budget, digits, nd_F, nd_kinds, keys)
    result["score"] = score_model
    result["validation_cross_validated"] = {n: float(cv_ref[group == n].mean()) for n in [*names, "non-digits"]}
    calib = {"thresholds": t, "score": score_model}
    if net is not None:
        # 3. The learned model (trained on other data, so its validation outputs are honest): the
        # most refusing bound on P(not a digit) that keeps the validation digits refused by all
        # the checks together within budget + net budget (on average, and twice that in any set).
        total = budget + args.net_budget
        q = np.concatenate([F["net"] for F in digits.values()])
        net_p = np.concatenate([F["net"] for _, F in sets])
        net_bound = 1.0
        for th in np.unique(np.nanquantile(q, np.linspace(0.95, 1, 2001))):
            ref = cv_ref | (net_p > th)
            rates = [ref[group == n].mean() for n in names]
            if np.mean(rates) <= total and max(rates) <= 2 * total:
                net_bound = float(th)
                break
        all_ref = cv_ref | (net_p > net_bound)
        print(f"  net bound {net_bound:.4f}: non-digits refused {all_ref[y].mean():.1%} "
              f"(the net alone {(net_p > net_bound)[y].mean():.1%})")
        calib["net"] = {"threshold": net_bound, "weights": net_path.name, "sha256": net_sha,
                        "trained": net.metadata.get("how")}
        result["net"] = {"threshold": net_bound, "budget_total": total, "model": str(net_path),
                         "validation": {n: float(all_ref[group == n].mean()) for n in [*names, "non-digits"]},
                         "validation_net_alone": {n: float((net_p > net_bound)[group == n].mean())
                                                  for n in [*names, "non-digits"]},
                         "non_digits_by_kind": {k: float(all_ref[y][nd_kinds == k].mean()) for k in NON_DIGIT_KINDS},
                         "non_digits_by_kind_net_alone": {k: float((net_p > net_bound)[y][nd_kinds == k].mean())
                                                          for k in NON_DIGIT_KINDS}}
    if args.write:
        CALIBRATION.write_text(json.dumps({**calib, "how": "benchmarks/non_digits.py --calibrate (validation data only)"},
                                          indent=1))
        print(f"wrote {CALIBRATION}")
    return result


def greedy(t, allowed, cands, nd_F, digit_rate, within_budget) -> None:
    while True:
        base_nd = refused(nd_F, t).sum()
        best = None
        for k in allowed:
            for v in cands[k]:
                v = float(v)
                if k in t and ((k in UPPER and v >= t[k]) or (k in LOWER and v <= t[k])):
                    continue
                trial = {**t, k: v}
                d = digit_rate(trial)
                if not within_budget(trial):
                    continue
                gain = int(refused(nd_F, trial).sum() - base_nd)
                # the most non-digits; then the fewest digits; then the most lenient bound
                score = (gain, -d, v if k in UPPER else -v)
                if gain > 0 and (best is None or score > best[0]):
                    best = (score, k, v)
        if best is None:
            break
        t[best[1]] = best[2]
        print(f"  {best[1]:11} -> {best[2]}: non-digits refused {refused(nd_F, t).mean():.1%}, "
              f"digits refused {digit_rate(t):.2%} (weighted)")


def _report(t, budget, digits, nd_F, nd_kinds, keys) -> dict:
    shape_t = dict(t)
    report = {"thresholds": t, "budget": budget, "validation": {}}
    for name, F in digits.items():
        report["validation"][name] = {"n": len(F["fill"]), "refused_rate": float(refused(F, t).mean()),
                                      "shape_only_refused_rate": float(refused(F, shape_t).mean())}
    r_nd = refused(nd_F, t)
    report["validation"]["non-digits (seed 1)"] = {
        "n": len(nd_kinds), "refused_rate": float(r_nd.mean()),
        "shape_only_refused_rate": float(refused(nd_F, shape_t).mean()),
        "by_kind": {k: float(r_nd[nd_kinds == k].mean()) for k in NON_DIGIT_KINDS}}
    for name, F in [*digits.items(), ("non-digits", nd_F)]:  # where each feature lies, for the README
        report.setdefault("feature_quantiles", {})[name] = {
            k: [round(float(q), 3) for q in np.nanquantile(F[k], [0.001, 0.01, 0.5, 0.99, 0.999])] for k in keys}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", action="store_true", help="choose the bounds on validation data")
    ap.add_argument("--model", default=None)
    ap.add_argument("--mnist", type=int, default=None, help="MNIST digits (test: all 10k; calibrate: all 5k val)")
    ap.add_argument("--optdigits", type=int, default=None, help="optdigits digits (default: all; fewer for a smoke run)")
    ap.add_argument("--degraded", type=int, default=500, help="calibrate: validation digits per degradation")
    ap.add_argument("--per-kind", type=int, default=None, help="non-digits per kind (50; calibrate 100)")
    ap.add_argument("--budget", type=float, default=0.002, help="calibrate: share of validation digits refused")
    ap.add_argument("--net-budget", type=float, default=0.002,
                    help="calibrate: the share of validation digits the learned reject model may refuse on top")
    ap.add_argument("--reject-model", help="calibrate: the learned reject model (default: weights/reject.dlm)")
    ap.add_argument("--degraded-test", type=int, default=0, metavar="N",
                    help="measure: also N MNIST test digits per pen (thick, thin, binarised, slanted, marker, stretched)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--write", action="store_true", help="calibrate: write the result to digitlab/weights/reject.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the one-image-at-a-time reads")
    ap.add_argument("--dump", help="calibrate: save the feature tables (.npz)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.calibrate:
        args.per_kind = args.per_kind or 100
        result = calibrate(args)
        for name, row in result["validation"].items():
            print(f"{name:28} n={row['n']:5d}  refused {row['refused_rate']:6.2%}  (shape only "
                  f"{row['shape_only_refused_rate']:6.2%})")
        print("shape bounds:", json.dumps(result["thresholds"]))
        print("cross-validated refusals with the score:", json.dumps(result["validation_cross_validated"]))
        if "net" in result:
            print("with the learned model too:", json.dumps(result["net"]["validation"]))
            print("  non-digits by kind:", json.dumps(result["net"]["non_digits_by_kind"]))
        path = args.json or "benchmarks/results/non_digits_calibration.json"
    else:
        args.per_kind = args.per_kind or 50
        result = measure(args)
        print(f"{'set':32} {'n':>6} {'refused':>8} {'rate':>7} {'by shape':>9} {'read acc':>9}  reasons")
        for name, r in result["sets"].items():
            acc = f"{r['accuracy_of_read']:.2%}" if r.get("accuracy_of_read") is not None else "-"
            print(f"{name:32} {r['n']:6d} {r['refused']:8d} {r['refused_rate']:7.2%} {r['refused_by_shape_rate']:9.2%} "
                  f"{acc:>9}  {r.get('reasons', '')}")
        path = args.json or "benchmarks/results/non_digits.json"
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {"processor": platform.processor() or platform.machine(), "python": platform.python_version()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1))
    print(f"wrote {path} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
