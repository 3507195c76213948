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
    pixels: list[np.ndarray] = field(default_factory=list, repr=False)  # each row's own ink, in its box

    @property
    def box(self) -> Box:
        boxes = self.rows + self.rules
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                max(b[3] for b in boxes))


def find_rules(ink: np.ndarray, symbol_h: float) -> tuple[list[Box], np.ndarray]:
    """Hand-drawn rules: dark strokes at least 1.6 symbols long that stay level and pen-thin; their
    boxes, and their pixels (a little wider, for taking them out of the ink without cutting the
    digits that touch them)."""
    k = max(5, int(round(1.6 * symbol_h)))
    dark = (ink > 0.45).astype(np.uint8)
    # A rule drawn by hand wobbles and slants a little: thickened by a few pixels first, its runs stay
    # long enough for the opening, which keeps only horizontal runs a rule's length.
    thick = cv2.dilate(dark, np.ones((5, 1), np.uint8))
    opened = cv2.morphologyEx(thick, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    opened = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    keep = np.zeros(n, bool)
    out = []
    for i, (x, y, w, h, _) in enumerate(stats[1:], start=1):
        if w >= k and h <= max(3, 0.45 * symbol_h) + 4:
            keep[i] = True
            out.append((int(x), int(y) + 2, int(x + w), int(y + h) - 2))
    if not out:
        return [], np.zeros(dark.shape, bool)
    pixels = cv2.dilate((keep[labels] & (dark > 0)).astype(np.uint8), np.ones((5, 3), np.uint8))
    return _joined(out, symbol_h), pixels > 0


def _joined(rules: list[Box], symbol_h: float) -> list[Box]:
    """Pieces of one rule (a pen lifted, a wobble the opening broke) joined: level with each other and
    less than half a symbol apart."""
    out: list[list[int]] = []
    for x0, y0, x1, y1 in sorted(rules):
        for r in out:
            level = min(y1, r[3]) - max(y0, r[1]) > -0.15 * symbol_h
            if level and x0 - r[2] < 0.5 * symbol_h:
                r[:] = [r[0], min(r[1], y0), max(r[2], x1), max(r[3], y1)]
                break
        else:
            out.append([x0, y0, x1, y1])
    return [tuple(r) for r in out]


Comp = tuple[int, int, int, int, int]  # x0, y0, x1, y1, label


def _components(mask: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> list[Comp]:
    """The marks of ``mask`` in a window, in page coordinates."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask[y0:y1, x0:x1].astype(np.uint8), connectivity=8)
    return [(x0 + int(x), y0 + int(y), x0 + int(x + w), y0 + int(y + h), i)
            for i, (x, y, w, h, a) in enumerate(stats[1:], start=1) if a >= 3]


def _specks(comps: list[Comp], h: float) -> list[Comp]:
    """``comps`` without specks (a fifth of a symbol at most): no part of a column sum, and a reader
    takes one between two digits for a multiplication dot."""
    return [c for c in comps if max(c[2] - c[0], c[3] - c[1]) >= 0.2 * h]


def _group_rows(comps: list[Comp], h: float) -> list[list[Comp]]:
    """Marks grouped into rows of writing, top to bottom. Digit-sized marks make the rows (centres
    less than half a symbol apart: rows whose strokes overlap or touch stay apart, as a projection
    would not keep them); smaller ones (an operator, a digit's detached flag, a carry mark) join the
    row whose height holds their centre, or make rows of their own."""
    def cy(c: Comp) -> float:
        return (c[1] + c[3]) / 2

    big = sorted((c for c in comps if c[3] - c[1] >= 0.45 * h), key=cy)
    rows: list[list[Comp]] = []
    for c in big:
        if rows and cy(c) - np.median([cy(r) for r in rows[-1]]) < 0.5 * h:
            rows[-1].append(c)
        else:
            rows.append([c])
    spans = [(min(c[1] for c in r), max(c[3] for c in r)) for r in rows]
    loose: list[Comp] = []
    for c in sorted((c for c in comps if c[3] - c[1] < 0.45 * h), key=cy):
        hit = [i for i, (a, b) in enumerate(spans) if a <= cy(c) <= b]
        if hit:
            rows[hit[0]].append(c)
        else:
            loose.append(c)
    # Small marks outside every digit row: rows of their own (carry marks), or specks.
    for c in loose:
        near = [r for r in rows if all(d[3] - d[1] < 0.45 * h for d in r)
                and abs(cy(c) - float(np.median([cy(d) for d in r]))) < 0.3 * h]
        if near:
            near[0].append(c)
        else:
            rows.append([c])
    return sorted(rows, key=lambda r: min(c[1] for c in r))


def _box(row: list[Comp]) -> Box:
    return (min(c[0] for c in row), min(c[1] for c in row), max(c[2] for c in row), max(c[3] for c in row))


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
    # A line's "=" or a long minus has the line's digits reaching well above and below it; a column
    # sum's rule has its rows above and below, apart.
    near = _components(mask, rx0, max(0, int(ry0 - 1.5 * h)), rx1, min(H, int(ry1 + 1.5 * h)))
    if any(c[1] < ry0 - 0.3 * h and c[3] > ry1 + 0.3 * h for c in near):
        return None
    # Above: the rows right over the rule, each less than a symbol from the next.
    top = max(0, int(ry0 - 7 * h))
    comps = _components(mask, xa, top, xb, ry0)
    above = _group_rows(_specks(comps, h), h)
    rows: list[list[Comp]] = []
    edge = ry0
    for r in reversed(above):
        if edge - _box(r)[3] > (1.1 if not rows else 0.9) * h:
            break
        rows.insert(0, r)
        edge = _box(r)[1]
    carries: list[Box] = []
    # Carry marks: top rows much smaller than the operands under them.
    height = lambda r: _box(r)[3] - _box(r)[1]  # noqa: E731
    while len(rows) >= 3 and height(rows[0]) < 0.7 * np.median([height(r) for r in rows[1:]]):
        carries += [c[:4] for c in rows.pop(0)]
    if len(rows) < 2 or any(height(r) < 0.5 * h for r in rows):
        return None
    # Below: partial products and a second rule (multiplication), then the result.
    lower = [r for r in rules if r is not rule and r[1] > ry1 and r[1] - ry1 < 6 * h
             and min(r[2], rx1) - max(r[0], rx0) > 0.6 * (rx1 - rx0)]
    end = min([r[1] for r in lower], default=None)
    bottom = min(H, int(ry1 + (end - ry1 if end is not None else 0) + 2.6 * h))
    comps = _components(mask, xa, ry1, xb, bottom)
    below = [r for r in _group_rows(_specks(comps, h), h) if height(r) >= 0.4 * h]
    if not below or _box(below[0])[1] - ry1 > 1.1 * h:
        return None
    if end is not None and _box(below[0])[3] <= end:
        partials = [r for r in below if _box(r)[3] <= end]
        result = [r for r in below if _box(r)[1] >= end][:1]
        if not result:
            return None
        body = rows + partials + result
        kinds = ["operand"] * len(rows) + ["partial"] * len(partials) + ["result"]
        second = [r for r in lower if r[1] == end][:1]
    else:
        body, kinds, second = rows + below[:1], ["operand"] * len(rows) + ["result"], []
    marks = [m for r in body for m in _small_marks(r, h)]
    body = [[c for c in r if c[:4] not in marks] for r in body]
    boxes = [_box(r) for r in body]
    # Right-aligned by place value, each row within the rule's reach: otherwise these are lines of
    # writing that happen to sit over a stroke (a notebook's ruling left dark, an underlined title).
    rights = [b[2] for b in boxes]
    width = max(b[2] - b[0] for b in boxes)
    if max(rights) - min(rights) > 1.3 * h or (rx1 - rx0) < 0.55 * width or (rx1 - rx0) > 2.5 * width + 2 * h:
        return None
    if min(b[0] for b in boxes) < rx0 - 1.5 * h or max(rights) > rx1 + 1.5 * h:
        return None
    pixels = []
    for r, (x0, y0, x1, y1) in zip(body, boxes):
        own = np.zeros((y1 - y0, x1 - x0), bool)
        for cx0, cy0, cx1, cy1, _ in r:
            part = mask[cy0:cy1, cx0:cx1]
            own[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] |= part
        pixels.append(own)
    return ColumnBlock(boxes, kinds, [rule] + second, carries + marks, pixels)


def _small_marks(row: list[Comp], h: float) -> list[Box]:
    """Carry or borrow marks written inside a row: marks much smaller than the row's digits, in its
    upper part (a "+" or "-" is small too, but sits at mid-height)."""
    x0, y0, x1, y1 = _box(row)
    heights = [c[3] - c[1] for c in row if c[3] - c[1] >= 0.5 * h]
    digit_h = float(np.median(heights)) if heights else h
    out = []
    for c in row:
        w, hh = c[2] - c[0], c[3] - c[1]
        if hh <= 0.6 * digit_h and c[3] <= y0 + 0.45 * (y1 - y0) and hh >= 0.8 * w:
            out.append(c[:4])
    return out
