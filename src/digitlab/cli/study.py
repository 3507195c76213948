"""The comparative study: ``digitlab benchmark | tune``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DigitlabError


def cmd_benchmark(args) -> int:
    from ..datasets.mnist import load_mnist
    from ..study.report import default_report_dir, write_report
    from ..study.run import DEFAULT_METHODS, benchmark

    methods = args.methods.split(",") if args.methods else DEFAULT_METHODS
    unknown = set(methods) - set(DEFAULT_METHODS)
    if unknown:
        raise DigitlabError(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(DEFAULT_METHODS)}")
    from ..models.files import models_dir

    results = benchmark(methods, args.subset, args.data_dir, unsupervised=not args.no_unsupervised,
                        progress=not args.quiet, save_dir=None if args.no_save else models_dir(),
                        other_sets=not args.no_other_sets)
    out = Path(args.out) if args.out else default_report_dir()
    tuning_dir = out / "tuning"
    if tuning_dir.is_dir():
        results["tuning"] = {p.stem: json.loads(p.read_text()) for p in sorted(tuning_dir.glob("*.json"))}
    paths = write_report(results, out, load_mnist("test", args.data_dir).images)
    if args.json:
        Path(args.json).write_text(json.dumps(json.loads(paths["json"].read_text()), indent=1))
    print(f"report: {paths['html']} and {paths['md']}")
    return 0


def cmd_tune(args) -> int:
    from ..io.files import atomic_write
    from ..study.report import default_report_dir, figures
    from ..study.run import tune, tuned_path

    result = tune(args.method, args.data_dir, train_n=args.subset, progress=not args.quiet)
    out = (Path(args.out) if args.out else default_report_dir()) / "tuning"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{args.method}.json", json.dumps(result, indent=1).encode())
    figures({"methods": {}, "tuning": {args.method: result}}, out)
    best = result["best"]
    print(f"best validation accuracy {best['val_accuracy']:.2%} with {best['params']}")
    if args.apply:
        path = tuned_path()
        current = json.loads(path.read_text()) if path.exists() else {}
        current[args.method] = best["params"]
        atomic_write(path, json.dumps(current, indent=1).encode())
        print(f"saved as the defaults for {args.method} in {path}")
    return 0


def add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="the comparative study: fit, time and score every method; write the report")
    p.add_argument("--methods", help="comma-separated subset of: linear,knn,svm,mlp,kmeans,cnn (default: all)")
    p.add_argument("--subset", type=int, default=None, help="train on N digits only (quick run)")
    p.add_argument("--out", help="report folder (default: ~/.cache/digitlab/report, shown by the web app)")
    p.add_argument("--json", help="also write the results JSON here")
    p.add_argument("--no-unsupervised", action="store_true", help="skip PCA / K-means / UMAP")
    p.add_argument("--no-other-sets", action="store_true",
                   help="skip the other writers (optdigits windep) and the degraded MNIST test sets")
    p.add_argument("--no-save", action="store_true", help="do not keep the fitted models for predict/serve")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_benchmark)


def add_tune(sub) -> None:
    p = sub.add_parser("tune", help="search a method's parameters on a validation split (never the test set)")
    p.add_argument("method", help="linear, knn, svm, mlp or kmeans")
    p.add_argument("--subset", type=int, default=None, help="training digits per fit (default: per method)")
    p.add_argument("--out", help="report folder (tuning/METHOD.json and .png go under it)")
    p.add_argument("--apply", action="store_true", help="use the best parameters as defaults from now on")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_tune)
