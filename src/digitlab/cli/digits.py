"""One digit at a time: ``digitlab predict | evaluate | models | visualize | export | quantize``."""

from __future__ import annotations

import json
import time

from ..errors import DigitlabError, ImageError, SeveralSymbols, report_file_error, without_name
from .options import EXIT_USAGE, data_args


def cmd_predict(args) -> int:
    from ..io.files import expand_paths
    from ..models import get_model
    from ..digits.recognize import predict_source

    if getattr(args, "profile", None):  # profiles: the base model adapted to a class's handwriting
        if args.model:
            raise DigitlabError("--profile already names its base model; leave out --model")
        from ..profiles import get_profile

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


def cmd_evaluate(args) -> int:
    from ..datasets.mnist import load_mnist, subset
    from ..models import get_model

    if getattr(args, "profile", None):  # profiles
        from ..profiles import get_profile

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


def cmd_models(args) -> int:
    from ..errors import ModelError
    from ..models.base import REGISTRY, read_header
    from ..models import available
    from ..models.files import model_path

    available()
    rows = []
    for name in sorted(REGISTRY):
        path, acc = None, None
        for file_name in dict.fromkeys((name, name.replace("-", "_"))):  # "line-reader": line_reader.dlm
            try:
                path = model_path(file_name)
                acc = read_header(path)[0].get("metadata", {}).get("test_accuracy")
                break
            except ModelError:
                path = None
        rows.append({"name": name, "description": REGISTRY[name].description,
                     "trained": str(path) if path else None, "test_accuracy": acc})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            acc = f"{r['test_accuracy']:.2%}" if r["test_accuracy"] else "-"
            print(f"{r['name']:12} {acc:>7}  {r['description']}" + ("" if r["trained"] else "  (not trained)"))
    return 0


def cmd_visualize(args) -> int:
    from ..digits.preprocess import preprocess_digit
    from ..models import get_model
    from ..digits.visualize import save_figures

    image = preprocess_digit(args.image, name=args.image)
    paths = save_figures(get_model(args.model), image, args.out)
    for p in paths:
        print(p)
    return 0


def cmd_export(args) -> int:
    from ..digits.export import export_line_reader, export_onnx
    from ..models import get_model, model_path, models_dir
    from ..reader.crnn import LineReader

    if not args.onnx:
        raise DigitlabError("choose a format: --onnx")
    model = get_model(args.model)
    if isinstance(model, LineReader):  # its twin, where the reader finds it (a folder)
        path = export_line_reader(model, args.out or models_dir(), model_path(args.model).stem)
    else:
        path = export_onnx(model, args.out or "digitlab.onnx")
    print(f"wrote {path}")
    return 0


def cmd_quantize(args) -> int:
    from ..datasets.mnist import load_mnist, train_val_split
    from ..models import load
    from ..digits.cnn import CNNClassifier
    from ..models.files import model_path

    src = model_path(args.model)
    model = load(src)
    if not isinstance(model, CNNClassifier):
        raise DigitlabError(f"{src}: only the CNN can be quantized")
    # Calibration digits come from MNIST train's held-back validation split: never the test set.
    _, val = train_val_split(load_mnist("train", data_dir=args.data_dir), 5000)
    model.quantize(val.images[: args.calibration])
    model.metadata["int8_calibration"] = f"{args.calibration} digits of MNIST train's held-back validation split"
    out = model.save(args.out or src)
    print(f"wrote {out} (int8 inference; the float weights are kept)")
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="recognise one digit per image file", description="Recognise one digit per image.")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--model", default=None, help="model name (cnn, svm, ...) or .dlm file; default: shipped CNN")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--profile", help="a handwriting profile built with `digitlab adapt` (see `digitlab profiles`)")
    p.set_defaults(func=cmd_predict)


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a model on the MNIST test set")
    p.add_argument("--model", default=None, help="model name or .dlm file (default: shipped CNN)")
    p.add_argument("--subset", type=int, default=None, help="only the first N test digits (random, seeded)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", help="evaluate the base model with this handwriting profile")
    data_args(p)
    p.set_defaults(func=cmd_evaluate)


def add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered models and the trained ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def add_visualize(sub) -> None:
    p = sub.add_parser("visualize", help="draw the CNN's layers, filters, feature maps and saliency for an image")
    p.add_argument("image", help="an image of one digit")
    p.add_argument("--out", default="network", help="output folder (default: ./network)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_visualize)


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export the CNN or a line reader (ONNX)")
    p.add_argument("--onnx", action="store_true", help="write an ONNX model")
    p.add_argument("--out", default=None, help="the CNN: a file (default digitlab.onnx); a line reader: the folder "
                                               "its twin goes to, which it then reads with (default: the models folder)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_export)


def add_quantize(sub) -> None:
    p = sub.add_parser("quantize", help="make the CNN infer in int8 (faster on CPUs; accuracy unchanged on MNIST/windep)")
    p.add_argument("--model", default=None, help="a CNN .dlm file (default: the shipped one, rewritten in place)")
    p.add_argument("--out", help="where to write (default: over the input)")
    p.add_argument("--calibration", type=int, default=1024, help="validation digits to measure activation ranges on")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_quantize)
