"""Choose the verdict thresholds on validation lines, so that "correct" and "wrong" can be trusted.

Validation lines are composed (training generator) from the *validation* glyphs (MNIST's held-back
5k, optdigits ``cv``, MDAS ``val``): writers the reader did not train on, and none of the benchmarks'.
The thresholds (see ``check.verdict``) are the loosest triple whose confident verdicts are at least
``target`` right there, with at most ``max_false_cross`` of the lines a false cross (a right answer
marked wrong); they are stored in the model file's metadata.

History: support was first the raw N-best probability, which a CTC reader spreads over strings that
are no arithmetic line at all; the thresholds then left 22.8% of validation lines (and 20-23% of the
held-out benchmark's touching and notebook lines) unsure. Measured among the grammatical readings,
with a floor on the best reading's own probability before a cross, far fewer are. The false-cross
bound is where the trade-off bends (``choose`` with other bounds on 6,000 validation lines read by the
reader before the shipped one, 86.0% of lines exact): at most 0.2% of lines a false cross leaves 14.4%
unsure, 0.3% leaves 7.6%, 0.5% leaves 5.0%. We took 0.3% with confident
verdicts at least 99.5% right; 6,000 lines, because 3,000 gave choices that moved with the sample.
For the default reader (PP-OCR fused with the CRNN pair), on 6,000 validation-glyph and 6,000 real-pen
lines (pendigits' training writers), the thresholds chosen at 0.3% left 11 false crosses among the pen
lines (0.18%); at 0.1% (``MAX_FALSE_CROSS``) 6, with 8.3% of the pen lines unsure instead of 6.8%,
and, on 1,000 other lines of the same writers (0.4 of them written unruled), 89.7% right verdicts
instead of 92.7%: a cross on a right answer is the mistake a pupil is hurt by, an unsure line costs
the teacher a look.
The second route to a cross (``choose_sure``) is chosen with the prior and weights, on the same lines
and bounds: with it the same 12,000 lines left 8.3% unsure instead of 13.1%, with the same 12 false
crosses (far-answer weight 0.2 instead of 0.1). A line that adds up with one of its 1s doubled then
got no cross either (``verdicts.DOUBLED``), which took 4 of those false crosses away. The choice does
not count on it: allowed to, it spent them on looser bounds (6.0% unsure, far-answer weight 0.05),
and on pen writers it never saw (``benchmarks/verdict_routes.py``, 8,000 lines) gave 10 false crosses
instead of 7 for 96.0% right verdicts instead of 93.6%.

    python -m digitlab.arithmetic.calibrate [--model PATH] [--lines 12000] [--photo 0.3] [--digits slice_cnn] [--ensemble NAME ...] [--out PATH]   # recalibrate a reader (in place by default)
"""

from __future__ import annotations

import numpy as np

from .check import DIGIT_OPINION, NEAR_MISSES, RULE, read_for_verdicts, shape_twin, verdict_support, with_prior
from .verdicts import best_share

MAX_FALSE_CROSS = 0.001  # share of the validation lines that may be a false cross (see above)
PRIORS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
FARS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)  # weights of readings whose answer no working gives (check.answer_kind)
# Share of wrong answers in the validation lines that are any number at all rather than a slip: the
# far-answer weight must not be chosen on lines where every wrong answer is near the right one.
CARELESS = 0.2
GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
TOPS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # floors on the best reading's own probability
SHARES = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)  # floors on its share of the grammatical mass (second route)
# Floors on the best reading's own probability for the second route. 0 is among them: where a reader
# hardly sees a small operator ("5x7=34" read "57=34" without the grammar) nearly all its probability
# goes to strings that are no line, and the grammar's readings still agree; on the calibration lines
# a floor of 0 crossed 180 more wrong answers than 0.05 with no more false crosses.
SURE_TOPS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


def _columns(support) -> np.ndarray:
    """``support`` rows (right, wrong, best, top, truth[, twin[, share]]) as an array of 7 columns: best
    1 / 0 / -1 for right / wrong / no arithmetic line, twin False and share the best reading's
    probability where a row has none."""
    return np.array([(r, w, {True: 1, False: 0, None: -1}[b], top, want, bool(rest and rest[0]),
                      rest[1] if len(rest) > 1 else top) for r, w, b, top, want, *rest in support], float).reshape(-1, 7)


def choose(support, target: float = 0.995, max_false_cross: float = MAX_FALSE_CROSS) -> dict | None:
    """The loosest thresholds on ``support`` rows (right, wrong, best, top, truth[, twin]) meeting both
    bounds; ``twin``: the best reading would add up with its 1s and 7s swapped, so gets no cross
    whatever the thresholds (``check.shape_twin``)."""
    s = _columns(support)
    if not len(s):
        return None
    right, wrong, best, top, want, twin, _ = s.T
    n, best_choice = len(s), None
    for tc in GRID:
        correct = (best == 1) & (right >= tc)
        for tw in GRID:
            for tt in TOPS:
                crossed = (best == 0) & (wrong >= tw) & (top >= tt) & (twin == 0)
                decided = int(correct.sum() + crossed.sum())
                if not decided:
                    continue
                good = int((correct & (want == 1)).sum() + (crossed & (want == 0)).sum())
                false_cross = int((crossed & (want == 1)).sum())
                if (good / decided >= target and false_cross <= max_false_cross * n
                        and (best_choice is None or decided > best_choice["decided"])):
                    best_choice = {"correct": tc, "wrong": tw, "top": tt, "decided": decided,
                                   "accuracy": good / decided, "false_crosses": false_cross}
    return best_choice


def choose_sure(support, first: dict, target: float = 0.995, max_false_cross: float = MAX_FALSE_CROSS) -> dict | None:
    """A second route to a cross (``verdicts.verdict``'s ``sure``) beside the ``first`` thresholds
    (``choose``'s), on rows (right, wrong, best, top, truth, twin, share): a wrong share at least
    theirs, a floor on the best reading's share of the grammatical mass (``verdicts.best_share``) and a
    lower floor on its own probability, the triple that crosses the most lines while the verdicts
    still meet both bounds; None when none adds a cross. The lines it is for: the reader put much of
    its probability on strings that are no arithmetic line, but of the lines it could be, it is sure."""
    s = _columns(support)
    if not len(s):
        return None
    right, wrong, best, top, want, twin, share = s.T
    n = len(s)
    correct = (best == 1) & (right >= first["correct"])
    crossed = (best == 0) & (wrong >= first["wrong"]) & (top >= first["top"]) & (twin == 0)
    found = None
    # strictest first, so that of choices crossing as many lines the strictest is kept
    for tw in sorted((g for g in GRID if g >= first["wrong"]), reverse=True):
        for ts in sorted(SHARES, reverse=True):
            for tt in sorted((t for t in SURE_TOPS if t < first["top"]), reverse=True):
                more = crossed | ((best == 0) & (wrong >= tw) & (share >= ts) & (top >= tt) & (twin == 0))
                decided = int(correct.sum() + more.sum())
                good = int((correct & (want == 1)).sum() + (more & (want == 0)).sum())
                false_cross = int((more & (want == 1)).sum())
                if (decided > (found or first)["decided"] and good / decided >= target
                        and false_cross <= max_false_cross * n):
                    found = {"sure": [tw, ts, tt], "decided": decided, "accuracy": good / decided,
                             "false_crosses": false_cross}
    return found


def validation_problems(n: int, seed: int = 7, photo: float = 0.0, data_dir=None, careless: float = 0.0,
                        kern: float = 0.0):
    """(ink maps, whether each line's answer is right, true texts) of ``n`` arithmetic lines from the
    validation glyphs (training generator), half of them right; ``photo`` of them photo-degraded,
    ``careless`` of the wrong answers any number at all (``linegen.problem_tokens``), ``kern`` of the
    lines spaced by their ink (``linegen.render_tokens``)."""
    from ..reader.glyphs import GlyphBank
    from ..reader.linegen import add_clutter, photo_degrade, problem_tokens, render_tokens, tokens_to_text

    bank = GlyphBank.load("val", data_dir, seed=seed)
    rng = np.random.default_rng(seed)
    inks, truth, texts = [], [], []
    while len(inks) < n:
        want = bool(rng.random() < 0.5)
        tokens = problem_tokens(rng, want, careless)
        ink = add_clutter(render_tokens(tokens, bank, rng, kern=kern), rng, bank)
        if photo > 0 and rng.random() < photo:
            ink = photo_degrade(ink, rng)
        inks.append(ink)
        truth.append(want)
        texts.append(tokens_to_text(tokens))
    return inks, truth, texts


def pen_problems(n: int, seed: int = 7, data_dir=None, careless: float = CARELESS):
    """(ink maps, whether each line's answer is right, true texts) of ``n`` arithmetic lines written
    with the real pen strokes of pendigits' 30 *training* writers (``datasets.pens``), about half right."""
    from ..datasets.pens import load_pendigits, pen_lines
    from .check import adds_up

    inks, texts, _ = pen_lines(load_pendigits("tra", data_dir), n, seed=seed, careless=careless)
    return inks, [bool(adds_up(t)) for t in texts], texts


def read_validation(model, data_dir=None, n: int = 12000, seed: int = 7, progress: bool = True,
                    photo: float = 0.0, digits=DIGIT_OPINION, careless: float = CARELESS,
                    pens: int = 0, near: bool = NEAR_MISSES) -> list[tuple[list, bool]]:
    """(N-best, whether the answer is right) of ``n`` validation lines (and ``pens`` lines of real pen
    strokes, ``pen_problems``) read as ``check`` reads them."""
    from tqdm import tqdm

    from ..digits.preprocess import NoDigitFound

    inks, truth, _ = validation_problems(n, seed, photo, data_dir, careless) if n else ([], [], [])
    if pens:
        more, right, _ = pen_problems(pens, seed, data_dir, careless)
        inks, truth = inks + more, truth + right
    n = len(inks)
    nbests = []
    for i in tqdm(range(0, n, 50), desc="calibrating", disable=not progress):
        try:
            readings = read_for_verdicts(inks[i : i + 50], model, limits={"digits": digits, "near_misses": near})
        except NoDigitFound:
            continue
        nbests += [(r.nbest, w) for r, w in zip(readings, truth[i : i + 50])]
    return nbests


def choose_weights(nbests: list[tuple[list, bool]], target: float = 0.995, max_false_cross: float = MAX_FALSE_CROSS,
                   sure: bool = True, doubled: bool = False) -> dict | None:
    """The arithmetic prior and far-answer weight (``check.with_prior``) leaving the fewest lines
    unsure, with their thresholds (``choose``, then ``choose_sure`` unless ``sure`` is False); None
    when no choice meets the bounds. ``doubled``: count on lines that add up with a 1 doubled getting
    no cross (``verdicts.DOUBLED``; they do, but the choice is not made on it)."""
    best = None
    for prior in PRIORS:
        for far in FARS:
            support = []
            for nbest, w in nbests:
                nbest = with_prior(nbest, prior, far)
                support.append(verdict_support(nbest) + (nbest[0][1] if nbest else 0.0, w,
                                                         bool(nbest) and shape_twin(nbest[0][0], doubled) is not None,
                                                         best_share(nbest)))
            found = choose(support, target, max_false_cross)
            if found and sure:
                found.update(choose_sure(support, found, target, max_false_cross) or {})
            if found and (best is None or found["decided"] > best["decided"]):  # ties: the milder weights
                best = dict(found, prior=prior, far=far)
    return best


def calibrate(model, data_dir=None, n: int = 12000, seed: int = 7, target: float = 0.995,
              max_false_cross: float = MAX_FALSE_CROSS, progress: bool = True, photo: float = 0.0,
              digits=DIGIT_OPINION, careless: float = CARELESS, pens: int = 0, near: bool = NEAR_MISSES) -> dict:
    """The thresholds (see the module docstring); ``photo`` of the lines degraded as in a phone
    photo (``linegen.photo_degrade``), where a reader is less sure and more often wrong; ``careless``
    of the wrong answers any number at all; ``pens`` more lines of real pen strokes (``pen_problems``)."""
    nbests = read_validation(model, data_dir, n, seed, progress, photo, digits, careless, pens, near)
    best = choose_weights(nbests, target, max_false_cross)
    best = best or {"correct": 0.99, "wrong": 0.999, "top": 0.9, "prior": 1.0, "far": 1.0, "decided": 0,
                    "accuracy": None}
    best.update({"rule": RULE, "digits": digits, "near_misses": near, "lines": len(nbests), "pen_lines": pens,
                 "ensemble": list(model.metadata.get("ensemble") or []) if hasattr(model, "members") else [],
                 "unsure": 1 - best["decided"] / max(1, len(nbests)),
                 "target": target, "max_false_cross": max_false_cross, "photo": photo, "careless": careless,
                 "data": "validation glyphs (MNIST held-back 5k, optdigits cv, MDAS val), training generator"
                         + ("; real pen strokes of pendigits' training writers" if pens else "")})
    return best


def calibrate_default(data_dir=None, lines: int = 6000, pens: int = 6000, photo: float = 0.0, out=None) -> dict:
    """Calibrate the default reader (PP-OCR fused with its partners, ``reader/ppocr.py``) on ``lines``
    validation-glyph lines and ``pens`` real-pen lines, with near misses and without the CNN's second
    opinion (on 500 validation pen lines it changed exact readings by -0.4 to +0.2 points), and store
    the result in its settings file (``weights/ppocr.json``, or ``out``)."""
    import json

    from ..io.files import atomic_write
    from ..reader.ppocr import SETTINGS
    from ..reader.read import get_line_reader

    model = get_line_reader()
    best = calibrate(model, data_dir, n=lines, pens=pens, photo=photo, digits=False, near=NEAR_MISSES)
    best["ensemble"] = dict(model.primary.cfg.get("partners") or {}) if hasattr(model, "members") else {}
    cfg = json.loads(SETTINGS.read_text())
    cfg.setdefault("metadata", {})["verdict_thresholds"] = best
    atomic_write(out or SETTINGS, (json.dumps(cfg, indent=1, ensure_ascii=True) + "\n").encode())
    return best


def main(argv=None) -> None:
    import argparse
    import copy

    from ..errors import DigitlabError
    from ..reader.read import get_line_reader, with_partners
    from ..models.files import model_path

    ap = argparse.ArgumentParser(description="Recalibrate a line reader's verdict thresholds in place.")
    ap.add_argument("--model", help="line-reader file (default: the shipped one)")
    ap.add_argument("--lines", type=int, default=12000, help="validation lines")
    ap.add_argument("--data-dir", help="folder with the datasets (default: $DIGITLAB_DATA, then the cache)")
    ap.add_argument("--photo", type=float, default=0.0,
                    help="share of the lines degraded as in a phone photo (default 0)")
    ap.add_argument("--out", help="write the recalibrated reader here instead of in place")
    ap.add_argument("--digits", default=None,
                    help="the digit model for the second opinion: a name in the shipped weights or the models "
                         "folder, e.g. slice_cnn (default: the shipped CNN); 'none' for no second opinion")
    ap.add_argument("--ensemble", nargs="+", metavar="NAME",
                    help="line readers read together with this one (names in the shipped weights or the models "
                         "folder), stored in its file; 'none' for the reader alone (default: those its file names)")
    ap.add_argument("--pens", type=int, default=0, help="more validation lines written with real pen strokes "
                    "(pendigits' training writers); the default reader is calibrated with 6000")
    args = ap.parse_args(argv)
    if not 0 <= args.photo <= 1:
        ap.exit(2, f"calibrate: error: --photo must be a share between 0 and 1, not {args.photo}\n")
    if args.model in (None, "ppocr"):
        try:
            result = calibrate_default(args.data_dir, args.lines if args.lines != 12000 else 6000, args.pens or 6000,
                                       args.photo, args.out)
        except (DigitlabError, OSError) as exc:
            ap.exit(2, f"calibrate: error: {exc}\n")
        print({k: result.get(k) for k in ("prior", "far", "correct", "wrong", "top", "sure", "unsure", "accuracy", "false_crosses",
                                          "lines", "near_misses")})
        return
    try:
        reader = copy.copy(get_line_reader(args.model, ensemble=False))
        reader.metadata = dict(reader.metadata)  # the loaded (cached) model stays as its file says
        if args.ensemble is not None:
            reader.metadata["ensemble"] = [] if args.ensemble == ["none"] else list(args.ensemble)
        model = with_partners(reader, reader.metadata.get("ensemble") or [])  # a partner that is no reader: now
        digits = {None: DIGIT_OPINION, "none": False}.get(args.digits, args.digits)
        if isinstance(digits, str):
            from ..models import get_model

            get_model(digits)  # a clear error now, not after the lines are drawn
        model.metadata["verdict_thresholds"] = result = calibrate(model, args.data_dir, n=args.lines, photo=args.photo,
                                                                  digits=digits)
        path = args.out or model_path(args.model or "line_reader")
        model.save(path)
    except (DigitlabError, OSError) as exc:
        ap.exit(2, f"calibrate: error: {exc}\n")
    print({k: result[k] for k in ("prior", "far", "correct", "wrong", "top", "unsure", "accuracy", "false_crosses", "lines",
                                  "digits", "ensemble")}, "->", path)


if __name__ == "__main__":
    main()
