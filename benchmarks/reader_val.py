"""Choose between line readers on validation lines: plain, and degraded as in a phone photo.

    python benchmarks/reader_val.py READER.dlm [READER.dlm ...] [--lines 800] [--json benchmarks/results/reader_val.json]

Lines come from the reader's training generator (``reader.linegen``) with the *validation* glyphs
(MNIST's held-back 5k, optdigits ``cv``, MDAS ``val``): what a choice between models may use, never
a held-out figure. ``plain`` is ``train.validation_lines`` as training validates; ``photo`` degrades
every line as in a phone photo (``linegen.photo_degrade``: written small, bolder for its size,
blurred, JPEG). Greedy decoding, exact line accuracy, as during training.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from digitlab.reader.crnn import LineReader
from digitlab.reader.train import model_line_accuracy, validation_lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("readers", nargs="+", help="line-reader files")
    ap.add_argument("--lines", type=int, default=800)
    ap.add_argument("--json", default="benchmarks/results/reader_val.json")
    args = ap.parse_args()
    sets = {"plain": validation_lines(n=args.lines, seed=321), "photo": validation_lines(n=args.lines, seed=321, photo=1.0)}
    rows = []
    for path in args.readers:
        model = LineReader.load(path)
        row = {"reader": str(path)}
        for name, (x, y) in sets.items():
            row[name] = model_line_accuracy(model, x, y)
        rows.append(row)
        print(f"{path:<48} plain {row['plain']:6.1%}   photo {row['photo']:6.1%}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"data": "validation glyphs, training generator (seed 321)",
                                           "lines": args.lines, "machine": platform.machine(), "results": rows},
                                          indent=1))


if __name__ == "__main__":
    main()
