"""CNN benchmarks: time to accuracy on 2 CPU cores, ensembles, and inference speed.

    python benchmarks/cnn.py fast [--budget 55]          # train under a time budget, report test accuracy
    python benchmarks/cnn.py ensemble MODEL.dlm          # test accuracy of an ensemble file, with/without TTA
    python benchmarks/cnn.py combine OUT.dlm A.dlm B.ckpt   # an ensemble from separately trained members
    python benchmarks/cnn.py inference [--model cnn]     # batch digits/s and single-digit latency p50/p95

Results go to benchmarks/results/cnn_*.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from digitlab.datasets.mnist import load_mnist, train_val_split
from digitlab.digits.cnn import CNNClassifier
from digitlab.training.cnn import TrainConfig, evaluate_net, train_net


def _write(name: str, result: dict) -> None:
    result.update({"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                   "torch": torch.__version__})
    path = Path("benchmarks/results") / f"cnn_{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


def fast(args) -> None:
    full = load_mnist("train")
    # No validation is needed for a fixed-budget run, so --all-train uses all 60,000 digits.
    train, val = (full, None) if args.all_train else train_val_split(full, 5000)
    # --val scores the 5,000 held-out training digits, so settings are chosen without the test set.
    test = val if args.val else load_mnist("test")
    # --members K splits the budget between K networks and averages their probabilities.
    cfgs = [TrainConfig(width=args.width, epochs=args.epochs, augment=args.augment,
                        time_budget=args.budget / args.members if args.budget else None, batch_size=args.batch,
                        lr=args.lr, seed=args.seed + 1000 * k, label_smoothing=args.label_smoothing,
                        precision=args.precision, dropout=args.dropout, stem=args.stem,
                        weight_decay=args.weight_decay, warmup=args.warmup) for k in range(args.members)]
    from digitlab.digits.preprocess import deskew_batch

    t0 = time.perf_counter()
    X = train.images.astype(np.float32) / 255
    if args.deskew:  # timed: deskewing the training set is part of training
        X = deskew_batch(X)
    runs = [train_net(X, train.labels, cfg, progress=False) for cfg in cfgs]
    seconds = time.perf_counter() - t0
    X_test = test.images.astype(np.float32) / 255
    X_test = deskew_batch(X_test) if args.deskew else X_test
    model = CNNClassifier(width=args.width, stem=args.stem, ensemble=args.members).set_nets([net for net, _ in runs])
    members = [evaluate_net(net, X_test, test.labels) for net, _ in runs]
    acc = model.score(X_test, test.labels)
    model.params["tta"] = True  # reported beside, never instead of, the plain accuracy
    acc_tta = model.score(X_test, test.labels)
    epochs = [len(hist) for _, hist in runs]
    split = "validation" if args.val else "MNIST test"
    print(f"width {args.width}, augment {args.augment}, batch {args.batch}, lr {args.lr:g}, {args.precision}, "
          f"dropout {args.dropout:g}, wd {args.weight_decay:g}, warmup {args.warmup:g}, stem {args.stem}, {'deskewed, ' if args.deskew else ''}{args.members} member(s), seed {args.seed}, budget {args.budget} s: "
          f"trained {seconds:.1f} s (epochs {epochs}), {split} accuracy {acc:.2%} (with TTA {acc_tta:.2%})"
          + (f" (members {', '.join(f'{m:.2%}' for m in members)})" if args.members > 1 else ""), flush=True)
    # One file per configuration and seed; settings at their defaults stay out of the name.
    name = [("fast_val_" if args.val else "fast_") + f"w{args.width}_{args.augment}_b{args.batch}"
            f"_ls{args.label_smoothing:g}_{int(args.budget or 0)}s"]
    name += [f"lr{args.lr:g}"] if args.lr != 3e-3 else []
    name += [f"do{args.dropout:g}"] if args.dropout != 0.25 else []
    name += [f"wd{args.weight_decay:g}"] if args.weight_decay != 5e-4 else []
    name += [f"wu{args.warmup:g}"] if args.warmup != 0.2 else []
    name += [args.precision] if args.precision != "fp32" else []
    name += [args.stem] if args.stem != "pool" else []
    name += ["deskew"] if args.deskew else []
    name += [f"x{args.members}"] if args.members > 1 else []
    name += ["all"] if args.all_train else []
    _write("_".join(name + [f"seed{args.seed}"]),
           {"config": cfgs[0].__dict__, "members": args.members, "member_accuracy": members, "deskew": args.deskew,
            "train_size": len(train), "train_seconds": seconds, "epochs_run": epochs,
            ("validation_accuracy" if args.val else "test_accuracy"): acc,
            ("validation" if args.val else "test") + "_accuracy_tta": acc_tta})


def ensemble(args) -> None:
    from digitlab.models import load

    model = load(args.model)
    test = load_mnist("test")
    members = [_single(model, i).score(test.images, test.labels) for i in range(len(model.nets))]
    rows = {"members": members}
    for tta in (False, True):
        model.params["tta"] = tta
        rows["tta" if tta else "plain"] = model.score(test.images, test.labels)
    print(f"{len(model.nets)} members {', '.join(f'{m:.2%}' for m in members)}; ensemble {rows['plain']:.2%}, "
          f"with test-time augmentation {rows['tta']:.2%}")
    _write(f"ensemble_{Path(args.model).stem}", {"model": str(args.model), **rows,
                                                "fit_seconds": model.metadata.get("fit_seconds")})


def combine(args) -> None:
    """Ensemble from members trained separately (model files or finished training checkpoints)."""
    from digitlab.models import load
    from digitlab.digits.cnn import CNNClassifier, DigitNet

    nets, fit = [], 0.0
    for path in args.members:
        if path.endswith(".dlm"):
            m = load(path)
            nets.extend(m.nets)
            fit += float(m.metadata.get("fit_seconds", 0))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = DigitNet(width=state["config"]["width"], stem=state["config"].get("stem", "pool"))
            net.load_state_dict(state["model"])
            nets.append(net)
            fit += float(state["elapsed"])
            print(f"{path}: checkpoint after epoch {state['epoch']}, {state['elapsed']:.0f} s of training")
    model = CNNClassifier(width=32, ensemble=len(nets)).set_nets(nets)
    test = load_mnist("test")
    model.metadata.update({"fit_seconds": round(fit, 1), "members_from": args.members,
                           "test_accuracy": model.score(test.images, test.labels)})
    model.save(args.out)
    print(f"wrote {args.out}: {len(nets)} members, test accuracy {model.metadata['test_accuracy']:.2%}")


def _single(model, i):
    from digitlab.digits.cnn import CNNClassifier

    one = CNNClassifier(**{**model.params, "tta": False})
    return one.set_nets([model.nets[i]])


def inference(args) -> None:
    from digitlab.models import get_model

    model = get_model(args.model)
    X = load_mnist("test").images.astype(np.float32) / 255
    model.predict_proba(X[:512])  # warm-up
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict_proba(X)
        runs.append(len(X) / (time.perf_counter() - t0))
    lat = []
    for i in range(1000):
        t0 = time.perf_counter()
        model.predict_proba(X[i : i + 1])
        lat.append((time.perf_counter() - t0) * 1000)
    res = {"batch_digits_per_s": max(runs), "single_p50_ms": float(np.percentile(lat, 50)),
           "single_p95_ms": float(np.percentile(lat, 95)), "single_p99_ms": float(np.percentile(lat, 99))}
    print(f"batch: {res['batch_digits_per_s']:.0f} digits/s; single digit: p50 {res['single_p50_ms']:.2f} ms, "
          f"p95 {res['single_p95_ms']:.2f} ms, p99 {res['single_p99_ms']:.2f} ms")
    _write("inference", res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fast")
    p.add_argument("--budget", type=float, default=55)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--epochs", type=float, default=4)
    p.add_argument("--augment", default="none")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--all-train", action="store_true", help="train on all 60k digits (no validation split)")
    group.add_argument("--val", action="store_true", help="score the validation split, not the test set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--weight-decay", type=float, default=5e-4, help="AdamW (decoupled) weight decay")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the schedule spent warming up")
    p.add_argument("--deskew", action="store_true", help="deskew training and test digits (moments)")
    p.add_argument("--stem", default="pool", choices=["pool", "stride"])
    p.add_argument("--members", type=int, default=1, help="networks sharing the budget (averaged)")
    p.set_defaults(func=fast)
    p = sub.add_parser("ensemble")
    p.add_argument("model")
    p.set_defaults(func=ensemble)
    p = sub.add_parser("combine")
    p.add_argument("out")
    p.add_argument("members", nargs="+", help=".dlm files or finished training checkpoints (.ckpt)")
    p.set_defaults(func=combine)
    p = sub.add_parser("inference")
    p.add_argument("--model", default=None)
    p.set_defaults(func=inference)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
