"""Profiles: how much do a few labelled examples of a group of writers help?

Writers the shipped CNN never saw: optdigits (43 writers, 32x32 bitmaps, converted the MNIST way:
cropped to the ink, fitted into 20x20, centred by mass in 28x28). For k examples per digit drawn at
random from a split, a profile is built from them and the error is measured on the rest of that
split, for several random draws; MNIST accuracy with the same profile checks that nothing else breaks.

- ``--tune``: the method's settings are chosen on ``--tune-split`` (``pen_tra``: pendigits' 30 training writers, drawn; ``cv``: optdigits' 30 writers) with MNIST's validation split
  (5k digits the CNN never trained on) as the check -> benchmarks/results/adapt_tune.json;
- default: the chosen settings (``digitlab.digits.adapted.DEFAULTS``) reported on ``windep`` (13
  other writers) with the MNIST test set -> benchmarks/results/adapt.json and adapt.png, with the
  prototypes-only and head-only variants beside the full method.

    DIGITLAB_DATA=/path/to/datasets nice -n 10 python benchmarks/adapt.py            # report (windep)
    DIGITLAB_DATA=/path/to/datasets nice -n 10 python benchmarks/adapt.py --tune     # choose (cv)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from digitlab.datasets.mnist import load_mnist, load_optdigits, train_val_split  # noqa: E402
from digitlab.digits.adapted import DEFAULTS, ProfileModel, class_similarity, embed, mix  # noqa: E402
from digitlab.digits.preprocess import crop_and_fit  # noqa: E402
from digitlab.profiles.core import guard_set, replay_set  # noqa: E402
from digitlab.models import get_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def optdigits28(split: str):
    """optdigits bitmaps (or, for ``pen_tra``, pendigits' training writers' pen strokes, drawn) converted
    to MNIST-style 28x28 floats, and their labels."""
    if split == "pen_tra":
        from digitlab.datasets.pens import compose_line, load_pendigits

        pens, rng = load_pendigits("tra"), np.random.default_rng(0)
        X = [crop_and_fit(compose_line(c, pens, w, rng)) for w, chars in sorted(pens.by_writer.items())
             for c in sorted(chars) for _ in chars[c][:40]]
        y = [int(c) for w, chars in sorted(pens.by_writer.items()) for c in sorted(chars) for _ in chars[c][:40]]
        return np.stack(X).astype(np.float32), np.asarray(y)
    s = load_optdigits(split)
    X = np.stack([crop_and_fit(im.astype(np.float32) / 255) for im in s.images]).astype(np.float32)
    return X, np.asarray(s.labels)


def draw(y: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k random examples of each digit (indices), and the rest."""
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == d), size=k, replace=False) for d in range(10)])
    rest = np.setdiff1d(np.arange(len(y)), idx)
    return idx, rest


class Cached:
    """A set of digits with its base embeddings and probabilities computed once."""

    def __init__(self, base, X, y):
        self.X, self.y = X, y
        self.E = embed(base, X)
        self.P = base.predict_proba(X)


def evaluate(model: ProfileModel, data: Cached, rows=None, grid=None) -> dict:
    """Errors (optdigits) or accuracies of the profile on cached embeddings; over ``grid`` if given."""
    rows = np.arange(len(data.y)) if rows is None else rows
    deep = any(k.startswith("features") for k in model.adapted)  # the embedding itself was adapted
    E = model.embeddings(data.X[rows]) if deep else data.E[rows]
    y = data.y[rows]
    p_head = model.net_proba(E, base_proba=data.P[rows])
    s_c = class_similarity(model._normalise(E), model.proto, model.proto_labels)
    p = model.params
    combos = grid or [(p["alpha"], p["tau"], p["temperature"])]
    out = {}
    for a, t, T in combos:
        pred = (mix(p_head, s_c, a, t, T) if a > 0 else p_head).argmax(1)
        out[(a, t, T)] = float((pred != y).mean())
    return out


def run(split: str, check: str, configs: dict[str, dict], shots, draws: int, grid=None, seed: int = 0,
        use_guard: bool = False) -> dict:
    t_start = time.perf_counter()
    base = get_model(None)
    X, y = optdigits28(split)
    opt = Cached(base, X, y)
    if check == "val":
        _, val = train_val_split(load_mnist("train"))
        mn = Cached(base, val.images.astype(np.float32) / 255, np.asarray(val.labels))
    else:
        t = load_mnist("test")
        mn = Cached(base, t.images.astype(np.float32) / 255, np.asarray(t.labels))
    rx, ry = replay_set(2000, seed=seed)
    replay_embedded = (embed(base, rx.astype(np.float32) / 255), ry)
    guard_cache = None
    if use_guard:  # as `digitlab adapt` does: 2000 MNIST validation digits may lose at most guard_drop
        gx, gy = guard_set(2000, seed=seed)
        gx = gx.astype(np.float32) / 255
        guard_cache = (embed(base, gx), base.predict_proba(gx), gy, gx)
    base_err = float((opt.P.argmax(1) != y).mean())
    base_mnist = float((mn.P.argmax(1) == mn.y).mean())
    print(f"{split}: {len(y)} digits, base error {base_err:.2%}; MNIST {check} base accuracy {base_mnist:.2%}",
          flush=True)
    results = {"split": split, "mnist_check": check, "n_digits": int(len(y)), "base_error": base_err,
               "base_mnist_accuracy": base_mnist, "draws": draws, "shots": list(shots), "variants": {}}
    for name, settings in configs.items():
        per_k = {}
        for k in shots:
            errs, accs, secs, base_rest, guards = [], [], [], [], []
            for r in range(draws):
                idx, rest = draw(y, k, seed=1000 * k + r + seed)
                t0 = time.perf_counter()
                model = ProfileModel(**settings).fit(X[idx], y[idx], replay=(rx, ry), replay_embedded=replay_embedded,
                                                     guard_cache=guard_cache)
                guards.append(model.metadata.get("guard", {}).get("steps", [{}])[-1])
                secs.append(time.perf_counter() - t0)
                errs.append(evaluate(model, opt, rest, grid))
                accs.append({c: 1 - e for c, e in evaluate(model, mn, None, grid).items()})
                base_rest.append(float((opt.P[rest].argmax(1) != y[rest]).mean()))
            if not grid:  # one setting per draw, which the guard may have moved: key the draws alike
                key = (settings.get("alpha"), settings.get("tau"), settings.get("temperature"))
                errs = [{key: next(iter(e.values()))} for e in errs]
                accs = [{key: next(iter(a.values()))} for a in accs]
            combos = list(errs[0])
            per_k[k] = {
                "base_error_rest": {"mean": float(np.mean(base_rest)), "std": float(np.std(base_rest))},
                "build_seconds": float(np.mean(secs)),
                "guard_final": guards,
                "by_setting": [{"alpha": c[0], "tau": c[1], "temperature": c[2],
                                "error": {"mean": float(np.mean([e[c] for e in errs])),
                                          "std": float(np.std([e[c] for e in errs])),
                                          "draws": [round(e[c], 5) for e in errs]},
                                "mnist_accuracy": {"mean": float(np.mean([a[c] for a in accs])),
                                                   "min": float(np.min([a[c] for a in accs]))}}
                               for c in combos]}
            if grid:
                best = min(per_k[k]["by_setting"], key=lambda r: r["error"]["mean"])
                print(f"  {name:28} k={k:2d}: best error {best['error']['mean']:.2%} (a={best['alpha']} "
                      f"tau={best['tau']} T={best['temperature']}, MNIST min {best['mnist_accuracy']['min']:.2%}); "
                      f"built in {per_k[k]['build_seconds']:.1f} s", flush=True)
            else:
                s = per_k[k]["by_setting"][0]
                print(f"  {name:12} k={k:2d}: error {s['error']['mean']:.2%} ± {s['error']['std']:.2%} "
                      f"(base on the same digits {per_k[k]['base_error_rest']['mean']:.2%}); MNIST "
                      f"{s['mnist_accuracy']['mean']:.2%} (min {s['mnist_accuracy']['min']:.2%}); "
                      f"built in {per_k[k]['build_seconds']:.1f} s", flush=True)
        results["variants"][name] = {"settings": settings, "shots": per_k}
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    return results


def tune(args) -> dict:
    grid = list(itertools.product([0.5, 0.7, 0.9, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.01, 0.02, 0.05, 0.1]))
    grid.append((0.0, 0.0, 1.0))  # no prototypes: the head alone
    configs = {}
    for aug in (0, 4):
        configs[f"aug{aug}"] = {"augment": aug, "head_steps": 0}
        for steps, l2, w in ((200, 1.0, 4.0), (200, 0.1, 4.0), (200, 1.0, 1.0)):
            configs[f"aug{aug}_head{steps}_l2{l2}_w{w}"] = {"augment": aug, "head_steps": steps, "head_l2": l2,
                                                          "example_weight": w}
    for name in ("aug4", "aug4_head200_l21.0_w4.0", "aug4_head200_l20.1_w4.0"):  # with MNIST anchors
        for m in (1000, 2000):
            configs[f"{name}_anc{m}"] = {**configs[name], "anchors": m}
    for l2 in (1.0, 0.1):  # the last conv block too: slower, tried with jitters only
        configs[f"aug4_block100_l2{l2}_w4.0"] = {"augment": 4, "block_steps": 100, "head_l2": l2, "example_weight": 4.0}
    if args.only:
        configs = {k: v for k, v in configs.items() if any(o in k for o in args.only)}
    if args.skip:
        configs = {k: v for k, v in configs.items() if not any(o in k for o in args.skip)}
    res = run(args.tune_split, "val", configs, args.shots, args.draws, grid)
    # Choice: the lowest mean error over the shots, among settings that never cost MNIST validation
    # more than 0.1 percentage point in any draw.
    floor = res["base_mnist_accuracy"] - 0.001
    table = []
    for name, v in res["variants"].items():
        for i, s in enumerate(v["shots"][args.shots[0]]["by_setting"]):
            rows = [v["shots"][k]["by_setting"][i] for k in args.shots]
            table.append({"config": name, "settings": v["settings"], "alpha": s["alpha"], "tau": s["tau"],
                          "temperature": s["temperature"],
                          "error": {k: r["error"]["mean"] for k, r in zip(args.shots, rows)},
                          "mean_error": float(np.mean([r["error"]["mean"] for r in rows])),
                          "mnist_min": float(min(r["mnist_accuracy"]["min"] for r in rows)),
                          "ok": bool(min(r["mnist_accuracy"]["min"] for r in rows) >= floor)})
    table.sort(key=lambda r: (not r["ok"], r["mean_error"]))
    res["ranking"] = table[:40]
    res["chosen"] = table[0]
    print("best on cv:", json.dumps(table[0]))
    for r in table[:12]:
        print(f"  {r['config']:28} a={r['alpha']} tau={r['tau']} T={r['temperature']}: "
              + " ".join(f"k{k}={e:.2%}" for k, e in r["error"].items()) + f"  MNIST val min {r['mnist_min']:.2%}"
              + ("" if r["ok"] else "  (costs MNIST)"))
    return res


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for v in res["variants"].values():  # from JSON the shot counts are strings
        v["shots"] = {int(k): x for k, x in v["shots"].items()}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    shots = res["shots"]
    first = next(iter(res["variants"].values()))["shots"]
    base = [first[k]["base_error_rest"]["mean"] * 100 for k in shots]
    ax.plot(shots, base, "k--", marker="o", label="shipped CNN (no profile)")
    for name, v in res["variants"].items():
        m = [v["shots"][k]["by_setting"][0]["error"]["mean"] * 100 for k in shots]
        s = [v["shots"][k]["by_setting"][0]["error"]["std"] * 100 for k in shots]
        ax.errorbar(shots, m, yerr=s, marker="o", capsize=3, label=name)
        acc = [v["shots"][k]["by_setting"][0]["mnist_accuracy"]["mean"] * 100 for k in shots]
        ax2.plot(shots, acc, marker="o", label=name)
    ax2.axhline(res["base_mnist_accuracy"] * 100, color="k", ls="--", label="shipped CNN")
    ax2.axhline(99.5, color="r", ls=":", label="target 99.5%")
    ax.set(xlabel="labelled examples per digit", ylabel="error on the rest of the writers' digits (%)",
           title=f"optdigits {res['split']} (writers the CNN never saw), {res['draws']} draws", xticks=shots)
    ax2.set(xlabel="labelled examples per digit", ylabel="MNIST test accuracy with the profile (%)",
            title="MNIST test with the profile (mean over draws)", xticks=shots)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tune", action="store_true", help="choose the settings on --tune-split + MNIST validation")
    ap.add_argument("--tune-split", default="cv", choices=["cv", "pen_tra"],
                    help="--tune: optdigits cv, or pendigits' 30 training writers' pen strokes drawn as digits")
    ap.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5, 10])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--plot", metavar="JSON", help="only redraw the plot of a results file")
    ap.add_argument("--no-guard", action="store_true", help="report: without the MNIST guard of `digitlab adapt`")
    ap.add_argument("--only", nargs="+", help="--tune: only the configurations whose names contain one of these")
    ap.add_argument("--skip", nargs="+", help="--tune: leave out the configurations whose names contain one of these")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("DIGITLAB_THREADS", os.cpu_count() or 1)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot:
        plot(json.loads(Path(args.plot).read_text()), Path(args.plot).with_suffix(".png"))
        return
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__}
    if args.tune:
        res = tune(args)
        res["machine"] = machine
        res.pop("variants", None)  # every setting of every configuration: megabytes; the ranking keeps the best 40
        (out / "adapt_tune.json").write_text(json.dumps(res, indent=1))
        return
    full = dict(DEFAULTS)
    tuned = full["head_steps"] or full["block_steps"]
    variants = {"profile (prototypes + fine-tuning)" if tuned else "profile (prototypes)": full,
                "prototypes only": {**full, "head_steps": 0, "block_steps": 0},
                "fine-tuning only": {**full, "alpha": 0.0, **({} if tuned else {"head_steps": 200})}}
    res = run("windep", "test", variants, args.shots, args.draws, use_guard=not args.no_guard)
    res["machine"] = machine
    res["command"] = "DIGITLAB_DATA=... nice -n 10 python benchmarks/adapt.py"
    (out / "adapt.json").write_text(json.dumps(res, indent=1))
    plot(res, out / "adapt.png")
    print(f"wrote {out / 'adapt.json'} and {out / 'adapt.png'} in {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
