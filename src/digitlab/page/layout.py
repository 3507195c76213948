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
from .bands import estimate_skew, find_columns, find_lines, rotation_matrix  # noqa: F401  (also the page's API)
from .columns import ColumnBlock, find_column_problems, find_rules
from .ink import clean_ink, page_darkness, widening
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
    return _analyse(rgb, small, s, corners, rulings, columns)[0]


def page_hypotheses(source, name: str = "image", max_side: int | None = None, rulings: bool = True,
                    columns: bool = True) -> Iterator[Page]:
    """``analyse_page``'s page first, then the same page read with each other plausible outline of
    the sheet (``sheet.sheet_outlines``) and with none, for a caller that can tell which reads best.
    A page on which column sums were found is followed by the same page read as lines only: exercises
    set in two columns can pass for one (a minus for its rule), and would take the lines with them.

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
            pages = _analyse(rgb, small, s, corners, rulings, columns, lines_only=True)
        except (NoDigitFound, ImageError) as exc:
            error = error or exc
            continue
        found = True
        yield from pages
    if not found and error is not None:
        raise error


def _analyse(rgb: np.ndarray, small: np.ndarray, s: float, corners: np.ndarray | None, rulings: bool,
             columns: bool, lines_only: bool = False) -> list[Page]:
    """The page with this outline: [its lines and column sums], and, with ``lines_only`` when column
    sums were found, the same page cut into lines only (flattening and cleaning done once)."""
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
    disc = widening(mask, symbol_h)
    if disc is not None:  # a fine pen on big writing: measured as paper's strokes from here on
        ink = cv2.dilate(ink, disc)
        raw = cv2.dilate(raw, disc) if rulings else ink
        mask, symbol_h = _clean_mask(ink)
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
    problems, rest = _column_problems(ink, raw, mask, symbol_h, to_user, (W0, H0)) if columns else ([], mask)
    sheet = None if corners is None else (corners / s).round(1).tolist()

    def page(mask: np.ndarray, problems: list) -> Page:
        lines = _cut_lines(ink, mask, symbol_h, to_user, (W0, H0), columns)
        return Page(lines, round(skew, 2), sheet, (W0, H0), rgb, to_user, problems)

    pages = [page(rest, problems)]
    if problems and lines_only:
        try:
            pages.append(page(mask, []))
        except ImageError:  # too many lines without the column sums: the first page stands
            pass
    return pages


def _cut_lines(ink: np.ndarray, mask: np.ndarray, symbol_h: float, to_user: np.ndarray, size: tuple[int, int],
               columns: bool) -> list[Line]:
    """The lines of writing in ``mask`` (column by column when ``columns``), each with its ink."""
    W0, H0 = size
    lines: list[Line] = []
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
    return lines


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
