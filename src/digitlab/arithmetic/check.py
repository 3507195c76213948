"""Check every arithmetic line of a page and say, per line, correct / wrong / unsure / unreadable.

The reader's N-best readings carry probabilities. Their support for a verdict is measured among the
readings the grammar allows: a line is **correct** when the readings that make it correct hold at
least ``CORRECT_MIN`` of that mass, **wrong** when the readings that make it wrong hold ``WRONG_MIN``
of it *and* the best reading alone has at least ``TOP_MIN`` of all the probability (a cross on a
right answer is the worst mistake a checker can make: an unsure reader must not give one), and
**unsure** otherwise, for the teacher to look at. The mass is normalised because the CTC reader also
puts probability on strings that are no arithmetic line at all (a stroke between two symbols read as
a blank or an extra symbol); those say nothing about right or wrong.

Before the verdict, three steps use what a checker knows and a line reader does not
(``read_for_verdicts``, then ``with_prior``):
1. near misses: when the best reading does not add up, the readings one symbol away that do are
   scored exactly and join the N-best (``near_misses``);
2. a digit CNN's second opinion on each reading's digits (``reader.rescore.rescore``; the CNN fine-tuned
   on digits cut out of lines, ``reader/slices.py``);
3. a prior: readings that add up weigh ``PRIOR`` times what the reader says. Bayes: a pupil's written
   answer is most often the right value, and a wrong one is one of many values, so of two readings
   the reader finds about as likely, "28+83=111" is a better bet than "08+83=111".
   And a wrong answer is most often a slip (``answer_kind``), so readings whose answer no working
   gives ("65*44=21": a minus read as a cross) weigh ``FAR`` times, and near misses offer the slips
   one symbol away from such a reading.
The prior and thresholds are chosen on validation lines (validation writers) when the reader is
trained (``calibrate.py``) and stored with it, with the steps the reading used; these constants are
only the fallback.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from ..digits.preprocess import NoDigitFound
from .grammar import check_expression

CORRECT_MIN = 0.80
WRONG_MIN = 0.999
TOP_MIN = 0.5
PRIOR = 1.0
FAR = 1.0  # weight of readings whose answer no working gives (``answer_kind``); calibrated with PRIOR
# The kept page's readings are rescored by the CNN fine-tuned on digits cut out of lines
# (``reader/slices.py``; calibrate.py reads the same way; a calibration records which model it used).
DIGIT_OPINION = "slice_cnn"
SETTLED_TOP = 0.5  # a page hypothesis's line counts as settled only if its best reading has this much (``_readability``)
NEAR_MISSES = True  # readings one symbol away that add up are scored exactly (``near_misses``)
RULE = "normalised"  # how calibrated thresholds in a model file were measured (see ``verdict``)
STATUSES = ("correct", "wrong", "unsure", "unreadable", "computed")  # computed: an expression with no answer


@dataclass
class LineResult:
    expression: str
    value: int | float | None
    written_answer: int | float | None
    correct: bool | None  # None unless the verdict is confident
    status: str  # correct | wrong | unsure | unreadable
    confidence: float  # probability of the readings that support the status
    bbox: list[int]  # in the user's image
    polygon: list[list[int]] = field(default_factory=list)
    column: int = 0
    error: str | None = None
    low_confidence: list[int] = field(default_factory=list)  # positions of doubtful symbols
    value_exact: str | None = None
    alternatives: list[str] = field(default_factory=list)  # other likely readings, best first
    layout: str = "line"  # "line" ("a op b = c" written along a line) or "column" (a column sum)


@dataclass
class PageResult:
    file: str
    skew_degrees: float
    lines: list[LineResult]
    sheet: list[list[float]] | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the user's image (RGB), for --annotate
    rotation: int = 0  # degrees the image was turned (counter-clockwise) to read it upright

    def as_dict(self) -> dict:
        lines = []
        for line in self.lines:
            d = asdict(line)
            for key in ("value_exact", "error"):
                if d[key] is None:
                    d.pop(key)
            lines.append(d)
        return {"file": self.file, "skew_degrees": self.skew_degrees, "rotation": self.rotation,
                "sheet_found": self.sheet is not None, "sheet": self.sheet, "lines": lines}


def adds_up(text: str) -> bool | None:
    """Whether a line's arithmetic is right (None: not an arithmetic line); from ``answer_kind``'s
    cache, as the same readings are weighed, proposed and checked many times a page."""
    kind = answer_kind(text)
    return None if kind is None else kind == "right"


@functools.lru_cache(maxsize=65536)
def answer_kind(text: str) -> str | None:
    """How a reading's written answer stands to its value: "right"; "near", a slip a pupil makes (within
    10 of the value, or one digit of it changed, added or dropped, or two neighbours swapped: a carry,
    a misremembered fact, 61 for 16); "far", an answer no working gives (a misread operator:
    "65*44=21" for "65-44=21"); None: no arithmetic line. Cached: the same readings are weighed,
    proposed and checked many times a page."""
    got = check_expression(text)
    if got["correct"] is None:
        return None
    if got["correct"]:
        return "right"
    value, answer = got["value"], got["written_answer"]
    if value != int(value) or answer < 0:  # no school problem divides into a fraction
        return "far"
    if abs(answer - value) <= 10:
        return "near"
    a, v = str(int(answer)), str(int(value))
    if len(a) == len(v):
        differ = [i for i, (x, y) in enumerate(zip(a, v)) if x != y]
        i = differ[0] if differ else 0
        swapped = len(differ) == 2 and differ[1] == i + 1 and a[i : i + 2] == v[i : i + 2][::-1]
        return "near" if len(differ) == 1 or swapped else "far"
    short, long = sorted((a, v), key=len)
    one_digit = len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
    return "near" if one_digit else "far"


def with_prior(nbest: list[tuple[str, float]], prior: float = PRIOR, far: float = FAR) -> list[tuple[str, float]]:
    """``nbest`` with the readings whose arithmetic is right weighted ``prior`` times, and those whose
    answer is ``far`` from any working (``answer_kind``) weighted ``far`` times, best first; the list's
    total probability is kept."""
    if (prior == 1.0 and far == 1.0) or not nbest:
        return nbest
    weight = {"right": prior, "far": far}
    w = [p * weight.get(answer_kind(t), 1.0) for t, p in nbest]
    scale = sum(p for _, p in nbest) / max(sum(w), 1e-300)
    order = sorted(range(len(nbest)), key=lambda i: -w[i])  # stable: ties keep the reader's order
    return [(nbest[i][0], w[i] * scale) for i in order]


def near_misses(nbest: list[tuple[str, float]], limit: int = 40) -> list[str]:
    """Readings one symbol away from the best one (a digit changed, added or dropped, an operator
    changed) whose arithmetic is right, when the best reading's is wrong; and, when its answer is
    ``far`` from any working (``answer_kind``), those one symbol away whose answer is a pupil's slip.

    A reader sure of a misread digit keeps no reading with the right one in its beam, and then
    nothing stops a cross on a right answer; scored exactly (``read_lines(propose=...)``), such a
    reading can make the line unsure, or, with the prior, correct. A misread operator ("65*44=21")
    makes any answer far: the line the pupil wrote ("65-44=21", or "58-51=3", a slip) is one symbol away."""
    kind = answer_kind(nbest[0][0]) if nbest else None
    if kind not in ("near", "far"):
        return []
    text, right, near = nbest[0][0], [], []
    for i in range(len(text) + 1):
        edits = [text[:i] + d + text[i:] for d in "0123456789"]  # a digit added
        if i < len(text):
            ch, rest = text[i], text[i + 1 :]
            swap = "0123456789" if ch.isdigit() else "+-*/" if ch in "+-*/" else ""
            edits += [text[:i] + d + rest for d in swap if d != ch]
            if ch.isdigit():
                edits.append(text[:i] + rest)  # a digit dropped
        right += [e for e in edits if answer_kind(e) == "right"]
        if kind == "far":
            near += [e for e in edits if answer_kind(e) == "near"]
    return list(dict.fromkeys(right + near))[:limit]


def verdict_support(nbest: list[tuple[str, float]]) -> tuple[float, float, bool | None]:
    """(share of the grammatical readings' mass that makes the line right, share that makes it wrong,
    whether the best reading is right)."""
    verdicts = [adds_up(t) for t, _ in nbest]
    p_right = sum(p for (_, p), ok in zip(nbest, verdicts) if ok is True)
    p_wrong = sum(p for (_, p), ok in zip(nbest, verdicts) if ok is False)
    best = verdicts[0] if verdicts else None
    mass = p_right + p_wrong
    if mass <= 0:
        return 0.0, 0.0, best
    return p_right / mass, p_wrong / mass, best


def verdict(nbest: list[tuple[str, float]], correct_min: float = CORRECT_MIN,
            wrong_min: float = WRONG_MIN, top_min: float = TOP_MIN) -> tuple[str, float]:
    """(status, support) from N-best readings [(text, probability)], best first.

    ``support`` is the share of the grammatical readings' probability that backs the status.
    """
    if not nbest:
        return "unreadable", 0.0
    right, wrong, best = verdict_support(nbest)
    if best is None:
        return "unreadable", 0.0
    if best is True and right >= correct_min:
        return "correct", right
    if best is False and wrong >= wrong_min and nbest[0][1] >= top_min:
        return "wrong", wrong
    return "unsure", max(right, wrong)


def read_for_verdicts(inks: list, model=None, profile=None, limits: dict | None = None, rerank=None, plain=None):
    """Read lines the way their verdicts were calibrated: test-time augmentation, and, where the
    calibration (``limits``, from the model file; None: today's) says so, the CNN's second opinion
    and near misses scored exactly (``plain``: see ``read_lines``)."""
    from ..reader.decode import ARITHMETIC
    from ..reader.read import read_lines

    limits = {"digits": DIGIT_OPINION, "near_misses": NEAR_MISSES} if limits is None else limits
    return read_lines(inks, ARITHMETIC, model=model, profile=profile, digits=limits.get("digits", False),
                      propose=near_misses if limits.get("near_misses", False) else None, rerank=rerank, plain=plain)


def _clear(r, correct_min: float, wrong_min: float, top_min: float) -> bool:
    """A line decided, with one reading standing out whose answer some working gives."""
    return (r.text is not None and bool(r.nbest) and verdict(r.nbest, correct_min, wrong_min, top_min)[0] != "unsure"
            and r.nbest[0][1] >= SETTLED_TOP and answer_kind(r.nbest[0][0]) != "far")


def _readability(readings, correct_min: float, wrong_min: float, top_min: float) -> tuple[float, bool]:
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
        decided += _clear(r, correct_min, wrong_min, top_min)
    return score, len(readings) >= 2 and decided >= 0.75 * len(readings)


def check_page(source, name: str = "image", max_side: int | None = None, model=None,
               low_confidence: float = 0.7, profile=None) -> PageResult:
    """Read and check every arithmetic line of a photo, scan or drawing (``profile``: see ``read_lines``)."""
    from ..page.layout import page_hypotheses
    from ..reader.decode import ARITHMETIC
    from ..reader.read import get_line_reader, primary, read_lines

    model = model or get_line_reader()
    limits = model.metadata.get("verdict_thresholds", {})
    if limits.get("rule") != RULE:  # chosen for another way of measuring support: not comparable
        limits = {}
    correct_min, wrong_min = limits.get("correct", CORRECT_MIN), limits.get("wrong", WRONG_MIN)
    top_min, prior, far = limits.get("top", TOP_MIN), limits.get("prior", PRIOR), limits.get("far", FAR)
    from ..io.images import load_rgb

    rgb = load_rgb(source, name=name, **({"max_side": max_side} if max_side else {}))

    def hypotheses(image, sample: int | None = None):
        # Hypotheses are compared on plain readings by the primary reader; only the one kept is read
        # again by the whole reader: a wrong outline can cut a page into dozens of long bands.
        # ``sample``: only that many of each hypothesis' widest lines are read (a quick look).
        best = None
        for page in page_hypotheses(image, name=name, max_side=max_side):
            lines = _widest(page.lines, sample) if sample else page.lines
            readings = read_lines([l.ink for l in lines], ARITHMETIC, model=primary(model), profile=profile,
                                  tta=False) if lines else []
            score, settled = _readability(readings, correct_min, wrong_min, top_min)
            # Column sums found (operands over a rule, right-aligned) show a page the right way up;
            # not in a quick look at a quarter turn, where a line's 1s lie down like rules.
            if not sample:
                score += 0.9 * len(page.columns)
                settled = settled or (bool(page.columns) and not lines)
            # One line read clearly from the whole picture (no sheet outline to be wrong about, as a
            # crop of one sum has none): other outlines cannot explain it better.
            settled = settled or (page.sheet is None and len(readings) == 1 and _clear(readings[0], correct_min,
                                                                                       wrong_min, top_min))
            if best is None or score > best[0]:
                best = (score, page, readings)
            if settled:
                break
        return best

    first_error = None
    try:
        best, turns = hypotheses(rgb), 0
    except NoDigitFound as exc:
        best, turns, first_error = None, 0, exc
    # A photo may arrive sideways or upside down (no EXIF tag, or one a scanner ignored): when the
    # upright page reads poorly, a quick look at each quarter turn (its widest lines only) is
    # compared with the same look at the upright page, and a turn that reads clearly better is read.
    if best is None or (_weak(best[2]) and not best[1].columns):
        # An image more than 2.5 times as wide as it is high is a line or a strip, never a page turned
        # sideways (that would be tall): only upside down is tried, a third of the time.
        h, w = rgb.shape[:2]
        if best is not None:
            kept = {id(l) for l in _widest(best[1].lines, ORIENTATION_SAMPLE)}
            upright = sum(r.nbest[0][1] for l, r in zip(best[1].lines, best[2]) if id(l) in kept and r.nbest)
        chosen, look = 0, None
        for k in (2,) if w >= 2.5 * h else (1, 2, 3):
            try:
                other = hypotheses(np.ascontiguousarray(np.rot90(rgb, k)), sample=ORIENTATION_SAMPLE)
            except NoDigitFound:
                continue
            if (best is None and (look is None or other[0] > look)) or \
                    (best is not None and other[0] > max(upright * 1.2 + 0.05, look or 0.0)):
                chosen, look = k, other[0]
        if chosen:
            best, turns = hypotheses(np.ascontiguousarray(np.rot90(rgb, chosen))), chosen
        if best is None:
            raise first_error or NoDigitFound("no lines of writing found")
    _, page, readings = best
    if turns:
        page = _turned_back(page, turns, rgb)
    if page.lines:
        readings = read_for_verdicts([l.ink for l in page.lines], model, profile, limits,
                                     rerank=lambda nbest: with_prior(nbest, prior, far), plain=[r.frames for r in readings])
    worked = _expressions(page.lines, readings, model, profile)
    results = []
    for i, (line, reading) in enumerate(zip(page.lines, readings)):
        if i in worked:
            results.append(worked[i])
            continue
        if reading.text is None:
            results.append(LineResult("", None, None, None, "unreadable", 0.0, line.bbox, line.polygon, line.column,
                                      error="not an arithmetic line (a op b = c)"))
            continue
        status, support = verdict(reading.nbest, correct_min, wrong_min, top_min)
        v = check_expression(reading.text)
        results.append(LineResult(
            expression=reading.text, value=v["value"], written_answer=v["written_answer"],
            correct={"correct": True, "wrong": False}.get(status), status=status, confidence=round(support, 4),
            bbox=line.bbox, polygon=line.polygon, column=line.column, error=v["error"],
            low_confidence=[i for i, c in enumerate(reading.symbol_confidence) if c < low_confidence],
            value_exact=v.get("value_exact"), alternatives=[t for t, _ in reading.nbest[1:4]]))
    from .columns import check_columns

    results += check_columns(page.columns, model, profile, limits, (correct_min, wrong_min, top_min), prior, far)
    if not results:
        raise NoDigitFound("no lines of writing found")
    return PageResult(file=name, skew_degrees=page.skew_degrees, lines=results, sheet=page.sheet, image=page.image,
                      rotation=90 * turns)


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
