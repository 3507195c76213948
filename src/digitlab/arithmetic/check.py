"""Check every arithmetic line and column sum of a page: the page's readings, then their verdicts.

``PageChecker`` composes the stages: page hypotheses (``page.layout``), which way up (quarter turns),
the lines read under the arithmetic grammar (``read_for_verdicts``), lines with no answer worked out
(``_expressions``), column sums (``columns``), and each line's verdict (``verdicts``, with the reader's
``Calibration``). ``check_page`` builds one for one image.
"""

from __future__ import annotations

import numpy as np

from ..digits.preprocess import NoDigitFound
from .columns import check_columns
from .grammar import check_expression
from .verdicts import (  # noqa: F401  (re-exported: the checker's public names)
    CORRECT_MIN,
    WRONG_MIN,
    TOP_MIN,
    PRIOR,
    FAR,
    DIGIT_OPINION,
    SETTLED_TOP,
    NEAR_MISSES,
    RULE,
    STATUSES,
    Calibration,
    LineResult,
    PageResult,
    adds_up,
    answer_kind,
    with_prior,
    near_misses,
    verdict_support,
    shape_twin,
    alternatives,
    verdict,
)


def read_for_verdicts(inks: list, model=None, profile=None, limits: dict | None = None, rerank=None, plain=None):
    """Read lines the way their verdicts were calibrated: test-time augmentation, and, where the
    calibration (``limits``, from the model file; None: today's) says so, the CNN's second opinion
    and near misses scored exactly (``plain``: see ``read_lines``)."""
    from ..reader.decode import ARITHMETIC
    from ..reader.read import read_lines

    limits = {"digits": DIGIT_OPINION, "near_misses": NEAR_MISSES} if limits is None else limits
    return read_lines(inks, ARITHMETIC, model=model, profile=profile, digits=limits.get("digits", False),
                      propose=near_misses if limits.get("near_misses", False) else None, rerank=rerank, plain=plain)


def _clear(r, cal: Calibration) -> bool:
    """A line decided, with one reading standing out whose answer some working gives (a line left
    unsure only for its look-alike 1s and 7s, ``shape_twin``, reads clearly all the same)."""
    return (r.text is not None and bool(r.nbest) and cal.verdict(r.nbest, twins=False)[0] != "unsure"
            and r.nbest[0][1] >= SETTLED_TOP and answer_kind(r.nbest[0][0]) != "far")


def _readability(readings, cal: Calibration) -> tuple[float, bool]:
    """How well a page hypothesis reads: its lines' best readings' own probabilities, summed; and
    whether that is good enough to stop looking (most lines decided).

    Not the verdicts' support: a band of grid squares left unflattened reads as a long string of
    digits whose every reading makes the line wrong, so its support is high, and a hypothesis made
    of such bands outscored the page itself. No single reading of such a band is probable."""
    score, decided = 0.0, 0
    for r in readings:
        if r.text is None or not r.nbest:
            continue
        score += r.nbest[0][1]
        # A line settles the page only when it is decided *and* one reading stands out, with an
        # answer some working gives: a wrong outline leaves a grid's lines to be read as 1s
        # ("81-161=1757"), which no reading explains well but every reading makes wrong.
        decided += _clear(r, cal)
    return score, len(readings) >= 2 and decided >= 0.75 * len(readings)


class PageChecker:
    """The checking pipeline, built once and run on any number of images, stage by stage:

    image (``io.images.load_rgb``) -> page hypotheses: sheet, flattening, lines, column sums
    (``page.layout.page_hypotheses``) -> which way up (``upright``) -> each line read under the
    arithmetic grammar by the recogniser (``reader``: PP-OCR fused with its partners) with near misses
    scored exactly and the arithmetic prior (``read_for_verdicts``, ``Calibration.rerank``) -> lines with
    no answer worked out (``_expressions``) -> column sums (``columns.check_columns``) -> verdicts
    (``Calibration.verdict``) -> a ``PageResult`` in the user's pixels.
    """

    def __init__(self, reader=None, profile=None, max_side: int | None = None, low_confidence: float = 0.7):
        from ..reader.read import get_line_reader

        self.reader = reader or get_line_reader()
        self.calibration = Calibration.of(self.reader)
        self.profile, self.max_side, self.low_confidence = profile, max_side, low_confidence

    def __call__(self, source, name: str = "image") -> PageResult:
        from ..io.images import load_rgb

        rgb = load_rgb(source, name=name, **({"max_side": self.max_side} if self.max_side else {}))
        page, readings, turns = self.upright(rgb, name)
        if turns:
            page = _turned_back(page, turns, rgb)
        if page.lines:
            readings = read_for_verdicts([l.ink for l in page.lines], self.reader, self.profile,
                                         self.calibration.limits, rerank=self.calibration.rerank,
                                         plain=[r.frames for r in readings])
        results = self.lines(page.lines, readings)
        results += check_columns(page.columns, self.reader, self.profile, self.calibration)
        if not results:
            raise NoDigitFound("no lines of writing found")
        return PageResult(file=name, skew_degrees=page.skew_degrees, lines=results, sheet=page.sheet,
                          image=page.image, rotation=90 * turns)

    def hypotheses(self, image: np.ndarray, name: str, sample: int | None = None):
        """(score, page, plain readings) of the page hypothesis that reads best.

        Hypotheses are compared on plain readings by the primary reader; only the one kept is read
        again by the whole reader: a wrong outline can cut a page into dozens of long bands.
        ``sample``: only that many of each hypothesis' widest lines are read (a quick look)."""
        from ..page.layout import page_hypotheses
        from ..reader.decode import ARITHMETIC
        from ..reader.read import primary, read_lines

        best = None
        for page in page_hypotheses(image, name=name, max_side=self.max_side):
            lines = _widest(page.lines, sample) if sample else page.lines
            readings = read_lines([l.ink for l in lines], ARITHMETIC, model=primary(self.reader), profile=self.profile,
                                  tta=False) if lines else []
            score, settled = _readability(readings, self.calibration)
            # Column sums found (operands over a rule, right-aligned) show a page the right way up; in a
            # quick look at a quarter turn only on a page of nothing else (a column sum turned sideways
            # has no rule and reads as nothing, but a line turned over can pass for one, its minus a
            # rule, and leave the rest of its ink as lines). Only the full look stops at them.
            if not sample or not page.lines:
                score += 0.9 * len(page.columns)
            if not sample:
                settled = settled or (bool(page.columns) and not lines)
            # One line read clearly from the whole picture (no sheet outline to be wrong about, as a
            # crop of one sum has none): other outlines cannot explain it better.
            settled = settled or (page.sheet is None and len(readings) == 1 and _clear(readings[0], self.calibration))
            if best is None or score > best[0]:
                best = (score, page, readings)
            if settled:
                break
        return best

    def upright(self, rgb: np.ndarray, name: str):
        """(page, plain readings, quarter turns): the best hypothesis of the page the right way up.

        A photo may arrive sideways or upside down (no EXIF tag, or one a scanner ignored): when the
        upright page reads poorly, a quick look at each quarter turn (its widest lines only) is
        compared with the same look at the upright page, and a turn that reads clearly better is read."""
        first_error = None
        try:
            best, turns = self.hypotheses(rgb, name), 0
        except NoDigitFound as exc:
            best, turns, first_error = None, 0, exc
        if best is None or (_weak(best[2]) and not best[1].columns):
            # An image more than 2.5 times as wide as it is high is a line or a strip, never a page
            # turned sideways (that would be tall): only upside down is tried, a third of the time.
            h, w = rgb.shape[:2]
            if best is not None:
                kept = {id(l) for l in _widest(best[1].lines, ORIENTATION_SAMPLE)}
                upright = sum(r.nbest[0][1] for l, r in zip(best[1].lines, best[2]) if id(l) in kept and r.nbest)
            chosen, look = 0, None
            for k in (2,) if w >= 2.5 * h else (1, 2, 3):
                try:
                    other = self.hypotheses(np.ascontiguousarray(np.rot90(rgb, k)), name, sample=ORIENTATION_SAMPLE)
                except NoDigitFound:
                    continue
                if (best is None and (look is None or other[0] > look)) or \
                        (best is not None and other[0] > max(upright * 1.2 + 0.05, look or 0.0)):
                    chosen, look = k, other[0]
            if chosen:
                best, turns = self.hypotheses(np.ascontiguousarray(np.rot90(rgb, chosen)), name), chosen
            if best is None:
                raise first_error or NoDigitFound("no lines of writing found")
        _, page, readings = best
        return page, readings, turns

    def lines(self, lines: list, readings: list) -> list[LineResult]:
        """Each line's result: worked out (``_expressions``), unreadable, or its verdict."""
        worked = _expressions(lines, readings, self.reader, self.profile)
        results = []
        for i, (line, reading) in enumerate(zip(lines, readings)):
            if i in worked:
                results.append(worked[i])
                continue
            if reading.text is None:
                results.append(LineResult("", None, None, None, "unreadable", 0.0, line.bbox, line.polygon, line.column,
                                          error="not an arithmetic line (a op b = c)"))
                continue
            status, support = self.calibration.verdict(reading.nbest)
            v = check_expression(reading.text)
            results.append(LineResult(
                expression=reading.text, value=v["value"], written_answer=v["written_answer"],
                correct={"correct": True, "wrong": False}.get(status), status=status, confidence=round(support, 4),
                bbox=line.bbox, polygon=line.polygon, column=line.column, error=v["error"],
                low_confidence=[i for i, c in enumerate(reading.symbol_confidence) if c < self.low_confidence],
                value_exact=v.get("value_exact"), alternatives=alternatives(reading.nbest, status)))
        return results


def _expressions(lines: list, readings: list, model, profile) -> dict:
    """Lines that are no "a op b = c" (none read, or their "=" doubtful) read again as expressions to
    work out ("468*59+79", no answer written): {line index: a ``computed`` result with the value},
    where such a reading is clearly likelier. Only those lines are read again, on the frames already
    computed."""
    from ..reader.decode import EXPRESSION
    from ..reader.read import read_lines
    from .grammar import work_out

    def doubtful_equals(r) -> bool:  # a minus or a stroke forced into the "=" the line's grammar wants
        k = r.text.find("=")
        return k >= 0 and k < len(r.symbol_confidence) and r.symbol_confidence[k] < 0.5

    todo = [i for i, r in enumerate(readings) if r.frames is not None and (r.text is None or doubtful_equals(r))]
    if not todo:
        return {}
    again = read_lines([lines[i].ink for i in todo], EXPRESSION, model=model, profile=profile,
                       plain=[readings[i].frames for i in todo])
    out = {}
    for i, r in zip(todo, again):
        if r.text is None or "=" in r.text:
            continue
        if readings[i].text is not None and (r.nbest[0][1] <= COMPUTED_RATIO * readings[i].nbest[0][1]
                                             or sum(ch in "+-*/" for ch in r.text) < 2):
            # The line as "a op b = c" explains the ink about as well; or the reading is one operation
            # with a long number, which is what a missed "=" looks like ("69-967" for "69-9=67")
            continue
        v = work_out(r.text)
        if v["value"] is None:
            continue
        mass = sum(p for _, p in r.nbest)
        line = lines[i]
        out[i] = LineResult(expression=r.text, value=v["value"], written_answer=None, correct=None, status="computed",
                            confidence=round(r.nbest[0][1] / mass, 4) if mass > 0 else 0.0, bbox=line.bbox,
                            polygon=line.polygon, column=line.column, value_exact=v.get("value_exact"),
                            alternatives=[t for t, _ in r.nbest[1:4]])
    return out


# How much likelier than the line's best "a op b = c" reading a reading with no "=" must be for the
# line to be worked out instead of checked (on real pen lines of training writers, 2 turned right
# lines with a faint "=" into expressions)
COMPUTED_RATIO = 20.0


ORIENTATION_SAMPLE = 6  # lines read of each quarter turn to tell which way up a weak page is


def _widest(lines: list, n: int | None) -> list:
    """The ``n`` widest of ``lines`` (in their order on the page): the ones that show best which way up
    a page is."""
    if n is None or len(lines) <= n:
        return list(lines)
    keep = set(sorted(range(len(lines)), key=lambda i: -lines[i].ink.shape[1])[:n])
    return [l for i, l in enumerate(lines) if i in keep]


def _weak(readings) -> bool:
    """A page hypothesis that reads poorly: no line, or lines whose best readings are mostly doubtful
    *and* mostly implausible (no answer a pupil's working gives: ``answer_kind`` neither right nor a
    slip). A page turned over reads as both; an upright page in a hand the reader finds hard is
    doubtful but adds up, and is not worth reading three more times."""
    probs = [r.nbest[0][1] if r.text is not None and r.nbest else 0.0 for r in readings]
    plausible = [r.text is not None and answer_kind(r.text) in ("right", "near") for r in readings]
    return not probs or (float(np.mean(probs)) < 0.5 and float(np.mean(plausible)) < 0.5)


def _turned_back(page, turns: int, rgb: np.ndarray):
    """``page``, read from ``np.rot90(rgb, turns)``, with its polygons and image in ``rgb``'s pixels."""
    import dataclasses

    h, w = rgb.shape[:2]

    def back(x: float, y: float) -> list[int]:
        # np.rot90(a, k)[y', x'] is a[...] at: k=1 (w-1-y', x'), k=2 (w-1-x', h-1-y'), k=3 (y', h-1-x')
        x, y = {1: (w - 1 - y, x), 2: (w - 1 - x, h - 1 - y), 3: (y, h - 1 - x)}[turns]
        return [int(round(x)), int(round(y))]

    lines = [dataclasses.replace(l, polygon=[back(*p) for p in l.polygon]) for l in page.lines]
    sheet = [back(*p) for p in page.sheet] if page.sheet else page.sheet
    return dataclasses.replace(page, lines=lines, sheet=sheet, image=rgb, size=(w, h))
