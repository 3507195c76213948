"""The verdicts' routes to a cross, checked on writers the calibration never saw.

    python benchmarks/verdict_routes.py [--lines 6000] [--pens 6000] [--more 2000] [--folds 3] [--json PATH]

The default reader reads the calibration's lines as ``check`` does (``calibrate.read_validation``:
``--lines`` of validation glyphs and ``--pens`` in pendigits' 30 training writers' pens, seed 7) and
``--more`` pen lines of the same writers (seed 21). The writers are split in ``--folds``; for each
fold the verdicts are calibrated (``calibrate.choose_weights``) on the glyph lines and the other
writers' pen lines, and scored on that fold's writers' lines (both seeds), five ways: without the
second route to a cross; with it and a floor of 5% on the best reading's probability; with it and no
floor, without the doubled-1 twin (``verdicts.DOUBLED`` empty: a line that adds up with a 1 doubled
can be crossed); the same with the twin, the calibration counting on it (``doubled=True``: its freed
false crosses spent on looser bounds); and as shipped (the twin, the bounds chosen without it).
Reported per fold and in total: right verdicts, unsure, false crosses (a right answer marked wrong)
and false ticks.
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np

from digitlab.arithmetic import calibrate, verdicts
from digitlab.arithmetic.verdicts import verdict, with_prior
from digitlab.datasets.pens import load_pendigits, pen_lines
from digitlab.io.files import atomic_write
from digitlab.reader.read import get_line_reader

# name: (floor on the best reading's probability, None for no second route; the calibration counts
# on the doubled-1 twin; the verdicts have it)
VARIANTS = {"without the second route": (None, False, True), "second route, floor 0.05": (0.05, False, True),
            "no doubled-1 twin": (0.0, False, False), "twin spent on the bounds": (0.0, True, True),
            "as shipped": (0.0, False, True)}


def score(lines, chosen: dict) -> dict:
    """Verdict counts of ``lines`` [(N-best, truth)] under ``chosen`` (``choose_weights``'s result)."""
    right = unsure = false_cross = false_tick = 0
    for nbest, truth in lines:
        status, _ = verdict(with_prior(nbest, chosen["prior"], chosen["far"]), chosen["correct"], chosen["wrong"],
                            chosen["top"], sure=chosen.get("sure"))
        right += (status == "correct" and truth) or (status == "wrong" and not truth)
        unsure += status not in ("correct", "wrong")
        false_cross += status == "wrong" and truth
        false_tick += status == "correct" and not truth
    return {"lines": len(lines), "right_verdicts": right, "unsure": unsure, "false_crosses": false_cross,
            "false_ticks": false_tick}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=6000, help="validation-glyph lines (seed 7)")
    ap.add_argument("--pens", type=int, default=6000, help="pen lines of pendigits' training writers (seed 7)")
    ap.add_argument("--more", type=int, default=2000, help="more pen lines of the same writers (seed 21)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--json", default="benchmarks/results/verdict_routes.json")
    args = ap.parse_args(argv)
    model = get_line_reader()
    read = dict(digits=False, near=True, progress=False)
    glyphs = calibrate.read_validation(model, n=args.lines, seed=7, **read) if args.lines else []
    pens, who = [], []
    for seed, n in ((7, args.pens), (21, args.more)):
        if n:
            pens += calibrate.read_validation(model, n=0, pens=n, seed=seed, **read)
            who += pen_lines(load_pendigits("tra"), n, seed=seed, careless=calibrate.CARELESS)[2]
    if len(pens) != len(who):
        raise SystemExit("verdict_routes: a batch of pen lines could not be read; the writers no longer match")
    calib = np.array([i < args.pens for i in range(len(pens))])  # seed 7's lines may be calibrated on
    writers = sorted(set(who))
    np.random.default_rng(0).shuffle(writers)
    folds = [set(writers[k :: args.folds]) for k in range(args.folds)]
    shipped, doubled = calibrate.SURE_TOPS, verdicts.DOUBLED
    report = {"data": f"{args.lines} validation-glyph lines and {args.pens} + {args.more} pen lines of pendigits' "
                      f"{len(writers)} training writers, {args.folds} folds of writers",
              "machine": f"{platform.machine()}, {platform.processor() or platform.system()}", "folds": [], "total": {}}
    for k, fold in enumerate(folds):
        mine = [w in fold for w in who]
        train = glyphs + [x for x, m, c in zip(pens, mine, calib) if c and not m]
        test = [x for x, m in zip(pens, mine) if m]
        entry = {"writers": sorted(map(str, fold))}
        for name, (floor, counted, twin) in VARIANTS.items():
            verdicts.DOUBLED = doubled if twin else ()
            verdicts.shape_twin.cache_clear()
            calibrate.SURE_TOPS = tuple(t for t in sorted({0.0, *shipped}) if floor is not None and t >= floor)
            chosen = calibrate.choose_weights(train, sure=floor is not None, doubled=counted)
            got = score(test, chosen)
            entry[name] = dict(got, chosen={key: chosen.get(key) for key in ("prior", "far", "correct", "wrong", "top", "sure")})
            total = report["total"].setdefault(name, dict.fromkeys(got, 0))
            for key, v in got.items():
                total[key] += v
            print(f"fold {k} {name:28s} {got['lines']} lines: right verdicts {got['right_verdicts'] / got['lines']:.1%}, "
                  f"unsure {got['unsure'] / got['lines']:.1%}, false crosses {got['false_crosses']}, "
                  f"false ticks {got['false_ticks']}", flush=True)
        report["folds"].append(entry)
    calibrate.SURE_TOPS, verdicts.DOUBLED = shipped, doubled
    verdicts.shape_twin.cache_clear()
    for name, t in report["total"].items():
        print(f"total  {name:28s} {t['lines']} lines: right verdicts {t['right_verdicts'] / t['lines']:.2%}, "
              f"unsure {t['unsure'] / t['lines']:.2%}, false crosses {t['false_crosses']}, false ticks {t['false_ticks']}")
    if args.json:
        atomic_write(args.json, (json.dumps(report, indent=1, default=str) + "\n").encode())
    return report


if __name__ == "__main__":
    main()
