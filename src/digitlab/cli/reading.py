"""Numbers and arithmetic in images: ``digitlab read | calc | check``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ImageError, report_file_error
from .options import profile_of


def each_image(args, work, show) -> int:
    """``show(path, work(path))`` for every image of ``args.paths``; a file that cannot be read is one
    error line (``report_file_error``) and the others go on. Exit status 2 if any failed."""
    from ..io.files import expand_paths

    failures = 0
    for path in expand_paths(args.paths):
        try:
            result = work(path)
        except ImageError as exc:
            failures += 1
            report_file_error(path, exc, args.json)
            continue
        show(path, result)
    return 2 if failures else 0


def cmd_read(args) -> int:
    from ..predictor import Predictor
    from ..reader.read import get_line_reader

    predictor = Predictor(get_line_reader(args.model), profile_of(args))

    def show(path, result):
        if args.json:
            print(json.dumps({"file": str(path), **result}))
        else:
            print(f"{path}\t{result['text']}\tconfidence {result['confidence']:.4f}")

    return each_image(args, lambda path: predictor.number(path, name=str(path)), show)


def cmd_calc(args) -> int:
    from ..predictor import Predictor
    from ..reader.read import get_line_reader

    predictor = Predictor(get_line_reader(args.model))

    def show(path, out):
        if args.json:
            print(json.dumps({"file": str(path), **out}))
        else:
            shown = out["value_exact"] or out["value"]
            print(f"{path}\t{out['expression']}\tvalue {shown}\t{out['status']}\tconfidence {out['confidence']:.4f}")

    return each_image(args, lambda path: predictor.calc(path, name=str(path)), show)


MARKS = {"correct": "✔", "wrong": "✘", "unsure": "?", "unreadable": "?", "computed": "="}


def cmd_check(args) -> int:
    from ..arithmetic import annotate
    from ..predictor import Predictor
    from ..reader.read import get_line_reader

    predictor = Predictor(get_line_reader(args.model), profile_of(args))
    out_dir = Path(args.annotate) if args.annotate else None

    def show(path, result):
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
                print(f"  {line.expression or '-':<20} {MARKS[line.status]}  {line.status:<10} {note}".rstrip())
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            annotate(result, out_dir / f"{Path(path).stem}_checked.png")

    return each_image(args, lambda path: predictor.check(path, name=str(path)), show)


def add_read(sub) -> None:
    p = sub.add_parser("read", help="read a written number (several digits) from each image")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--model", default=None, help="a line-reader model file (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--profile", help="a handwriting profile (`digitlab profiles`) that re-ranks the digits read")
    p.set_defaults(func=cmd_read)


def add_calc(sub) -> None:
    p = sub.add_parser("calc", help="read a written expression (468x59+79, (7+9x3)/2, 7+5+3=15) from each image and work it out")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--model", default=None, help="line reader: ppocr (default), line_reader, or a file")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_calc)


def add_check(sub) -> None:
    p = sub.add_parser("check", help="check handwritten arithmetic lines (a + b = c) in images")
    p.add_argument("paths", nargs="+", help="images or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--annotate", metavar="DIR", help="write each page with ticks, crosses and right answers")
    p.add_argument("--model", default=None,
                   help="line reader: ppocr (default: PP-OCRv6 fused with the CRNNs), line_reader (the CRNN pair), or a file")
    p.add_argument("--profile", help="a handwriting profile (`digitlab profiles`) that re-ranks the digits read")
    p.set_defaults(func=cmd_check)
