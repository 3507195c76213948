"""Check arithmetic homework: read "a op b = c" lines from a drawing, scan or photo and mark them.

Page: greyscale -> ink (shading flattened) -> skew found by projection profiles and corrected ->
lines from the horizontal projection -> symbols (segment.py) -> 17-class CNN -> the most probable
symbol string that the homework grammar allows -> exact evaluation (fractions) -> verdict.

Expressions are parsed by a small recursive-descent grammar of our own; nothing is ever passed
to ``eval``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction

import cv2
import numpy as np

from .errors import DigitlabError
from .preprocess import NoDigitFound, ink_map, load_image, otsu_mask

MAX_LINE_CHARS = 200
MAX_NUMBER_DIGITS = 30


class ParseError(DigitlabError):
    """A line that is not a well-formed arithmetic expression."""


# -- parsing and exact evaluation ------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    if len(text) > MAX_LINE_CHARS:
        raise ParseError(f"line longer than {MAX_LINE_CHARS} characters")
    norm = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-").replace(":", "/")
    tokens, i = [], 0
    while i < len(norm):
        ch = norm[i]
        if ch.isspace():
            i += 1
        elif ch in "0123456789":
            j = i
            while j < len(norm) and norm[j] in "0123456789":
                j += 1
            if j - i > MAX_NUMBER_DIGITS:
                raise ParseError(f"number longer than {MAX_NUMBER_DIGITS} digits")
            tokens.append(norm[i:j])
            i = j
        elif ch in "+-*/()=":
            tokens.append(ch)
            i += 1
        else:
            raise ParseError(f"unexpected character {ch!r}")
    return tokens


class _Parser:
    """line := expr '=' answer ; expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := NUMBER | '(' expr ')' | '-' factor ; answer := ['-'] NUMBER"""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError("line ends too early" + (f" (expected {expected!r})" if expected else ""))
        if expected is not None and tok != expected:
            raise ParseError(f"expected {expected!r} but found {tok!r}")
        self.i += 1
        return tok

    def expr(self, depth: int = 0) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term(depth)
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.factor(depth)
            if op == "/":
                if rhs == 0:
                    raise ParseError("division by zero")
                value = value / rhs
            else:
                value = value * rhs
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > 20:
            raise ParseError("too deeply nested")
        tok = self.peek()
        if tok == "-":
            self.take()
            return -self.factor(depth + 1)
        if tok == "(":
            self.take()
            value = self.expr(depth + 1)
            self.take(")")
            return value
        if tok is not None and tok.isdigit():
            return Fraction(int(self.take()))
        raise ParseError("expected a number" + (f" but found {tok!r}" if tok else " at the end"))


def evaluate(text: str) -> Fraction:
    """Exact value of an arithmetic expression (no '=')."""
    p = _Parser(tokenize(text))
    value = p.expr()
    if p.peek() is not None:
        raise ParseError(f"unexpected {p.peek()!r}")
    return value


def parse_line(text: str) -> tuple[Fraction, Fraction]:
    """'12+7=19' -> (value of the left side, written answer)."""
    p = _Parser(tokenize(text))
    if "=" not in p.t:
        raise ParseError("no '=' in the line")
    value = p.expr()
    p.take("=")
    neg = p.peek() == "-"
    if neg:
        p.take()
    tok = p.take()
    if not tok.isdigit():
        raise ParseError(f"the answer must be a number, found {tok!r}")
    if p.peek() is not None:
        raise ParseError(f"unexpected {p.peek()!r} after the answer")
    answer = Fraction(int(tok))
    return value, -answer if neg else answer


def _number(f: Fraction) -> int | float:
    return int(f) if f.denominator == 1 else float(f)


def check_expression(text: str) -> dict:
    """Verdict for one line of text: value, written answer, correct, or an error."""
    try:
        value, answer = parse_line(text)
    except ParseError as exc:
        return {"expression": text, "value": None, "written_answer": None, "correct": None, "error": str(exc)}
    out = {"expression": text, "value": _number(value), "written_answer": _number(answer), "correct": value == answer,
           "error": None}
    if value.denominator != 1:
        out["value_exact"] = f"{value.numerator}/{value.denominator}"
    return out


# -- decoding symbols under the grammar -------------------------------------------------------------
# A homework line is NUMBER (OP NUMBER)+ '=' ['-'] NUMBER; the decoder finds the most probable
# symbol string of that form, so a "1" that the grammar needs as "/" (or the reverse) is read right.
_START, _NUM, _OP, _EQ, _NEG, _ANS, _NUM1 = range(7)


def decode(probs: np.ndarray, ascii_classes: list[str]) -> tuple[str, list[int]]:
    """Most probable class sequence allowed by the grammar (Viterbi); greedy if none is allowed."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))
    n, k = logp.shape
    digit = [c for c in range(k) if ascii_classes[c].isdigit()]
    ops = [c for c in range(k) if ascii_classes[c] in "+-*/"]
    eq = [c for c in range(k) if ascii_classes[c] == "="]
    minus = [c for c in range(k) if ascii_classes[c] == "-"]
    moves = {  # state -> [(classes, next state)]; _NUM: first number, _NUM1: a number after an operator
        _START: [(digit, _NUM)],
        _NUM: [(digit, _NUM), (ops, _OP)],
        _OP: [(digit, _NUM1)],
        _NUM1: [(digit, _NUM1), (ops, _OP), (eq, _EQ)],
        _EQ: [(digit, _ANS), (minus, _NEG)],
        _NEG: [(digit, _ANS)],
        _ANS: [(digit, _ANS)],
    }
    score = np.full((n + 1, 7), -np.inf)
    back = np.zeros((n + 1, 7, 2), dtype=np.int64)
    score[0, _START] = 0.0
    for i in range(n):
        for s in range(7):
            if score[i, s] == -np.inf:
                continue
            for classes, nxt in moves[s]:
                c = max(classes, key=lambda c: logp[i, c])
                val = score[i, s] + logp[i, c]
                if val > score[i + 1, nxt]:
                    score[i + 1, nxt] = val
                    back[i + 1, nxt] = (s, c)
    if score[n, _ANS] == -np.inf:
        path = list(np.argmax(logp, axis=1))
    else:
        path, s = [], _ANS
        for i in range(n, 0, -1):
            s_prev, c = back[i, s]
            path.append(int(c))
            s = int(s_prev)
        path.reverse()
    return "".join(ascii_classes[c] for c in path), [int(c) for c in path]


# -- page geometry ---------------------------------------------------------------------------------
def estimate_skew(mask: np.ndarray, max_angle: float = 15.0) -> float:
    """Angle (degrees, counter-clockwise) by which the text lines are rotated.

    Projection profiles: rotating the page back by the right angle makes the row sums of the ink
    most peaked (text rows vs gaps), so we maximise their variance, coarse then fine.
    """
    m = mask.astype(np.float32)
    scale = min(1.0, 600 / max(m.shape))
    if scale < 1:
        m = cv2.resize(m, (max(1, int(m.shape[1] * scale)), max(1, int(m.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    h, w = m.shape
    diag = int(np.ceil(np.hypot(h, w)))
    pad = np.zeros((diag, diag), np.float32)
    pad[(diag - h) // 2 : (diag - h) // 2 + h, (diag - w) // 2 : (diag - w) // 2 + w] = m

    def score(angle: float) -> float:
        M = cv2.getRotationMatrix2D((diag / 2, diag / 2), -angle, 1.0)
        rows = cv2.warpAffine(pad, M, (diag, diag), flags=cv2.INTER_LINEAR).sum(axis=1)
        return float(np.var(rows))

    best = max(np.arange(-max_angle, max_angle + 1e-9, 0.5), key=score)
    best = max(np.arange(best - 0.5, best + 0.5 + 1e-9, 0.05), key=score)
    return float(round(best, 2))


def rotate(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by -angle (undoing a counter-clockwise skew), keeping the whole page."""
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    cos, sin = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, M, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=0)


def find_lines(mask: np.ndarray, min_gap_frac: float = 0.25) -> list[tuple[int, int]]:
    """Row ranges (y0, y1) of text lines from the horizontal projection of a deskewed ink mask."""
    rows = mask.sum(axis=1)
    on = rows > max(1, 0.01 * rows.max())
    bands, start = [], None
    for y, v in enumerate(on):
        if v and start is None:
            start = y
        elif not v and start is not None:
            bands.append([start, y])
            start = None
    if start is not None:
        bands.append([start, len(on)])
    if not bands:
        return []
    med = float(np.median([b[1] - b[0] for b in bands]))
    merged = [bands[0]]
    for b in bands[1:]:
        # Parts of one line (the bars of "=", the dots of "÷", a detached stroke) are separated by
        # gaps much smaller than a line's height; real lines are further apart.
        if b[0] - merged[-1][1] < min_gap_frac * med or (b[1] - b[0]) < 0.3 * med:
            merged[-1][1] = max(merged[-1][1], b[1])
        else:
            merged.append(b)
    tall = max(b[1] - b[0] for b in merged)
    return [(a, b) for a, b in merged if b - a >= 0.2 * tall]


# -- results ---------------------------------------------------------------------------------------
@dataclass
class LineResult:
    expression: str
    value: int | float | None
    written_answer: int | float | None
    correct: bool | None
    confidence: float
    bbox: list[int]
    error: str | None = None
    low_confidence: list[int] = field(default_factory=list)  # positions of doubtful symbols
    value_exact: str | None = None


@dataclass
class PageResult:
    file: str
    skew_degrees: float
    lines: list[LineResult]
    page: np.ndarray | None = field(default=None, repr=False)  # deskewed greyscale, for --annotate

    def as_dict(self) -> dict:
        lines = []
        for line in self.lines:
            d = asdict(line)
            if d["value_exact"] is None:
                d.pop("value_exact")
            if d["error"] is None:
                d.pop("error")
            lines.append(d)
        return {"file": self.file, "skew_degrees": self.skew_degrees, "lines": lines}


def check_page(source, name: str = "image", max_side: int | None = None, model=None,
               low_confidence: float = 0.7) -> PageResult:
    """Read and check every arithmetic line of an image."""
    from .recognize import get_model
    from .segment import segment_ink
    from .symbols import ASCII

    kw = {"name": name}
    if max_side:
        kw["max_side"] = max_side
    grey = load_image(source, **kw)
    ink = ink_map(grey)
    mask = otsu_mask(ink)
    skew = estimate_skew(mask)
    ink_r = rotate(ink, skew)
    grey_r = 1.0 - rotate(1.0 - grey, skew)
    mask_r = rotate(mask.astype(np.float32), skew) > 0.5
    model = model or get_model("symbols")
    classes = model.metadata.get("classes", ASCII)
    results = []
    for y0, y1 in find_lines(mask_r):
        pad = max(2, (y1 - y0) // 10)
        top, bottom = max(0, y0 - pad), min(ink_r.shape[0], y1 + pad)
        try:
            symbols = segment_ink(ink_r[top:bottom])
        except NoDigitFound:
            continue
        probs = model.predict_proba(np.stack([s.image for s in symbols]))
        text, path = decode(probs, classes)
        conf = [float(probs[i, c]) for i, c in enumerate(path)]
        xs0 = min(s.box[0] for s in symbols)
        xs1 = max(s.box[2] for s in symbols)
        verdict = check_expression(text)
        results.append(LineResult(
            expression=text, value=verdict["value"], written_answer=verdict["written_answer"],
            correct=verdict["correct"], confidence=round(min(conf), 4), bbox=[int(xs0), int(top), int(xs1), int(bottom)],
            error=verdict["error"], low_confidence=[i for i, c in enumerate(conf) if c < low_confidence],
            value_exact=verdict.get("value_exact")))
    return PageResult(file=name, skew_degrees=skew, lines=results, page=grey_r)


def annotate(result: PageResult, out_path) -> None:
    """Write the deskewed page with a green tick or red cross and the right answer beside each line."""
    from PIL import Image

    page = (np.clip(result.page, 0, 1) * 255).astype(np.uint8)
    h, w = page.shape
    margin = max(160, w // 3)
    canvas = np.full((h, w + margin, 3), 255, np.uint8)
    canvas[:, :w] = page[..., None]
    for line in result.lines:
        x0, y0, x1, y1 = line.bbox
        lh = max(10, y1 - y0)
        cx, cy = w + lh // 2 + 4, (y0 + y1) // 2
        s = lh // 3
        thick = max(2, lh // 12)
        if line.correct is True:
            colour = (30, 140, 50)
            cv2.line(canvas, (cx - s, cy), (cx - s // 3, cy + s), colour, thick, cv2.LINE_AA)
            cv2.line(canvas, (cx - s // 3, cy + s), (cx + s, cy - s), colour, thick, cv2.LINE_AA)
            label = ""
        elif line.correct is False:
            colour = (200, 40, 40)
            cv2.line(canvas, (cx - s, cy - s), (cx + s, cy + s), colour, thick, cv2.LINE_AA)
            cv2.line(canvas, (cx - s, cy + s), (cx + s, cy - s), colour, thick, cv2.LINE_AA)
            label = f"= {line.value_exact or line.value}"
        else:
            colour = (220, 130, 0)
            label = "?"
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, 1)
        if label:
            cv2.putText(canvas, label, (cx + s + 6, cy + s // 2), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, lh / 60), colour,
                        max(1, thick // 2), cv2.LINE_AA)
    import io

    from .fileio import atomic_write

    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG")
    atomic_write(out_path, buf.getvalue())
