"""Tell pen from paper: even out the light, then remove rulings and grid squares.

- **Light**: the paper's own brightness is estimated per colour channel by closing over the
  strokes (they are thin), and the image is divided by it, so shadows and gradients vanish.
- **Colour**: darkness is taken from the *darkest* channel, so a blue pen is as dark as a black
  one while light-blue or grey rulings stay light.
- **Frames**: a crop cut along a table's or a form's cell keeps the cell's borders; they are fitted
  as straight lines and erased, the digits touching them kept (``remove_frame``).
- **Rulings**: long thin straight runs (longer than any handwritten stroke) are found by
  morphological openings along rows and columns and subtracted; ink lies over a ruling, so where a
  stroke crosses one or runs along it, what is clearly darker than the ruling stays as it is.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..digits.preprocess import NoDigitFound


def flatten_light(rgb: np.ndarray, stroke_px: float = 6.0) -> np.ndarray:
    """Divide each channel by the paper brightness around it (a closing wider than strokes)."""
    h, w = rgb.shape[:2]
    s = min(1.0, 400 / max(h, w))
    small = cv2.resize(rgb, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    k = max(3, int(3 * stroke_px * s + 3) | 1)
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    bg = cv2.GaussianBlur(bg, (0, 0), k)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(rgb / np.maximum(bg, 0.05), 0, 1)


def darkness(rgb: np.ndarray) -> np.ndarray:
    """Ink evidence in [0,1] from the darkest channel: a blue pen counts as much as a black one."""
    return (1.0 - np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])).astype(np.float32)


def dark_on_light(rgb: np.ndarray) -> np.ndarray:
    """Invert light writing on a dark ground (a board, an inverted scan).

    A dark border alone is not enough: a page photographed in dim light or in a shadow is dark all
    over, yet its writing is darker still. So the writing's own sign decides: the strongest local
    departures from the ground (a median far wider than a stroke) are lighter than it on a board.
    """
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    # Light ground at the edges, or over most of the picture: a crop cut along a table's or a box's
    # borders has dark edges round light paper.
    if max(np.median(border.mean(axis=1)), np.median(rgb.mean(axis=2))) >= 0.45:
        return rgb
    h, w = rgb.shape[:2]
    s = min(1.0, 400 / max(h, w))
    grey = cv2.resize(rgb.mean(axis=2).astype(np.float32), (max(1, int(w * s)), max(1, int(h * s))),
                      interpolation=cv2.INTER_AREA)
    g8 = (np.clip(grey, 0, 1) * 255).astype(np.uint8)
    k = max(3, (min(g8.shape) // 8) | 1)
    resid = grey - cv2.medianBlur(g8, k).astype(np.float32) / 255
    lighter, darker = np.percentile(resid, 99.5), -np.percentile(resid, 0.5)
    return 1.0 - rgb if lighter >= darker else rgb


def remove_rulings(d: np.ndarray, min_len: int, min_span: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Subtract rulings: straight runs longer than ``min_len`` that belong to a line spanning at
    least ``min_span`` of the page and four times ``min_len`` (a pen's bar of a 7 or a minus sign
    never does).

    A second pass widens the runs by a pixel across their direction: a fine ruling a pixel thick
    that drifts by a pixel along ``min_len`` (a page not quite flat, a flattening not quite right)
    breaks a plain opening. It keeps only lines the first pass did not take, so that rulings taken
    cleanly do not cost the strokes that cross them a wider band.

    Returns (cleaned darkness, the rulings' darkness that was taken away).
    """
    found = _rulings(d, min_len, min_span, widen=False)
    found = np.maximum(found, _rulings(d, min_len, min_span, widen=True, covered=found > 0))
    return np.clip(d - found, 0, 1), found


def _rulings(d: np.ndarray, min_len: int, min_span: float, widen: bool, covered: np.ndarray | None = None) -> np.ndarray:
    """Rulings' darkness; with ``covered``, only lines mostly outside it."""
    found = np.zeros_like(d)
    grow = np.ones((3, 3), np.uint8)
    for axis, shape in ((1, (min_len, 1)), (0, (1, min_len))):
        src = cv2.dilate(d, np.ones((3, 1) if axis == 1 else (1, 3), np.uint8)) if widen else d
        opened = cv2.morphologyEx(src, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, shape))
        # A slightly tilted ruling survives the opening as a staircase of runs; growing them by a
        # pixel joins the steps back into one long line.
        on = (opened > 0.1).astype(np.uint8)
        runs = cv2.dilate(on, grow)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(runs, connectivity=8)
        extent = stats[:, cv2.CC_STAT_WIDTH if axis == 1 else cv2.CC_STAT_HEIGHT]
        thickness = np.bincount(labels.ravel(), weights=on.ravel(), minlength=n) / np.maximum(extent, 1)
        # Long for the page *and* for the writing (in a small crop of a single number, a 7's bar or
        # a 1's stem spans a good part of the image), and thin as printed lines are: a marker's or
        # a canvas brush's straight stroke is thick.
        keep = (extent >= max(min_span * d.shape[axis], 4 * min_len)) & \
            (thickness <= max(4.0, 0.006 * max(d.shape)) + 2 * widen)
        keep[0] = False
        if covered is not None and keep.any():
            seen = np.bincount(labels.ravel(), weights=(on & covered).ravel(), minlength=n)
            keep &= seen < 0.5 * np.bincount(labels.ravel(), weights=on.ravel(), minlength=n)
        if keep.any():
            # A ruling is about as dark all along, and ink lies over it: where a stroke crosses a
            # ruling, or runs along it for longer than ``min_len`` (a 1's stem on a squared page's
            # line, which the opening takes whole), what is clearly darker than the ruling is the
            # stroke's and stays as it is; elsewhere a line takes no more than its own darkness.
            level = (np.bincount(labels.ravel(), weights=(opened * on).ravel(), minlength=n) /
                     np.maximum(np.bincount(labels.ravel(), weights=on.ravel(), minlength=n), 1))[labels]
            taken = np.where(d > level + 0.15, 0, np.minimum(cv2.dilate(opened, grow), level + 0.05))
            # Widened by a pixel so the rulings' anti-aliased edges go too.
            found = np.maximum(found, np.where(keep[labels], taken, 0))
    return found


def page_darkness(rgb: np.ndarray) -> np.ndarray:
    """Ink evidence of a page photo: dark on light, light evened out, darkest channel."""
    return darkness(flatten_light(dark_on_light(rgb)))


def clean_ink(d: np.ndarray, rulings: bool = True) -> np.ndarray:
    """An upright page's darkness -> ink map (1 = ink): rulings removed, paper texture dropped, stretched."""
    if rulings:
        d, _ = remove_rulings(d, min_len=max(25, int(max(d.shape) / 22)))
    # Faint paper texture and JPEG noise are not ink.
    d = np.clip(d - 0.08, 0, 1)
    hi = float(np.percentile(d, 99.7))
    if hi < 0.1:
        raise NoDigitFound("no writing found on the page")
    return np.clip(d / max(hi, 0.35), 0, 1).astype(np.float32)


# On paper a pen's stroke is 6-16% of a symbol's height (pendigits' lines as the benchmarks draw them:
# never under 5.7% in 300); a pen tablet's export or a big scan of a fine pen draws it under 2% (a 2 px
# line on digits 300 px high). What the page and the reader measure in ink (specks, a band's amount of
# writing, a line at 48 px) assumes paper's.
THIN = 0.04  # stroke width / symbol height below which strokes are thickened
THICK = 0.08  # ... to this


def stroke_width(mask: np.ndarray) -> float:
    """The strokes' typical width in px: twice the median distance to the paper along their middle
    (the ridge of the distance transform), less the middle pixel's own half."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    if not m.any():
        return 0.0
    d = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    ridge = (d > 0) & (d >= cv2.dilate(d, np.ones((3, 3), np.uint8)))
    return float(2 * np.median(d[ridge]) - 1)


def widening(mask: np.ndarray, symbol_h: float) -> np.ndarray | None:
    """The disc that widens strokes thinner than ``THIN`` of ``symbol_h`` to ``THICK`` of it, or None
    when the strokes of ``mask`` are not that thin."""
    width = stroke_width(mask)
    if not width or width >= THIN * symbol_h:
        return None
    k = int(round(THICK * symbol_h - width)) | 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def thickened(ink: np.ndarray, symbol_h: float, mask: np.ndarray | None = None) -> np.ndarray:
    """``ink`` with thin strokes widened (``widening``; a grey dilation: the stroke's own darkness, a
    disc's width more); as it is otherwise."""
    disc = widening(ink > 0.3 if mask is None else mask, symbol_h)
    return ink if disc is None else cv2.dilate(ink, disc)


def whole_image_ink(rgb: np.ndarray, margin: int = 8) -> np.ndarray:
    """An image that *is* one line of writing (a tight crop, a box cut from a form) as an ink map
    (1 = ink), with ``margin`` px of paper around it.

    Page analysis evens out the light with a closing wider than a stroke, which a crop whose strokes
    fill much of it defeats; here the paper is simply the image's lighter half and the ink what is
    much darker than it.
    """
    d = darkness(dark_on_light(rgb))
    paper, dark = float(np.percentile(d, 50)), float(np.percentile(d, 99.5))
    if dark - paper < 0.1:
        raise NoDigitFound("no writing found in the image")
    # Not widened when thin (``widening``): here a squared page's grid is still in the ink, and on
    # validation numbers on squared paper widening cost 2 points (96.7% to 94.7% read exactly).
    ink = np.clip((d - paper - 0.08) / max(dark - paper - 0.08, 0.1), 0, 1).astype(np.float32)
    return np.pad(remove_frame(ink), margin)


def remove_frame(ink: np.ndarray, edge: float = 0.25, cover: float = 0.85, faint: float = 0.08) -> np.ndarray:
    """A crop's ink map without the borders of the cell it was cut from (a register's row number, a
    form's box): straight lines near both the crop's top and its bottom along which ink runs almost
    all the way (``cover``), and, only between such lines, the like near its left or right (a tight
    crop's "1" runs its whole height too, but never between two rules) and the separators of a comb
    of equal boxes, unbroken from the top line to the bottom one.

    Each line is fitted as a straight line of its own thickness (its thinnest tenth of rows: where
    a digit touches it the run is wider), and only those pixels go: a digit that merely touches a
    border keeps its stroke.
    """
    on = ink > faint
    ys, xs = np.nonzero(on)
    if not len(ys):
        return ink
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if x1 - x0 < 0.5 * (y1 - y0):
        return ink  # narrower than any cell: a lone "1", whose every row is "covered"
    erase = np.zeros(on.shape, bool)
    for axis in (0, 1):  # 0: rows (the top and bottom borders), 1: columns (the sides)
        # A 3-px window along the line tolerates a border tilted by a pixel or two.
        grown = cv2.dilate(on.astype(np.uint8), np.ones((3, 1) if axis == 0 else (1, 3), np.uint8))
        cover_of = grown[y0:y1, x0:x1].mean(1 if axis == 0 else 0)
        n, off = (y1 - y0, y0) if axis == 0 else (x1 - x0, x0)
        full = np.flatnonzero(cover_of >= cover)
        # A ruling may cross a wide crop at a slant, so rows are looked for in its outer quarters;
        # a cell's side is the crop's edge itself (a "1" may stand a few pixels inside it).
        near = edge * n if axis == 0 else max(5.0, 0.06 * n)
        first_side, second_side = full[full < near], full[full >= n - near]
        between: list[int] = []
        if axis == 0:
            if not (len(first_side) and len(second_side)):
                # Both the top and the bottom, as a cell or a ruled register has them: a 7's bar or
                # a 2's foot is a straight line across a tight crop too, but only along one side.
                return ink
            top, bottom = int(first_side.max()) + off + 1, int(second_side.min()) + off - 1
        else:
            # A form's comb of boxes, one digit to a box: a separator runs unbroken from the top
            # border to the bottom one, which a digit, smaller than its box, does not ...
            inside = grown[top + 1 : bottom, x0:x1]
            seps = _runs_of([int(i) for i in np.flatnonzero(inside.mean(0) >= 0.97)]) if len(inside) else []
            seps = [(a, b) for a, b in seps if near <= a and b < n - near]
            # ... and the boxes are as wide as each other: a "1" that happens to touch both borders
            # does not cut its cell into equal boxes.
            if seps and len(first_side) and len(second_side):
                centres = [first_side.mean(), *[(a + b) / 2 for a, b in seps], second_side.mean()]
                gaps = np.diff(centres)
                if np.abs(gaps - np.median(gaps)).max() <= 0.2 * np.median(gaps):
                    between = [i for a, b in seps for i in range(a, b + 1)]
        for first, last in _runs_of(sorted({int(i) for i in (*first_side, *second_side, *between)})):
            a, b = max(0, first + off - 2), last + off + 3
            erase |= _straight_line(on.T, a, b).T if axis == 0 else _straight_line(on, a, b)
    if not erase.any():
        return ink
    out = ink.copy()
    out[erase] = 0
    return out


def _runs_of(idx: list[int]) -> list[tuple[int, int]]:
    """Consecutive integers grouped: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(a, b) for a, b in runs]


def _straight_line(on: np.ndarray, a: int, b: int) -> np.ndarray:
    """The pixels of a straight, roughly vertical line running down ``on`` between columns a and b."""
    h, w = on.shape
    rows, centres, widths = [], [], []
    guess = (a + b) / 2
    for y in range(h):
        row = on[y, a:b]
        if not row.any():
            continue
        runs = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0])).reshape(-1, 2)
        mid = runs.mean(1) - 0.5 + a
        k = int(np.argmin(abs(mid - guess)))
        rows.append(y)
        centres.append(mid[k])
        widths.append(runs[k, 1] - runs[k, 0])
    if len(rows) < 0.5 * h:
        return np.zeros_like(on)
    rows_, centres_, widths_ = (np.asarray(v, np.float32) for v in (rows, centres, widths))
    t = float(np.percentile(widths_, 10))
    alone = widths_ <= t + 1
    slope, at0 = np.polyfit(rows_[alone], centres_[alone], 1) if alone.sum() >= 2 else (0.0, float(np.median(centres_)))
    # Only the band's columns (and a pixel or three beyond): a large image's full grid would not do.
    lo, hi = max(0, a - 3), min(w, b + 3)
    near_line = np.abs(np.arange(lo, hi)[None] - (at0 + slope * np.arange(h)[:, None])) <= t / 2 + 0.75
    out = np.zeros_like(on)
    out[:, lo:hi] = on[:, lo:hi] & near_line
    return out
