"""Column arithmetic: operands stacked by place value over a ruled line, the result under it.

A pupil's column sum is three or more bands of writing (small carry marks, the operands, the last one
with the operator at its left, a hand-drawn rule, the result) that the line finder would read as
separate lines. Here a *rule* (a straight stroke much longer than a symbol, thin as a pen) with
operands right above it, right-aligned, and a number right below it makes one problem; multiplication's
partial products sit between a first and a second rule. Carry and borrow marks (writing much smaller
than the operands, above the top one) are taken out of the problem so they never count as digits.

Everything here is in working coordinates (the flattened, straightened page of ``layout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1


@dataclass
class ColumnBlock:
    """One column problem: ``rows`` top to bottom (operands, then partial products if any, then the
    result), each with its ``kinds`` entry ("operand", "partial" or "result")."""

    rows: list[Box]
    kinds: list[str]
    rules: list[Box]
    carries: list[Box] = field(default_factory=list)

    @property
    def box(self) -> Box:
        boxes = self.rows + self.rules
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes))


def find_rules(ink: np.ndarray, symbol_h: float) -> list[Box]:
    """Hand-drawn rules: dark strokes at least 1.6 symbols long that stay level and pen-thin."""
    k = max(5, int(round(1.6 * symbol_h)))
    dark = (ink > 0.45).astype(np.uint8)
    opened = cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    # a rule drawn by hand wobbles: its runs are joined back across a pixel or two
    opened = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    out = []
    for x, y, w, h, _ in stats[1:]:
        if w >= k and h <= max(3, 0.45 * symbol_h):
            out.append((int(x), int(y), int(x + w), int(y + h)))
    return out


def _bands(mask: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges of ink in ``mask`` separated by at least one empty row."""
    on = mask.any(axis=1)
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _merged(bands: list[tuple[int, int]], symbol_h: float) -> list[tuple[int, int]]:
    """Bands closer than a fifth of a symbol are one row (the parts of a "+", a "5"'s flag)."""
    out: list[list[int]] = []
    for a, b in bands:
        if out and a - out[-1][1] < 0.2 * symbol_h:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _rows(mask: np.ndarray, symbol_h: float) -> list[tuple[int, int]]:
    """Rows of writing in ``mask``: bands, and a band too tall for one row split at its faintest row
    (rows written close enough to touch, a carry mark sitting on its operand)."""
    profile = mask.sum(axis=1).astype(np.float64)
    out: list[tuple[int, int]] = []

    def split(a: int, b: int) -> None:
        lo, hi = a + int(0.3 * symbol_h), b - int(0.3 * symbol_h)
        if b - a > 1.45 * symbol_h and hi > lo:
            cut = lo + int(np.argmin(profile[lo:hi]))
            if profile[cut] <= 0.25 * profile[a:b].mean():
                split(a, cut)
                split(cut, b)
                return
        inked = np.flatnonzero(profile[a:b] > 0)
        if len(inked):
            out.append((a + int(inked[0]), a + int(inked[-1]) + 1))

    for a, b in _merged(_bands(mask), symbol_h):
        split(a, b)
    return out


def _row_box(mask: np.ndarray, x0: int, y0: int, y1: int) -> Box | None:
    xs = np.flatnonzero(mask[y0:y1].any(axis=0))
    return None if not len(xs) else (x0 + int(xs[0]), y0, x0 + int(xs[-1]) + 1, y1)


def find_column_problems(mask: np.ndarray, rules: list[Box], symbol_h: float) -> list[ColumnBlock]:
    """Column problems on an ink ``mask`` (rules' ink left out of it) around the ``rules`` found."""
    h = symbol_h
    used: list[Box] = []
    out: list[ColumnBlock] = []
    for rule in sorted(rules, key=lambda r: (r[1], r[0])):
        if any(_inside(rule, b) for b in used):
            continue
        block = _problem_at(mask, rule, rules, h)
        if block is not None:
            out.append(block)
            used.append(block.box)
    return out


def _inside(r: Box, b: Box) -> bool:
    return r[0] >= b[0] - 2 and r[2] <= b[2] + 2 and r[1] >= b[1] - 2 and r[3] <= b[3] + 2


def _problem_at(mask: np.ndarray, rule: Box, rules: list[Box], h: float) -> ColumnBlock | None:
    H, W = mask.shape
    rx0, ry0, rx1, ry1 = rule
    xa, xb = max(0, int(rx0 - 0.6 * h)), min(W, int(rx1 + 0.6 * h))
    # Above: the rows right over the rule, each less than a symbol from the next.
    top = max(0, int(ry0 - 7 * h))
    above = _rows(mask[top:ry0, xa:xb], h)
    rows: list[tuple[int, int]] = []
    edge = ry0
    for a, b in reversed([(top + a, top + b) for a, b in above]):
        if edge - b > (1.1 if not rows else 0.9) * h:
            break
        rows.insert(0, (a, b))
        edge = a
    carries: list[Box] = []
    # Carry marks: a top band much smaller than the operands under it.
    while len(rows) >= 3 and rows[0][1] - rows[0][0] < 0.7 * np.median([b - a for a, b in rows[1:]]):
        box = _row_box(mask[:, xa:xb], xa, *rows[0])
        if box:
            carries.append(box)
        rows.pop(0)
    tall = [(a, b) for a, b in rows if b - a >= 0.5 * h]
    if len(tall) < 2 or len(tall) != len(rows):
        return None
    # Below: partial products and a second rule (multiplication), then the result.
    lower = [r for r in rules if r is not rule and r[1] > ry1 and r[1] - ry1 < 6 * h
             and min(r[2], rx1) - max(r[0], rx0) > 0.6 * (rx1 - rx0)]
    end = min([r[1] for r in lower], default=None)
    bottom = min(H, int(ry1 + (end - ry1 if end is not None else 0) + 2.6 * h))
    below = _rows(mask[ry1:bottom, xa:xb], h)
    below = [(ry1 + a, ry1 + b) for a, b in below if b - a >= 0.4 * h]
    if not below or below[0][0] - ry1 > 1.1 * h:
        return None
    if end is not None and below[0][1] <= end:
        partials = [(a, b) for a, b in below if b <= end]
        result = [(a, b) for a, b in below if a >= end][:1]
        if not result:
            return None
        body = rows + partials + result
        kinds = ["operand"] * len(rows) + ["partial"] * len(partials) + ["result"]
        second = [r for r in lower if r[1] == end][:1]
    else:
        body, kinds, second = rows + below[:1], ["operand"] * len(rows) + ["result"], []
    boxes = [_row_box(mask[:, xa:xb], xa, a, b) for a, b in body]
    if any(b is None for b in boxes):
        return None
    # Right-aligned by place value, each row within the rule's reach: otherwise these are lines of
    # writing that happen to sit over a stroke (a notebook's ruling left dark, an underlined title).
    rights = [b[2] for b in boxes]
    width = max(b[2] - b[0] for b in boxes)
    if max(rights) - min(rights) > 1.3 * h or (rx1 - rx0) < 0.55 * width or (rx1 - rx0) > 2.5 * width + 2 * h:
        return None
    if min(b[0] for b in boxes) < rx0 - 1.5 * h or max(rights) > rx1 + 1.5 * h:
        return None
    marks = _small_marks(mask, boxes, h)
    if marks:
        bare = mask.copy()
        for x0, y0, x1, y1 in marks:
            bare[y0:y1, x0:x1] = False
        boxes = [_tight(bare, b) or b for b in boxes]
    return ColumnBlock(boxes, kinds, [rule] + second, carries + marks)


def _tight(mask: np.ndarray, box: Box) -> Box | None:
    x0, y0, x1, y1 = box
    part = mask[y0:y1, x0:x1]
    ys, xs = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    return None if not len(ys) else (x0 + int(xs[0]), y0 + int(ys[0]), x0 + int(xs[-1]) + 1, y0 + int(ys[-1]) + 1)


def _small_marks(mask: np.ndarray, boxes: list[Box], h: float) -> list[Box]:
    """Carry or borrow marks written inside a row's band: marks much smaller than the row's digits,
    sitting in its upper part (a "+" or "-" is small too, but sits at mid-height)."""
    out = []
    for box in boxes:
        x0, y0, x1, y1 = box
        sub = mask[y0:y1, x0:x1].astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
        if n <= 2:
            continue
        heights = stats[1:, cv2.CC_STAT_HEIGHT]
        digit_h = float(np.median(heights[heights >= 0.5 * h])) if (heights >= 0.5 * h).any() else h
        for x, y, w, hh, _ in stats[1:]:
            small, high = hh <= 0.6 * digit_h, y + hh <= 0.45 * (y1 - y0)
            if small and high and hh >= 0.8 * w:
                out.append((x0 + int(x), y0 + int(y), x0 + int(x + w), y0 + int(y + hh)))
    return out
