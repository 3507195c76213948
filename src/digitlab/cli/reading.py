"""Subcommands beyond predict/evaluate/train/models: serve, read, visualize, export."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DigitlabError, ImageError, report_file_error


def cmd_serve(args) -> int:
    import os
    import sys

    from .server import serve

    if args.teacher_token_file:
        os.environ["DIGITLAB_TEACHER_TOKEN_FILE"] = args.teacher_token_file
    if args.teacher_token:  # kept for old scripts; anyone on the machine can read it in `ps`
        print("digitlab: warning: --teacher-token is visible to other users (ps); prefer --teacher-token-file "
              "or $DIGITLAB_TEACHER_TOKEN", file=sys.stderr)
        os.environ["DIGITLAB_TEACHER_TOKEN"] = args.teacher_token
    serve(args.host, args.port, args.open)
    return 0


def _profile(args):
    """The handwriting profile named by ``--profile``, or None."""
    if not getattr(args, "profile", None):
        return None
    from .profiles import get_profile

    return get_profile(args.profile)


def cmd_read(args) -> int:
    from .io.files import expand_paths
    from .reader.read import get_line_reader, read_number

    model = get_line_reader(args.model)
    profile = _profile(args)
    failures = 0
    for path in expand_paths(args.paths):
        try:
            result = read_number(path, name=str(path), model=model, profile=profile)
        except ImageError as exc:
            failures += 1
            report_file_error(path, exc, args.json)
            continue
        if args.json:
            print(json.dumps({"file": str(path), **result}))
        else:
            print(f"{path}\t{result['text']}\tconfidence {result['confidence']:.4f}")
    return 2 if failures else 0


def cmd_calc(args) -> int:
    from .arithmetic.grammar import check_expression, work_out
    from .reader.read import get_line_reader, read_expression
    from .io.files import expand_paths

    model = get_line_reader(args.model)
    failures = 0
    for path in expand_paths(args.paths):
        try:
            read = read_expression(path, name=str(path), model=model)
        except ImageError as exc:
            failures += 1
            report_file_error(path, exc, args.json)
            continue
        text = read["text"]
        v = check_expression(text) if "=" in text else work_out(text)  # an answer written: is it the value?
        value, exact, answer = v["value"], v.get("value_exact"), v.get("written_answer")
        if v["error"]:
            status = f"unreadable: {v['error']}"  # e.g. a division by zero
        else:
            status = "computed" if "=" not in text else "correct" if v["correct"] else "wrong"
        out = {"file": str(path), "expression": text, "value": value, "value_exact": exact,
               "written_answer": answer, "status": status, **{k: read[k] for k in ("confidence", "alternatives", "bbox")}}
        if args.json:
            print(json.dumps(out))
        else:
            shown = exact or value
            print(f"{path}\t{text}\tvalue {shown}\t{status}\tconfidence {read['confidence']:.4f}")
    return 2 if failures else 0


def cmd_visualize(args) -> int:
    from .digits.preprocess import preprocess_digit
    from .models import get_model
    from .digits.visualize import save_figures

    image = preprocess_digit(args.image, name=args.image)
    paths = save_figures(get_model(args.model), image, args.out)
    for p in paths:
        print(p)
    return 0


def cmd_export(args) -> int:
    from .digits.export import export_onnx
    from .models import get_model

    if not args.onnx:
        raise DigitlabError("choose a format: --onnx")
    path = export_onnx(get_model(args.model), args.out)
    print(f"wrote {path}")
    return 0


def cmd_quantize(args) -> int:
    from .datasets.mnist import load_mnist, train_val_split
    from .models import load
    from .digits.cnn import CNNClassifier
    from .models.files import model_path

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


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the web app (draw digits, read numbers, check sums, API)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--teacher-token-file", metavar="FILE",
                   help="file holding the token the pupils' endpoints require (header X-Teacher-Token, at least "
                        "16 characters); default $DIGITLAB_TEACHER_TOKEN_FILE, or the token in $DIGITLAB_TEACHER_TOKEN")
    p.add_argument("--teacher-token", help="the token itself (visible in `ps`: prefer --teacher-token-file)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("read", help="read a written number (several digits) from each image")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--model", default=None, help="a line-reader model file (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--profile", help="a handwriting profile (`digitlab profiles`) that re-ranks the digits read")
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("calc", help="read a written expression (468x59+79, 7+5+3=15) from each image and work it out")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--model", default=None, help="line reader: ppocr (default), line_reader, or a file")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_calc)

    p = sub.add_parser("visualize", help="draw the CNN's layers, filters, feature maps and saliency for an image")
    p.add_argument("image", help="an image of one digit")
    p.add_argument("--out", default="network", help="output folder (default: ./network)")
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("export", help="export the CNN (ONNX)")
    p.add_argument("--onnx", action="store_true", help="write an ONNX model")
    p.add_argument("--out", default="digitlab.onnx")
    p.add_argument("--model", default=None)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("quantize", help="make the CNN infer in int8 (faster on CPUs; accuracy unchanged on MNIST/windep)")
    p.add_argument("--model", default=None, help="a CNN .dlm file (default: the shipped one, rewritten in place)")
    p.add_argument("--out", help="where to write (default: over the input)")
    p.add_argument("--calibration", type=int, default=1024, help="validation digits to measure activation ranges on")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_quantize)

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

    p = sub.add_parser("tune", help="search a method's parameters on a validation split (never the test set)")
    p.add_argument("method", help="linear, knn, svm, mlp or kmeans")
    p.add_argument("--subset", type=int, default=None, help="training digits per fit (default: per method)")
    p.add_argument("--out", help="report folder (tuning/METHOD.json and .png go under it)")
    p.add_argument("--apply", action="store_true", help="use the best parameters as defaults from now on")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_tune)
    register_check(sub)


def cmd_benchmark(args) -> int:
    from .datasets.mnist import load_mnist
    from .study.report import default_report_dir, write_report
    from .study.run import DEFAULT_METHODS, benchmark

    methods = args.methods.split(",") if args.methods else DEFAULT_METHODS
    unknown = set(methods) - set(DEFAULT_METHODS)
    if unknown:
        raise DigitlabError(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(DEFAULT_METHODS)}")
    from .models.files import models_dir

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
    from .io.files import atomic_write
    from .study.report import default_report_dir, figures
    from .study.run import tune, tuned_path

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



def cmd_check(args) -> int:
    from .arithmetic import annotate, check_page
    from .reader.read import get_line_reader
    from .io.files import expand_paths

    model = get_line_reader(args.model)
    profile = _profile(args)
    failures = 0
    out_dir = Path(args.annotate) if args.annotate else None
    marks = {"correct": "✔", "wrong": "✘", "unsure": "?", "unreadable": "?", "computed": "="}
    for path in expand_paths(args.paths):
        try:
            result = check_page(path, name=str(path), model=model, profile=profile)
        except ImageError as exc:
            failures += 1
            report_file_error(path, exc, args.json)
            continue
        if args.json:
            print(json.dumps(result.as_dict()))
        else:
            sheet = ", sheet found" if result.sheet else ""
            print(f"{path} (skew {result.skew_degrees:+.1f}°{sheet})")
            for line in result.lines:
                note = {"wrong": f"should be {line.value_exact or line.value}",
                        "unsure": "unsure, please look" + (f" (or {', '.join(line.alternatives[:2])})"
                                                           if line.alternatives else ""),
                        "unreadable": line.error or "unreadable",
                        "computed": f"= {line.value_exact or line.value}"}.get(line.status, "")
                print(f"  {line.expression or '-':<20} {marks[line.status]}  {line.status:<10} {note}".rstrip())
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            annotate(result, out_dir / f"{Path(path).stem}_checked.png")
    return 2 if failures else 0


def register_check(sub) -> None:
    p = sub.add_parser("check", help="check handwritten arithmetic lines (a + b = c) in images")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--annotate", metavar="DIR", help="write each page with ticks, crosses and right answers")
    p.add_argument("--model", default=None,
                   help="line reader: ppocr (default: PP-OCRv6 fused with the CRNNs), line_reader (the CRNN pair), or a file")
    p.add_argument("--profile", help="a handwriting profile (`digitlab profiles`) that re-ranks the digits read")
    p.set_defaults(func=cmd_check)
