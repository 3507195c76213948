"""``digitlab train``: the digit models, the line reader, the reject model and the slice CNN."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import DigitlabError
from .options import data_args, non_negative, param_values, share


def cmd_train(args) -> int:
    from ..training.cnn import init_distributed
    from ..training.registered import train_model

    if args.method == "line-reader":
        from ..reader.train import train_line_reader
        from ..models.files import models_dir

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
    params = param_values(args.param)
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
    from ..models.files import models_dir
    from ..training.reject import train_reject

    _refuse_options(args, "reject", ("time_budget", "ensemble", "width", "augment", "batch_size", "lr", "device",
                                     "precision", "val_size", "optdigits", "styles", "init", "warp", "kern", "symbols"),
                    "--epochs, --seed, --subset, --out, --param digits/degraded/non_digits/width")
    params = param_values(args.param)
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
    from ..models.files import models_dir
    from ..reader.slices import train_slice_cnn

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


def add_train(sub) -> None:
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
    p.add_argument("--styles", type=non_negative, metavar="S", help="CNN and line reader: add stylised copies of S times the default share "
                   "of 1s, 4s, 7s and 9s (flagged 1s, open 4s, crossed 7s, hooked 9s: writers who are not MNIST's; default 0)")
    p.add_argument("--photo", type=share, metavar="P", help="line reader: share of training lines degraded as in a "
                   "phone photo: written small (digits 9-22 px), bolder for their size, blurred, JPEG (default 0)")
    p.add_argument("--warp", type=share, metavar="W", help="line reader: share of training digits distorted "
                   "(rotated, sheared, elastic), so the reader learns digits rather than its training glyphs (default 0)")
    p.add_argument("--kern", type=share, metavar="K", help="line reader: share of training lines spaced by their ink "
                   "rather than their boxes (a minus slides under the hook of the next 2; default 0)")
    p.add_argument("--symbols", action="store_true", default=None, help="slice-cnn: learn every symbol of a line (digits and "
                   "operators), so the second opinion covers operators too")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    data_args(p)
    p.set_defaults(func=cmd_train)
