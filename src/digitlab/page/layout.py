"""Straighten the writing, split it into columns and lines, and remember the way back.

Working coordinates (the flattened, straightened page) map to the user's image through one 3x3
matrix, so every line's polygon is reported where the user sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import ImageError
from ..digits.preprocess import NoDigitFound, otsu_mask
from ..io.images import load_rgb
from .columns import ColumnBlock, find_column_problems, find_rules
from .ink import clean_ink, page_darkness
from .sheet import find_sheet, rectify, sheet_outlines

WORK_SIDE = 1600  # px: the page is read at most this size (enough for 5 mm squares to be ~25 px)
MAX_MARKS = 4000  # ink components; more is not handwriting (dense dots, a photo of a texture)
MAX_LINES = 120


@dataclass
class Line:
    ink: np.ndarray = field(repr=False)  # ink map (1 = ink) of the line's band, for the reader
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in working coordinates
    polygon: list[list[int]]  # the box's corners in the user's image (TL, TR, BR, BL)
    column: int = 0
    origin: tuple[int, int] = (0, 0)  # where ``ink`` starts in working coordinates (x, y)

    @property
    def bbox(self) -> list[int]:
        """Axis-aligned box of ``polygon`` in the user's image."""
        p = np.asarray(self.polygon)
        return [int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())]


@dataclass
class Column:
    """A column problem (``columns.ColumnBlock``): its rows as lines, each with its kind."""

    rows: list[Line]
    kinds: list[str]  # "operand", "partial" or "result", top to bottom
    polygon: list[list[int]]  # the whole problem, in the user's image
    column: int = 0

    @property
    def bbox(self) -> list[int]:
        p = np.asarray(self.polygon)
        return [int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())]


@dataclass
class Page:
    lines: list[Line]
    skew_degrees: float
    sheet: list[list[float]] | None  # the sheet's corners in the user's image, when one was found
    size: tuple[int, int]  # the user's image, (width, height)
    image: np.ndarray = field(repr=False)  # the user's image (RGB float), for annotation
    to_user: np.ndarray = field(repr=False)  # 3x3: working -> user pixels
    columns: list[Column] = field(default_factory=list)  # column problems, kept out of ``lines``


# -- skew ------------------------------------------------------------------------------------------
def estimate_skew(mask: np.ndarray, max_angle: float = 15.0, coarse: float = 0.5) -> float:
    """Angle (degrees, counter-clockwise) by which the text lines are rotated.

    Projection profiles: at the right angle the ink's row histogram is most peaked (text rows vs
    gaps), so we maximise its variance, coarse then fine. The ink pixels are projected directly
    (a sample of them), which is much cheaper than rotating the image for every angle.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 10:
        return 0.0
    if len(xs) > 40000:
        pick = np.random.default_rng(0).choice(len(xs), 40000, replace=False)
        ys, xs = ys[pick], xs[pick]
    xs = xs.astype(np.float64) - mask.shape[1] / 2
    ys = ys.astype(np.float64) - mask.shape[0] / 2
    bin_px = 1.0  # coarser bins alias: short lines give a flat profile, and a bin edge makes a false peak

    def score(angle: float) -> float:
        t = np.deg2rad(angle)
        rows = np.floor((ys * np.cos(t) + xs * np.sin(t)) / bin_px).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        return float(np.sum(counts.astype(np.float64) ** 2))  # variance up to constants (same total)

    best = max(np.arange(-max_angle, max_angle + 1e-9, coarse), key=score)
    best = max(np.arange(best - coarse, best + coarse + 1e-9, 0.05), key=score)
    return float(round(best, 2))


def rotation_matrix(shape: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """2x3 matrix rotating by -angle about the centre, enlarged to keep the whole page; and the size."""
    h, w = shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    cos, sin = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    return M, (nw, nh)


def rotate(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by -angle (undoing a counter-clockwise skew), keeping the whole page."""
    M, size = rotation_matrix(img.shape, angle)
    return cv2.warpAffine(img, M, size, flags=cv2.INTER_LINEAR, borderValue=0)


# -- lines and columns -----------------------------------------------------------------------------
def find_lines(mask: np.ndarray, min_gap_frac: float = 0.25) -> list[tuple[int, int]]:
    """Row ranges (y0, y1) of text lines from the horizontal projection of a deskewed ink mask."""
    rows = mask.sum(axis=1)
    if rows.max() <= 0:
        return []
    on = rows > max(1, 0.01 * rows.max())
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    bands = [list(b) for b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0])]
    if not bands:
        return []
    med = float(np.median([b[1] - b[0] for b in bands]))
    merged = [bands[0]]
    for b in bands[1:]:
        # Parts of one line (the bars of "=", the dots of "÷", a detached stroke) are separated by
        # gaps much smaller than a line's height; real lines are further apart. Two bands that are
        # each nearly a line high are two lines, however close (a small hand on squared paper).
        gap, a = b[0] - merged[-1][1], merged[-1]
        both_lines = min(b[1] - b[0], a[1] - a[0]) >= 0.6 * med and gap >= max(2, 0.06 * med)
        if (gap < min_gap_frac * med and not both_lines) or (b[1] - b[0]) < 0.3 * med:
            merged[-1][1] = max(merged[-1][1], b[1])
        else:
            merged.append(b)
    merged = _split_tall(rows, merged)
    # Specks are small next to the typical band (not the tallest: a stray long stroke would set
    # that, and every real line would then look like a speck).
    typical = float(np.median([b[1] - b[0] for b in merged]))
    out = []
    for a, b in merged:
        # Splitting a tall band at its faintest rows can leave a slice with no ink at all.
        inked = np.nonzero(rows[a:b] > 0)[0]
        if len(inked) and b - a >= 0.3 * typical:
            out.append((int(a + inked[0]), int(a + inked[-1] + 1)))
    return out


def _split_tall(rows: np.ndarray, bands: list[list[int]]) -> list[list[int]]:
    """Split bands about twice a line's height at their faintest row: two lines whose tails overlap."""
    if len(bands) < 3:
        return bands
    line_h = float(np.median([b[1] - b[0] for b in bands]))
    if line_h < 6:
        return bands  # specks, not lines of writing
    out = []
    for a, b in bands:
        while b - a >= 1.7 * line_h:
            lo, hi = a + int(0.3 * line_h), b - int(0.3 * line_h)
            cut = lo + int(np.argmin(rows[lo:hi]))
            if rows[cut] > 0.25 * rows[a:b].mean() or not a < cut < b:
                break  # no faint row: one tall line after all (a fraction, a big bracket)
            out.append([a, cut])
            a = cut
        out.append([a, b])
    return out


def find_columns(mask: np.ndarray, symbol_h: float) -> list[tuple[int, int]]:
    """Column ranges (x0, x1) of a page of exercises, left to right.

    Candidate columns are separated by vertical white channels wider than 1.5 symbols. A candidate
    whose lines are short (answers written far to the right, a mark in the margin) or that holds
    little ink is not a column of its own: it joins its left neighbour; four symbols or more from
    every neighbour, a quarter of its lines being long is enough (a column of short exercises). A
    strip of short marks that are not on that neighbour's lines (what cleaning leaves of the shadow
    of an open book's binding) is no writing: it belongs to no column.
    """
    cols = mask.sum(axis=0)
    on = np.nonzero(cols > 0)[0]
    if not len(on):
        return []
    runs, start, prev = [], on[0], on[0]
    for x in on[1:]:
        if x - prev > 1.5 * symbol_h:
            runs.append([int(start), int(prev) + 1])
            start = x
        prev = x
    runs.append([int(start), int(prev) + 1])
    total = cols.sum()

    found: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def bands(r) -> list[tuple[int, int]]:
        if (r[0], r[1]) not in found:
            found[r[0], r[1]] = find_lines(mask[:, r[0] : r[1]])
        return found[r[0], r[1]]

    def long_lines(r, apart: bool = False) -> bool:
        sub = mask[:, r[0] : r[1]]
        widths = []
        for y0, y1 in bands(r):
            xs = np.nonzero(sub[y0:y1].any(axis=0))[0]
            widths.append(xs[-1] - xs[0] + 1)
        # Far from its neighbours, a column may hold many short exercises ("1x1=1" written
        # narrow is under two symbols wide): a quarter of its lines being long is enough there.
        share = 0.25 if apart else 0.5
        return bool(widths) and float(np.quantile(widths, 1 - share)) >= 3.0 * symbol_h

    # Runs four symbols or more from every neighbour: answers written far to the right are closer.
    gaps = [np.inf] + [b[0] - a[1] for a, b in zip(runs, runs[1:])] + [np.inf]
    apart = {(r[0], r[1]): min(gaps[i], gaps[i + 1]) >= 4.0 * symbol_h for i, r in enumerate(runs)}

    def is_column(r) -> bool:
        return cols[r[0] : r[1]].sum() / total >= 0.08 and long_lines(r, apart[r[0], r[1]])

    def on_lines_of(r, left) -> bool:
        rows = bands(left)
        mine = bands(r)
        hits = sum(any(min(b1, l1) - max(b0, l0) > 0 for l0, l1 in rows) for b0, b1 in mine)
        return hits >= 0.5 * len(mine)

    # Whether a group is a column is judged on its own run: what joined it (a strip of specks
    # cut into many tiny "lines") must not make a column look like a margin.
    out: list[list] = []  # [x0, x1, a column?, the run it was judged on]
    for r in runs:
        column = is_column(r)
        if out and column and out[-1][2]:
            out.append([r[0], r[1], True, r])
        elif out and not column and out[-1][2] and not long_lines(r) and not on_lines_of(r, out[-1][3]):
            continue
        elif out:
            out[-1][1] = r[1]
            if column and not out[-1][2]:
                out[-1][2:] = [True, r]
        else:
            out.append([r[0], r[1], column, r])
    return [(a, b) for a, b, _, _ in out]


def _clean_mask(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink mask without specks, and the typical height of a symbol."""
    mask = (otsu_mask(ink) & (ink > 0.3)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n - 1 > MAX_MARKS:
        raise ImageError(f"too many marks to read as handwriting ({n - 1} separate marks; at most {MAX_MARKS})")
    if n <= 1:
        raise NoDigitFound("no writing found on the page")
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA]
    # The size a symbol's strokes have: among the marks, and where half the ink lies (a thick ruling
    # left as hundreds of dots outnumbers the writing, but does not outweigh it), marks a quarter of
    # the page long (a margin line, the sheet's edge) left out: one such can outweigh the writing.
    by_area = np.sort(areas[np.maximum(heights, stats[1:, cv2.CC_STAT_WIDTH]) <= 0.25 * max(mask.shape)])
    ink_median = by_area[np.searchsorted(np.cumsum(by_area), by_area.sum() / 2)] if len(by_area) else 0
    big = heights[areas >= max(4, 0.2 * max(np.percentile(areas, 75), ink_median))]
    symbol_h = float(np.median(big)) if len(big) else float(np.median(heights))
    keep = np.zeros(n, bool)
    keep[1:] = (areas >= max(3, 0.02 * symbol_h**2)) | (heights >= 0.3 * symbol_h)
    # Long thin straight marks at any angle: a margin line or ruling left slanted by an imperfect
    # flattening (the ruling remover only knows rows and columns), the edge of the sheet. No
    # handwritten symbol is three symbols long and a fraction of a stroke thick.
    long_side = np.maximum(heights, stats[1:, cv2.CC_STAT_WIDTH])
    for i in np.flatnonzero(long_side >= 3 * symbol_h) + 1:
        x, y, w, h = stats[i, :4]
        ys, xs = np.nonzero(labels[y : y + h, x : x + w] == i)
        length = max(cv2.minAreaRect(np.c_[xs, ys].astype(np.float32))[1])
        if length >= 3 * symbol_h and stats[i, cv2.CC_STAT_AREA] / length <= max(3.0, 0.15 * symbol_h):
            keep[i] = False
    keep[1:] &= ~_on_vertical_lines(mask, labels, stats, symbol_h)
    # Tall and narrow: the binding's shadow between two facing pages, a margin drawn thick, the
    # sheet's edge. A line of writing is never four symbols tall.
    keep[1:] &= ~((heights >= 4 * symbol_h) & (stats[1:, cv2.CC_STAT_WIDTH] <= 1.5 * symbol_h))
    return keep[labels], max(symbol_h, 4.0)


def _on_vertical_lines(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray, symbol_h: float) -> np.ndarray:
    """Which components are pieces of a long, nearly vertical line (a margin broken by thresholding).

    Pieces are found as collinear runs (probabilistic Hough) at least 5 symbols long with gaps under
    a symbol; a component belongs to such a line when it is thin and nearly all of it lies on one.
    Gaps stay under a symbol so that the "1"s of consecutive lines (a line pitch apart) never join.
    """
    n = len(stats)
    segs = cv2.HoughLinesP(mask.astype(np.uint8), 1, np.pi / 180, threshold=int(2 * symbol_h),
                           minLineLength=int(5 * symbol_h), maxLineGap=int(symbol_h))
    out = np.zeros(n - 1, bool)
    if segs is None:
        return out
    on_line = np.zeros(mask.shape, np.uint8)
    for x0, y0, x1, y1 in np.asarray(segs).reshape(-1, 4):
        if abs(x1 - x0) <= 0.27 * abs(y1 - y0):  # within 15 degrees of vertical
            cv2.line(on_line, (int(x0), int(y0)), (int(x1), int(y1)), 1, 5)
    if not on_line.any():
        return out
    inside = np.bincount(labels[on_line > 0], minlength=n)[1:]
    area = stats[1:, cv2.CC_STAT_AREA]
    thin = np.minimum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) <= max(6, 0.25 * symbol_h)
    return (inside >= 0.8 * area) & thin


def _without_lone_stroke(xs: np.ndarray, symbol_h: float) -> np.ndarray:
    """A line's inked columns ``xs`` without a narrow mark standing alone at its start: a piece of
    the margin line that flattening left slanted across the line (read as a leading "1"), or a
    question number. Parts of a line are never 1.5 symbols apart (columns are split there); an
    answer written far to the right is at the other end."""
    if len(xs) < 2:
        return xs
    gaps = np.nonzero(np.diff(xs) > 1.5 * symbol_h)[0]
    if len(gaps) and xs[gaps[0]] - xs[0] + 1 <= 0.4 * symbol_h:
        return xs[gaps[0] + 1 :]
    return xs


# -- the whole page --------------------------------------------------------------------------------
def _apply(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:3]


def _load(source, name: str, max_side: int | None) -> tuple[np.ndarray, np.ndarray, float]:
    kw = {"name": name}
    if max_side:
        kw["max_side"] = max_side
    rgb = load_rgb(source, **kw)
    H0, W0 = rgb.shape[:2]
    s = min(1.0, 2000 / max(H0, W0))
    small = cv2.resize(rgb, (int(W0 * s), int(H0 * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
    return rgb, small, s


def analyse_page(source, name: str = "image", max_side: int | None = None, rulings: bool = True,
                 columns: bool = True) -> Page:
    """Find the sheet, flatten it, clean the ink, and cut it into lines (columns left to right).

    ``columns=False`` reads each band across the whole width (a written number is one line, however
    far apart its digits are).
    """
    rgb, small, s = _load(source, name, max_side)
    corners = find_sheet(small) if min(small.shape[:2]) >= 64 else None
    return _analyse(rgb, small, s, corners, rulings, columns)


def page_hypotheses(source, name: str = "image", max_side: int | None = None, rulings: bool = True,
                    columns: bool = True) -> Iterator[Page]:
    """``analyse_page``'s page first, then the same page read with each other plausible outline of
    the sheet (``sheet.sheet_outlines``) and with none, for a caller that can tell which reads best.

    Hypotheses that find no writing are skipped; if none finds any, the first one's error is raised.
    """
    rgb, small, s = _load(source, name, max_side)
    big_enough = min(small.shape[:2]) >= 64
    tried: list[np.ndarray | None] = []

    def same(a, b) -> bool:
        return (a is None and b is None) or (a is not None and b is not None
                                             and np.abs(a - b).max() < 0.03 * max(small.shape[:2]))

    error: Exception | None = None
    found = False
    for corners in sheet_outlines(small) if big_enough else [None]:
        if any(same(corners, t) for t in tried):
            continue
        tried.append(corners)
        try:
            page = _analyse(rgb, small, s, corners, rulings, columns)
        except (NoDigitFound, ImageError) as exc:
            error = error or exc
            continue
        found = True
        yield page
    if not found and error is not None:
        raise error


def _analyse(rgb: np.ndarray, small: np.ndarray, s: float, corners: np.ndarray | None, rulings: bool,
             columns: bool) -> Page:
    H0, W0 = rgb.shape[:2]
    S = np.diag([s, s, 1.0])
    if corners is not None:
        flat, M = rectify(small, corners, WORK_SIDE)
    else:
        s2 = min(1.0, WORK_SIDE / max(small.shape[:2]))
        flat = cv2.resize(small, (max(1, int(small.shape[1] * s2)), max(1, int(small.shape[0] * s2))),
                          interpolation=cv2.INTER_AREA) if s2 < 1 else small
        M = np.diag([s2, s2, 1.0])
    d = page_darkness(flat)
    if corners is not None:
        # The outline is found on a small copy, so a sliver of the table can stay along the edges of
        # the flattened sheet: a dark line beside every line of writing ("1" before each sum).
        m = max(3, int(0.006 * max(d.shape)))
        d[:m], d[-m:], d[:, :m], d[:, -m:] = 0, 0, 0, 0
    # The page's angle first, rulings included (they make the profile sharpest) ...
    rough = (d > max(0.15, float(np.percentile(d, 90)))).astype(np.uint8)
    skew = estimate_skew(rough) if rough.any() else 0.0
    R, size = rotation_matrix(d.shape, skew)
    d = cv2.warpAffine(d, R, size, flags=cv2.INTER_LINEAR, borderValue=0)
    # ... rulings are removed on the straightened page, where they run along rows and columns ...
    ink = clean_ink(d, rulings)
    mask, symbol_h = _clean_mask(ink)
    # A column sum's rule is long and thin like a ruling, so it is looked for before rulings go.
    raw = clean_ink(d, rulings=False) if rulings else ink
    # ... then what is left of the writing's own slant.
    fine = estimate_skew(mask, max_angle=3.0, coarse=0.25)
    if abs(fine) >= 0.2:
        R2, size2 = rotation_matrix(ink.shape, fine)
        ink = cv2.warpAffine(ink, R2, size2, flags=cv2.INTER_LINEAR, borderValue=0)
        raw = cv2.warpAffine(raw, R2, size2, flags=cv2.INTER_LINEAR, borderValue=0) if rulings else ink
        mask = cv2.warpAffine(mask.astype(np.uint8), R2, size2, flags=cv2.INTER_NEAREST) > 0
        R = np.r_[R2, [[0, 0, 1]]] @ np.r_[R, [[0, 0, 1]]]
        R = R[:2]
        skew += fine
    to_work = np.r_[R, [[0, 0, 1]]] @ M @ S
    to_user = np.linalg.inv(to_work)
    lines: list[Line] = []
    problems, mask = _column_problems(ink, raw, mask, symbol_h, to_user, (W0, H0)) if columns else ([], mask)
    spans = find_columns(mask, symbol_h) if columns else [(0, mask.shape[1])]
    for ci, (x0, x1) in enumerate(spans):
        col = mask[:, x0:x1]
        for y0, y1 in find_lines(col):
            band = col[y0:y1]
            xs = _without_lone_stroke(np.nonzero(band.any(axis=0))[0], symbol_h)
            if band.sum() < 0.3 * symbol_h**2 or (y1 - y0) < 0.4 * symbol_h or not len(xs):
                continue  # a speck or a stray stroke, not a line of writing
            lx0, lx1 = x0 + int(xs[0]), x0 + int(xs[-1]) + 1
            pad = max(2, (y1 - y0) // 8)
            top, bottom = max(0, y0 - pad), min(ink.shape[0], y1 + pad)
            left, right = max(0, lx0 - pad), min(ink.shape[1], lx1 + pad)
            band_ink = ink[top:bottom, left:right]
            if float(np.where(band_ink > 0.25, band_ink, 0).sum()) < 4:
                continue  # too faint for the reader to find any writing in it
            quad = np.float32([[lx0, y0], [lx1, y0], [lx1, y1], [lx0, y1]])
            poly = _apply(to_user, quad)
            poly = np.clip(poly, 0, [W0 - 1, H0 - 1]).round().astype(int).tolist()
            lines.append(Line(band_ink, (lx0, y0, lx1, y1), poly, ci, (left, top)))
            if len(lines) > MAX_LINES:
                raise ImageError(f"too many lines to read as homework (more than {MAX_LINES})")
    sheet = None if corners is None else (corners / s).round(1).tolist()
    return Page(lines, round(skew, 2), sheet, (W0, H0), rgb, to_user, problems)


def _column_problems(ink: np.ndarray, raw: np.ndarray, mask: np.ndarray, symbol_h: float, to_user: np.ndarray,
                     size: tuple[int, int]) -> tuple[list[Column], np.ndarray]:
    """Column problems (``columns``) as rows of ink for the reader, and the mask without them (the
    rest of the page is cut into lines as before)."""
    rules, on_rules = find_rules(raw, symbol_h)
    if not rules:
        return [], mask
    # The ink again without the rules: a digit touching the rule made one long thin mark with it,
    # which the cleaning took for a ruling and dropped whole.
    unruled = np.where(on_rules, 0, ink).astype(np.float32)
    try:
        bare = _clean_mask(unruled)[0] & ~on_rules
    except NoDigitFound:
        return [], mask
    blocks: list[ColumnBlock] = find_column_problems(bare, rules, symbol_h)
    if not blocks:
        return [], mask
    W0, H0 = size
    rest = mask.copy()
    out = []

    def poly(x0, y0, x1, y1):
        quad = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return np.clip(_apply(to_user, quad), 0, [W0 - 1, H0 - 1]).round().astype(int).tolist()

    for b in blocks:
        rows = []
        for (x0, y0, x1, y1), own in zip(b.rows, b.pixels):
            # the row's own marks (a little wider, for their soft edges), not a neighbour's that reach in
            keep = cv2.dilate(own.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            pad = max(2, (y1 - y0) // 8)
            row = np.pad(np.where(keep, unruled[y0:y1, x0:x1], 0), pad).astype(np.float32)
            rows.append(Line(row, (x0, y0, x1, y1), poly(x0, y0, x1, y1), 0, (x0 - pad, y0 - pad)))
        X0, Y0, X1, Y1 = b.box
        for x0, y0, x1, y1 in b.carries:
            X0, Y0, X1, Y1 = min(X0, x0), min(Y0, y0), max(X1, x1), max(Y1, y1)
        rest[Y0 : Y1 + 1, X0 : X1 + 1] = False
        out.append(Column(rows, b.kinds, poly(X0, Y0, X1, Y1)))
    return out, rest
