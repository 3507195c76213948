"""The ``digitlab`` command line. Every subcommand has ``--help``; errors are one line, exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import DigitlabError, ImageError, SeveralSymbols, report_file_error, without_name

EXIT_USAGE = 2


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $DIGITLAB_DATA, then the cache)")


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _params(pairs: list[str] | None) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise DigitlabError(f"--param expects NAME=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = _parse_value(v)
    return out


# -- predict ----------------------------------------------------------------------------------------
def cmd_predict(args) -> int:
    from .io.files import expand_paths
    from .models import get_model
    from .digits.recognize import predict_source

    if getattr(args, "profile", None):  # profiles: the base model adapted to a class's handwriting
        if args.model:
            raise DigitlabError("--profile already names its base model; leave out --model")
        from .profiles import get_profile

        model = get_profile(args.profile)
    else:
        model = get_model(args.model)
    failures = 0
    for path in expand_paths(args.paths):
        try:
            pred = predict_source(model, path, name=str(path))
        except ImageError as exc:
            failures += 1
            if isinstance(exc, SeveralSymbols):
                exc = SeveralSymbols(f"{exc}; read a number with `digitlab read`, check arithmetic with `digitlab check`")
            if args.json:  # the line still says "no digit" in the field a reader of the output looks at
                print(json.dumps({"file": str(path), "digit": None, "error": without_name(str(exc), path)}),
                      flush=True)
            else:
                report_file_error(path, exc, args.json)
            continue
        if args.json:
            print(json.dumps({"file": str(path), **pred.as_dict()}), flush=True)
        else:
            print(f"{path}\t{pred.digit}\t{pred.confidence:.4f}", flush=True)
    return EXIT_USAGE if failures else 0


# -- evaluate ---------------------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from .datasets.mnist import load_mnist, subset
    from .models import get_model

    if getattr(args, "profile", None):  # profiles
        from .profiles import get_profile

        model = get_profile(args.profile)
    else:
        model = get_model(args.model)
    test = subset(load_mnist("test", args.data_dir), args.subset)
    t0 = time.perf_counter()
    pred = model.predict(test.images)
    seconds = time.perf_counter() - t0
    acc = float((pred == test.labels).mean())
    result = {"model": model.name, "n": len(test), "accuracy": acc, "errors": int((pred != test.labels).sum()),
              "predict_seconds": round(seconds, 3)}
    print(json.dumps(result) if args.json else
          f"{model.name}: MNIST test accuracy {acc:.2%} ({result['errors']} errors of {len(test)}), "
          f"predicted in {seconds:.2f} s")
    return 0


# -- train ------------------------------------------------------------------------------------------
def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def _share(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, not {text!r}")
    return value


def cmd_train(args) -> int:
    from .training.cnn import init_distributed
    from .training.registered import train_model

    if args.method == "line-reader":
        from .reader.train import train_line_reader
        from .models.files import models_dir

        out = args.out or models_dir() / "line_reader.dlm"
        model = train_line_reader(out, seconds=args.time_budget or 1500, seed=args.seed or 0, lr=args.lr or 2e-3,
                                  data_dir=args.data_dir, progress=not args.quiet, init=args.init,
                                  styles=args.styles or 0.0, photo=args.photo or 0.0, warp=args.warp or 0.0,
                                  kern=args.kern or 0.0)
        print(f"saved line reader to {out}: {model.metadata.get('val_line_accuracy', 0):.1%} of validation lines "
              f"read exactly (validation writers), {model.metadata.get('steps')} steps")
        return 0
    if args.method == "reject":  # the learned "is this a digit?" model of digitlab.digits.reject
        return _train_reject(args)
    if args.method == "slice-cnn":  # the CNN that gives the checker its second opinion on line slices
        return _train_slices(args)
    distributed = init_distributed()
    params = _params(args.param)
    if args.method == "cnn":
        for key in ("epochs", "time_budget", "ensemble", "seed", "device", "width", "augment", "batch_size", "lr",
                    "precision", "val_size"):
            val = getattr(args, key, None)
            if val is not None:
                params[key] = val
    out = train_model(args.method, params, data_dir=args.data_dir, out=args.out, subset_n=args.subset,
                      resume=args.resume, progress=not args.quiet, optdigits_repeat=args.optdigits or 0,
                      styles=args.styles or 0.0)
    if out is not None:
        print(f"saved {args.method} model to {out['path']}: test accuracy {out['test_accuracy']:.2%}, "
              f"trained in {out['fit_seconds']:.1f} s")
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def _refuse_options(args, method: str, names: tuple[str, ...], takes: str) -> None:
    """One error line naming the given train options (and --resume) that ``method`` does not take."""
    other = [f"--{k.replace('_', '-')}" for k in names if getattr(args, k, None) is not None]
    other += ["--resume"] if args.resume else []
    if other:
        raise DigitlabError(f"{method}: {', '.join(other)} do not apply (it takes {takes})")


def _train_reject(args) -> int:
    from .models.files import models_dir
    from .digits.rejectnet import train_reject

    _refuse_options(args, "reject", ("time_budget", "ensemble", "width", "augment", "batch_size", "lr", "device",
                                     "precision", "val_size", "optdigits", "styles", "init", "warp", "kern", "symbols"),
                    "--epochs, --seed, --subset, --out, --param digits/degraded/non_digits/width")
    params = _params(args.param)
    unknown = set(params) - {"digits", "degraded", "non_digits", "width"}
    if unknown:
        raise DigitlabError(f"reject: unknown --param {', '.join(sorted(unknown))} "
                            "(choose from digits, degraded, non_digits, width)")
    if args.subset is not None:  # a small run: N digits, N/2 non-digits, N/20 of each degradation
        params.setdefault("digits", args.subset)
        params.setdefault("non_digits", max(10, args.subset // 2))
        params.setdefault("degraded", args.subset // 20)
    try:
        params = {k: int(v) for k, v in params.items()}
    except (TypeError, ValueError):
        raise DigitlabError("reject: --param values must be whole numbers") from None
    out = Path(args.out) if args.out else models_dir() / "reject.dlm"
    t0 = time.perf_counter()
    model = train_reject(out, data_dir=args.data_dir, epochs=8 if args.epochs is None else args.epochs, seed=args.seed or 0,
                         progress=not args.quiet, **params)
    info = model.metadata["data"]
    err = model.metadata["history"][-1].get("holdout_error")
    print(f"saved reject model to {out}: {info['digits']} digits, {info['non_digits']} non-digits, "
          f"held-out error {err:.2%}, {time.perf_counter() - t0:.0f} s; set its bound with "
          "`python benchmarks/non_digits.py --calibrate --write` (the shipped one is weights/reject.dlm)")
    return 0


def _train_slices(args) -> int:
    from .models.files import models_dir
    from .reader.slices import train_slice_cnn

    _refuse_options(args, "slice-cnn", ("time_budget", "ensemble", "width", "augment", "batch_size", "device",
                                        "precision", "val_size", "optdigits", "init", "param", "warp", "kern"),
                    "--subset N lines, --epochs, --lr, --seed, --photo, --styles, --symbols, --out")
    if args.epochs is not None and not args.epochs > 0:
        raise DigitlabError("slice-cnn: --epochs must be more than 0")
    if args.subset is not None and args.subset < 10:
        raise DigitlabError("slice-cnn: --subset must be at least 10 lines")
    out = Path(args.out) if args.out else models_dir() / "slice_cnn.dlm"
    lines = args.subset or 30000
    model = train_slice_cnn(out, lines=lines, val_lines=max(10, min(3000, lines // 10)),
                            epochs=args.epochs or 3.0, lr=args.lr or 1e-3, seed=args.seed or 0,
                            photo=0.3 if args.photo is None else args.photo,
                            styles=1.0 if args.styles is None else args.styles, data_dir=args.data_dir,
                            progress=not args.quiet, max_per_digit=300 if args.subset else None,
                            symbols=bool(args.symbols))
    md = model.metadata
    ops = md.get("val_operator_accuracy")
    print(f"saved slice CNN to {out}: {md['train_size']} training slices, validation slices' digits read "
          f"{md['base_val_slice_accuracy']:.2%} -> {md['val_slice_accuracy']:.2%}"
          + (f", their operators {ops:.2%}" if ops is not None else "") + f", {md['fit_seconds']:.0f} s "
          "(recalibrate the reader with `python -m digitlab.arithmetic.calibrate --digits PATH`)")
    return 0


# -- models -----------------------------------------------------------------------------------------
def cmd_models(args) -> int:
    from .errors import ModelError
    from .models.base import REGISTRY, read_header
    from .models import available
    from .models.files import model_path

    available()
    rows = []
    for name in sorted(REGISTRY):
        try:
            path = model_path(name)
            acc = read_header(path)[0].get("metadata", {}).get("test_accuracy")
        except ModelError:
            path, acc = None, None
        rows.append({"name": name, "description": REGISTRY[name].description,
                     "trained": str(path) if path else None, "test_accuracy": acc})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            acc = f"{r['test_accuracy']:.2%}" if r["test_accuracy"] else "-"
            print(f"{r['name']:8} {acc:>7}  {r['description']}" + ("" if r["trained"] else "  (not trained)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitlab", description="Read handwritten digits, numbers and arithmetic.")
    parser.add_argument("--version", action="version", version=f"digitlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="recognise one digit per image file", description="Recognise one digit per image.")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--model", default=None, help="model name (cnn, svm, ...) or .dlm file; default: shipped CNN")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--profile", help="a handwriting profile built with `digitlab adapt` (see `digitlab profiles`)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy of a model on the MNIST test set")
    p.add_argument("--model", default=None, help="model name or .dlm file (default: shipped CNN)")
    p.add_argument("--subset", type=int, default=None, help="only the first N test digits (random, seeded)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", help="evaluate the base model with this handwriting profile")
    _data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a model on MNIST and save it",
                       description="Train a model. Under torchrun, CNN training runs distributed (DDP).")
    p.add_argument("method", help="model name: cnn, linear, knn, svm, mlp, kmeans; line-reader (the homework and number reader); "
                   "reject (the 'is this a digit?' model; --subset N for a small run, --param digits/degraded/non_digits/width); "
                   "or slice-cnn (the CNN fine-tuned on digits cut out of lines, the checker's second opinion; --subset N lines)")
    p.add_argument("--out", help="where to save (default: the models folder, NAME.dlm)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="model parameter (repeatable)")
    p.add_argument("--subset", type=int, default=None, help="train on N training digits only")
    p.add_argument("--epochs", type=float, help="CNN, reject and slice-cnn: epochs (reject: default 8, slice-cnn: 3)")
    p.add_argument("--init", metavar="MODEL", help="line-reader: continue from this model's weights (warm restart)")
    p.add_argument("--time-budget", type=float, help="CNN: seconds of training; the schedule ends on time")
    p.add_argument("--ensemble", type=int, help="CNN: number of members to train and average")
    p.add_argument("--width", type=int, help="CNN: channels of the first layer")
    p.add_argument("--augment", choices=["none", "shift", "light", "full"], help="CNN: data augmentation")
    p.add_argument("--batch-size", type=int, help="CNN: batch size")
    p.add_argument("--lr", type=float, help="CNN: peak learning rate")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="CNN: device")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="CNN: bf16 trains ~1.5-2x faster on CPUs with AVX512-BF16/AMX (default fp32)")
    p.add_argument("--val-size", type=int, help="CNN: digits held out for validation (default 5000; 0 = train on all)")
    p.add_argument("--resume", action="store_true", help="CNN: continue from the last epoch checkpoint")
    p.add_argument("--optdigits", type=int, metavar="N", help="add the 30 optdigits training writers (tra) N times "
                   "to MNIST train (other writers' styles; optdigits cv is scored as their validation)")
    p.add_argument("--styles", type=_non_negative, metavar="S", help="CNN and line reader: add stylised copies of S times the default share "
                   "of 1s, 4s, 7s and 9s (flagged 1s, open 4s, crossed 7s, hooked 9s: writers who are not MNIST's; default 0)")
    p.add_argument("--photo", type=_share, metavar="P", help="line reader: share of training lines degraded as in a "
                   "phone photo: written small (digits 9-22 px), bolder for their size, blurred, JPEG (default 0)")
    p.add_argument("--warp", type=_share, metavar="W", help="line reader: share of training digits distorted "
                   "(rotated, sheared, elastic), so the reader learns digits rather than its training glyphs (default 0)")
    p.add_argument("--kern", type=_share, metavar="K", help="line reader: share of training lines spaced by their ink "
                   "rather than their boxes (a minus slides under the hook of the next 2; default 0)")
    p.add_argument("--symbols", action="store_true", default=None, help="slice-cnn: learn every symbol of a line (digits and "
                   "operators), so the second opinion covers operators too")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("models", help="list the registered models and the trained ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Subcommands whose modules register themselves here (kept in their own modules)."""
    from . import commands

    commands.register(sub)
    from .worksheets.cli import register as register_worksheet  # worksheets

    register_worksheet(sub)
    from .profiles.cli import register as register_profiles  # profiles: adapt, profiles

    register_profiles(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    except (DigitlabError, ValueError, OSError) as exc:
        if args.debug or os.environ.get("DIGITLAB_DEBUG"):
            raise
        print(f"digitlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
