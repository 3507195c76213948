"""Subcommands beyond predict/evaluate/train/models: serve, read, visualize, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import DigitlabError, ImageError


def cmd_serve(args) -> int:
    from .server import serve

    serve(args.host, args.port, args.open)
    return 0


def cmd_read(args) -> int:
    from .recognize import expand_paths, get_model, predict_images
    from .segment import segment_image

    import numpy as np

    model = get_model(args.model)
    failures = 0
    for path in expand_paths(args.paths):
        try:
            symbols = segment_image(path, name=str(path))
        except ImageError as exc:
            failures += 1
            print(json.dumps({"file": str(path), "error": str(exc)}) if args.json else f"{path}: error: {exc}",
                  file=sys.stdout if args.json else sys.stderr)
            continue
        preds = predict_images(model, np.stack([s.image for s in symbols]))
        text = "".join(str(p.digit) for p in preds)
        if args.json:
            print(json.dumps({"file": str(path), "text": text, "digits": [
                {"digit": p.digit, "confidence": round(p.confidence, 4), "box": list(s.box)} for s, p in zip(symbols, preds)]}))
        else:
            print(f"{path}\t{text}\t{min(p.confidence for p in preds):.4f}")
    return 2 if failures else 0


def cmd_visualize(args) -> int:
    from .preprocess import preprocess_digit
    from .recognize import get_model
    from .visualize import save_figures

    image = preprocess_digit(args.image, name=args.image)
    paths = save_figures(get_model(args.model), image, args.out)
    for p in paths:
        print(p)
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx
    from .recognize import get_model

    if not args.onnx:
        raise DigitlabError("choose a format: --onnx")
    path = export_onnx(get_model(args.model), args.out)
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the web app (draw digits, read numbers, check sums, API)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("read", help="read a written number (several digits) from each image")
    p.add_argument("paths", nargs="+")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_read)

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
