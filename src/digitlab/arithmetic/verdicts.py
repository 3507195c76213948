"""Check every arithmetic line of a page and say, per line, correct / wrong / unsure / unreadable.

The reader's N-best readings carry probabilities. Their support for a verdict is measured among the
readings the grammar allows: a line is **correct** when the readings that make it correct hold at
least ``CORRECT_MIN`` of that mass, **wrong** when the readings that make it wrong hold ``WRONG_MIN``
of it *and* the best reading alone has at least ``TOP_MIN`` of all the probability (a cross on a
right answer is the worst mistake a checker can make: an unsure reader must not give one), and
**unsure** otherwise, for the teacher to look at; a calibration may open a second route to a cross
(``Calibration.sure``): a wrong share closer still to 1 and the best reading holding most of the
grammatical readings' mass (``best_share``), whatever its share of all the probability, for lines
whose reader put most of its probability on strings that are no arithmetic line but is sure among
those that are (a small "x" it hardly sees: "5x7=34" read "57=34" but for the grammar). Unsure
also when the line would add up with some of its
1s read as 7s or 7s as 1s (``shape_twin``: a flagged 1 and a 7 are one shape in many hands).
The mass is normalised because the CTC reader also puts probability on strings that are no arithmetic
line at all (a stroke between two symbols read as a blank or an extra symbol); those say nothing about
right or wrong.

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


# Digits a writer's hand can make look alike on every line it writes: a "1" with a long flag, as most
# European writers make it, reads as a "7", and the CTC readers are sure of it. On 1,000 validation
# lines of pendigits' training writers, 28 of the 85 misread digits were 1s read as 7s, the one false
# cross was "9*72=708" for "9*12=108", and of 462 true crosses 4 would add up with some 1s and 7s
# swapped (other pairs cost more: with 1/4, 7/2 and 9/7 too, 26).
SHAPE_TWINS = (("1", "7"),)
_MAX_TWIN_SYMBOLS = 8  # look-alike symbols considered in one line (2^8 readings at most)
# A CTC reader writes two equal symbols only with a blank frame between them, so two thin 1s written
# close together read as one, surely ("1*12=132" for "11*12=132"). On the calibration's 12,000 lines
# and 3,500 other validation lines, a line that adds up with one of its 1s doubled was 4 of the 15
# false crosses (all in validation glyphs) and 11 of 6,628 true crosses. The calibration does not
# count on it (``shape_twin(doubled=False)``): spent on looser bounds, it gave more false crosses on
# pen writers the calibration never saw (``benchmarks/verdict_routes.py``).
DOUBLED = ("1",)


@functools.lru_cache(maxsize=16384)
def shape_twin(text: str, doubled: bool = True) -> str | None:
    """The reading of ``text`` with the fewest of its look-alike digits (``SHAPE_TWINS``) read as their
    twin that adds up, else with one of its 1s doubled (``DOUBLED``) that adds up, or None. A line that
    would be right if some of its 1s were 7s gets no cross: which of them the writer meant is the
    teacher's to see. ``doubled=False``: the look-alikes only."""
    import itertools

    for a, b in SHAPE_TWINS:
        at = [i for i, ch in enumerate(text) if ch in (a, b)][:_MAX_TWIN_SYMBOLS]
        for k in range(1, len(at) + 1):
            for chosen in itertools.combinations(at, k):
                t = list(text)
                for i in chosen:
                    t[i] = b if t[i] == a else a
                twin = "".join(t)
                if answer_kind(twin) == "right":
                    return twin
    for i, ch in enumerate(text if doubled else ""):
        if ch in DOUBLED and answer_kind(twin := text[:i] + ch + text[i:]) == "right":
            return twin
    return None


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


def best_share(nbest: list[tuple[str, float]]) -> float:
    """The best reading's share of the grammatical readings' mass (0 when it is no arithmetic line)."""
    mass = sum(p for t, p in nbest if adds_up(t) is not None)
    return nbest[0][1] / mass if nbest and mass > 0 and adds_up(nbest[0][0]) is not None else 0.0


def alternatives(nbest: list[tuple[str, float]], status: str, n: int = 3) -> list[str]:
    """The readings to offer beside the best one: the next ``n``, after the look-alike reading that
    adds up when that is what left the line unsure (``shape_twin``)."""
    rest = [t for t, _ in nbest[1:]]
    twin = shape_twin(nbest[0][0]) if status == "unsure" and nbest and adds_up(nbest[0][0]) is False else None
    return list(dict.fromkeys(([twin] if twin else []) + rest))[:n]


def verdict(nbest: list[tuple[str, float]], correct_min: float = CORRECT_MIN,
            wrong_min: float = WRONG_MIN, top_min: float = TOP_MIN, twins: bool = True,
            sure: tuple[float, float, float] | None = None) -> tuple[str, float]:
    """(status, support) from N-best readings [(text, probability)], best first.

    ``support`` is the share of the grammatical readings' probability that backs the status.
    ``sure``: (wrong share, ``best_share``, floor on the best reading's probability), a second set of
    bounds that also gives a cross.
    ``twins=False``: a cross even where the line would add up with its 1s and 7s swapped (``shape_twin``);
    how clearly a line reads, not what it may be told.
    """
    if not nbest:
        return "unreadable", 0.0
    right, wrong, best = verdict_support(nbest)
    if best is None:
        return "unreadable", 0.0
    if best is True and right >= correct_min:
        return "correct", right
    top = nbest[0][1]
    crossed = (wrong >= wrong_min and top >= top_min) or (
        sure is not None and wrong >= sure[0] and top >= sure[2] and best_share(nbest) >= sure[1])
    if best is False and crossed and not (twins and shape_twin(nbest[0][0])):
        return "wrong", wrong
    return "unsure", max(right, wrong)


@dataclass(frozen=True)
class Calibration:
    """How a reader's readings become verdicts: the bounds, the arithmetic prior and which steps the
    reading takes, as chosen on validation lines for that reader and stored with it
    (``metadata["verdict_thresholds"]``, ``calibrate.py``); the module's constants where it has none."""

    correct: float = CORRECT_MIN
    wrong: float = WRONG_MIN
    top: float = TOP_MIN
    prior: float = PRIOR
    far: float = FAR
    sure: tuple[float, float, float] | None = None  # a second route to a cross (``verdict``), when calibrated
    limits: dict = field(default_factory=dict)  # the stored calibration: its "digits", "near_misses"

    @classmethod
    def of(cls, reader) -> "Calibration":
        limits = reader.metadata.get("verdict_thresholds", {})
        if limits.get("rule") != RULE:  # chosen for another way of measuring support: not comparable
            limits = {}
        sure = limits.get("sure")
        return cls(limits.get("correct", CORRECT_MIN), limits.get("wrong", WRONG_MIN), limits.get("top", TOP_MIN),
                   limits.get("prior", PRIOR), limits.get("far", FAR), tuple(sure) if sure else None, limits)

    @property
    def bounds(self) -> tuple[float, float, float]:
        return self.correct, self.wrong, self.top

    def verdict(self, nbest, twins: bool = True) -> tuple[str, float]:
        return verdict(nbest, *self.bounds, twins=twins, sure=self.sure)

    def rerank(self, nbest):
        return with_prior(nbest, self.prior, self.far)
