"""How long `digitlab check` takes, the default reader against the CRNN pair before it, in one run.

    python benchmarks/check_speed.py [--lines 40] [--pages 5] [--seed 3] [--baseline-src DIR] [--json PATH]

Two measures, each for both readers on the same files, one after the other on the same machine:

- ``cli``: one `digitlab check` process on ``--lines`` one-line images (real pen strokes of
  pendigits' test writers, ``benchmarks/real_pens.py``'s lines), wall time from the process's start to
  its end (start-up, model loading and every line), divided by the number of lines; and one process on
  a single notebook photo (its wall time, start-up included);
- ``warm``: ``check_page`` on ``--pages`` notebook photos (held-out glyph writers, the generator of
  ``benchmarks/worksheets.py``) in one process after one untimed page, as a server reads them:
  median and worst seconds per page.

``old`` is the CRNN pair (``line_reader`` and its partner, test-time augmentation, the second
opinion) as `digitlab check` read before PP-OCR; ``new`` the default reader. ``--baseline-src DIR``
(the ``src`` folder of another checkout, e.g. ``git worktree add /tmp/base <commit>``) also times that
code's `digitlab check` with its default reader on the same files, in the same run (``baseline``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUN_OLD = ("import sys, digitlab.reader.read as r; r.DEFAULT_READER = 'line_reader'; "
           "from digitlab.cli import main; sys.exit(main(sys.argv[1:]))")
RUN_NEW = "import sys; from digitlab.cli import main; sys.exit(main(sys.argv[1:]))"


def timed_cli(code: str, args: list[str], src: Path | None = None) -> float:
    env = {**os.environ, "TQDM_DISABLE": "1", **({"PYTHONPATH": str(src)} if src else {})}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, "check", *args], check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--baseline-src", type=Path, help="the src folder of other code to time the same way")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import cv2

    from digitlab.predictor import check_page
    from digitlab.datasets.pens import load_pendigits, pen_lines
    from digitlab.reader.glyphs import GlyphBank
    from digitlab.reader.read import get_line_reader
    from digitlab.synthetic import pagegen

    sys.path.insert(0, str(Path(__file__).parent))
    from real_pens import images

    inks, _, _ = pen_lines(load_pendigits("tes"), args.lines, seed=args.seed)
    bank, rng = GlyphBank.load("heldout", seed=args.seed), np.random.default_rng(args.seed)
    photos = [pagegen.notebook_photo(bank, rng)[0] for _ in range(args.pages + 1)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, img in enumerate(images(inks, args.seed)):
            files.append(str(Path(tmp) / f"line{i:03d}.png"))
            cv2.imwrite(files[-1], img)
        photo = Path(tmp) / "notebook.jpg"
        photo.write_bytes(photos[0])
        if args.baseline_src:
            results["baseline"] = {"src": str(args.baseline_src),
                                   "cli_seconds_per_line": timed_cli(RUN_NEW, files, args.baseline_src) / args.lines,
                                   "cli_lines": args.lines,
                                   "cli_one_notebook_photo_seconds": timed_cli(RUN_NEW, [str(photo)], args.baseline_src)}
            print(f"baseline ({args.baseline_src}) digitlab check: {results['baseline']['cli_seconds_per_line']:.3f} s "
                  f"per line, one notebook photo {results['baseline']['cli_one_notebook_photo_seconds']:.2f} s")
        for name, code in (("old", RUN_OLD), ("new", RUN_NEW)):
            cli = timed_cli(code, files)
            one = timed_cli(code, [str(photo)])
            model = get_line_reader("line_reader" if name == "old" else None)
            check_page(photos[0], model=model)  # untimed: loads models, warms caches
            seconds = []
            for data in photos[1:]:
                t0 = time.perf_counter()
                check_page(data, model=model)
                seconds.append(time.perf_counter() - t0)
            results[name] = {"cli_seconds_per_line": cli / args.lines, "cli_lines": args.lines,
                             "cli_one_notebook_photo_seconds": one,
                             "warm_notebook_seconds_median": float(np.median(seconds)),
                             "warm_notebook_seconds_max": float(np.max(seconds))}
            r = results[name]
            print(f"{name}  digitlab check: {r['cli_seconds_per_line']:.3f} s per line ({args.lines} one-line images, "
                  f"start-up included), one notebook photo {one:.2f} s | warm: notebook photo median "
                  f"{r['warm_notebook_seconds_median']:.2f} s, max {r['warm_notebook_seconds_max']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "data": f"{args.lines} one-line images of pendigits-orig.tes pen strokes and {args.pages} notebook photos "
                    f"of held-out glyphs, seed {args.seed}",
            "machine": f"{platform.machine()}, {platform.system()}, {os.cpu_count()} cpus",
            "load_average_at_end": os.getloadavg()[0], "results": results}, indent=1))


if __name__ == "__main__":
    main()
