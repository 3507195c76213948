"""The ink of each answer box in a flattened worksheet photo: its border found, not assumed; the
writing that runs over its edge kept, the border and the sheet's print left out.

``grade`` marks what is read from these crops.
"""

from __future__ import annotations

import cv2
import numpy as np

from .layout import BOX_LINE_MM, PNG_DPI

SEARCH_MM = 1.5  # the printed border is looked for this far either side of where the key puts it


def _edge(profile: np.ndarray) -> tuple[int, int] | None:
    """(first, last) index of the printed line in a darkness profile across one edge, or None."""
    if len(profile) == 0:
        return None
    c = int(np.argmax(profile))
    peak = float(profile[c])
    if peak < 0.2:  # no line there (faint print, or a box drawn without border)
        return None
    on = profile >= 0.45 * peak
    a = b = c
    while a > 0 and on[a - 1]:
        a -= 1
    while b < len(profile) - 1 and on[b + 1]:
        b += 1
    return a, b


def box_ink(dark: np.ndarray, box_mm, dpi: float = PNG_DPI, search_mm: float = SEARCH_MM,
            printed=None) -> tuple[np.ndarray, bool]:
    """(ink map of the box's inside, 1 = ink; whether there is writing in it).

    The printed border is found, not assumed: the photo's rectification is good to about a
    millimetre, and a fixed inset either leaves a sliver of border (read as a "1") or cuts off a
    digit written close to it. Along each edge, the line is the row or column that is dark along
    (nearly) the whole side - a pupil's "1" beside it is dark over part of it only - and the crop
    starts just inside it.
    """
    s = dpi / 25.4
    x0, y0, x1, y1 = (v * s for v in box_mm)
    m = search_mm * s
    H, W = dark.shape
    top, left = max(0, round(y0 - m)), max(0, round(x0 - m))
    region = dark[top : min(H, round(y1 + m)), left : min(W, round(x1 + m))]
    ex0, ey0, ex1, ey1 = x0 - left, y0 - top, x1 - left, y1 - top  # expected lines in the region
    h, w = region.shape
    if h < 4 or w < 4:
        return np.zeros((max(h, 1), max(w, 1)), np.float32), False
    pad = max(1, round(0.25 * s))  # clearance inside the line (its blurred edge)
    fallback = BOX_LINE_MM * s + pad

    def side(prof: np.ndarray, lo: float, inward: int) -> int:
        a = max(0, round(lo - m))
        found = _edge(prof[a : round(lo + m) + 1])
        if found is None:
            return round(lo + inward * fallback)
        return a + (found[1] + pad if inward > 0 else found[0] - pad)

    # The top and bottom lines first (a row of digits is dark over part of a row only), then the
    # sides between them: a column is the border when it is dark along ~all of that height, which
    # a pupil's "1" - however tall - is not.
    mid = region[:, max(0, round(ex0 + m)) : max(1, round(ex1 - m))]
    rows = np.quantile(mid, 0.2, axis=1)
    rt, rb = side(rows, ey0, +1), side(rows, ey1, -1) + 1
    cols = np.quantile(region[max(0, rt) : max(1, rb)], 0.1, axis=0)
    cl, cr = side(cols, ex0, +1), side(cols, ex1, -1) + 1
    crop = region[max(0, rt) : max(0, rb), max(0, cl) : max(0, cr)]
    if crop.shape[0] < 4 or crop.shape[1] < 4:
        return np.zeros((4, 4), np.float32), False
    d = np.clip(crop - 0.1, 0, 1)
    mask = (d > 0.25).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    h = d.shape[0]
    # A stroke of a digit is tall or big; paper grain, JPEG noise and a pencil dot are not.
    keep = (stats[:, cv2.CC_STAT_HEIGHT] >= 0.22 * h) | (stats[:, cv2.CC_STAT_AREA] >= 0.012 * d.size)
    keep[0] = False
    # A sliver of the border itself (its blurred edge, a line a pixel off true) along a side of the
    # crop is no writing: read, it is a "1" after the answer, or in a blank box.
    x, y, cw, ch = (stats[:, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    W = d.shape[1]
    keep &= ~((cw <= 3) & (ch >= 0.5 * h) & ((x <= 1) | (x + cw >= W - 1)))
    keep &= ~((ch <= 3) & (cw >= 0.5 * W) & ((y <= 1) | (y + ch >= h - 1)))
    at = top + max(0, rt), left + max(0, cl)  # the crop's corner in the page
    if not keep.any() or stats[keep, cv2.CC_STAT_AREA].sum() < 0.004 * d.size:
        # Nothing inside but maybe the sliver of an answer written over the border, mostly outside.
        whole = None if printed is None else _with_overflow(dark, np.zeros_like(d), mask > 0, *at, printed)
        if whole is None or whole.shape == d.shape or (whole > 0.25).any(axis=1).sum() < 0.4 * h:
            return np.zeros_like(d), False
        d = whole
    else:
        near = cv2.dilate(keep[labels].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        d = np.where(near, d, 0)
        if printed is not None:
            d = _with_overflow(dark, d, keep[labels], *at, printed)
    hi = float(np.percentile(d[d > 0.25], 95))
    return np.clip(d / max(hi, 0.3), 0, 1).astype(np.float32), True


def _with_overflow(dark: np.ndarray, d: np.ndarray, inside: np.ndarray, y0: int, x0: int, printed) -> np.ndarray:
    """The box's ink ``d`` (its writing ``inside``, at ``y0, x0`` in ``dark``) with the writing that
    carries on past its left or right border: a pupil's "14" begun left of a small box, or its last
    digit written over the edge, is read whole instead of as "4".

    When there is ink near a side inside the box, the ink beside the box that joins it (a gap
    narrower than a digit's spacing) is kept, less the box's border (long straight runs in the photo)
    and the sheet's printed text (``printed()``: a mask in ``dark``'s pixels, placed on the photo by
    ``_placed``), so the question's "=" stays out. A stroke that runs along the border
    itself (a "1" written on it) loses what lies on the line."""
    bh, bw = d.shape
    reach = round(0.9 * bh)  # most of a digit either side
    H, W = dark.shape
    wx0, wx1 = max(0, x0 - reach), min(W, x0 + bw + reach)
    wy0, wy1 = max(0, y0 - round(0.15 * bh)), min(H, y0 + bh + round(0.15 * bh))
    iy, ix = y0 - wy0, x0 - wx0
    win = np.clip(dark[wy0:wy1, wx0:wx1] - 0.1, 0, 1)
    raw = (win > 0.25).astype(np.uint8)
    # a side to look past: there is ink near it inside the box (the box's writing, or the sliver of
    # a digit that straddles the border, too small to be kept as writing on its own)
    near, rows = max(8, round(0.12 * bh)), slice(iy + 2, iy + bh - 2)
    to_left, to_right = bool(raw[rows, ix : ix + near].any()), bool(raw[rows, ix + bw - near : ix + bw].any())
    if not (to_left or to_right):
        return d
    grow = np.ones((3, 3), np.uint8)  # the box's border, as the photo shows it
    across = cv2.dilate(cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((1, max(3, round(0.5 * bw))), np.uint8)), grow) > 0
    upright = cv2.dilate(cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((max(3, round(0.7 * bh)), 1), np.uint8)), grow) > 0
    rules = across | upright
    print_ = _placed(printed(), raw, wy0, wy1, wx0, wx1)
    ink = (raw.astype(bool) & ~rules & ~print_).astype(np.uint8)
    ink[iy : iy + bh, ix : ix + bw] = raw[iy : iy + bh, ix : ix + bw] | inside
    # A stroke that crosses the border or the print has lost the piece on it: bridged where there is
    # writing on both sides (a "0" over the right border read as "()", or "11", without it).
    span = max(5, round(0.12 * bh))  # the border's width in the photo, with its dilation
    ink = _bridged(ink, raw & upright, (1, span))
    ink = _bridged(ink, raw & across, (span, 1))
    wide = 2 * span + 3  # across a printed stroke, with its pixel of margin either side
    ink = _bridged(_bridged(ink, raw & print_, (1, wide)), raw & print_, (wide, 1))
    # a gap as wide as the border with its margin of error, or as digits leave between them
    joined = cv2.dilate(ink, np.ones((5, max(7, round(0.3 * bh))), np.uint8))
    _, labels = cv2.connectedComponents(joined, connectivity=8)
    hit = np.unique(labels[iy : iy + bh, ix : ix + bw][ink[iy : iy + bh, ix : ix + bw] > 0])
    keep = np.isin(labels, hit[hit > 0]) & (ink > 0)
    keep[:, ix : ix + bw] = False  # inside, the box's own reading of its ink stands
    keep[:, : ix] &= to_left
    keep[:, ix + bw :] &= to_right
    if keep.sum() < 0.01 * d.size:
        return d  # nothing worth the name outside: the writing only came near the border
    whole = np.zeros(win.shape, np.float32)
    whole[iy : iy + bh, ix : ix + bw] = d
    whole = np.where(keep, win, whole)
    rows, cols = (np.nonzero(whole.max(axis=k) > 0.25)[0] for k in (1, 0))
    return whole[max(0, rows[0] - 3) : rows[-1] + 4, max(0, cols[0] - 3) : cols[-1] + 4]


SHIFT = 4  # px: the rectification's error around a box, within which the print is placed


def _placed(printed: np.ndarray, raw: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """The sheet's print in the window ``y0:y1, x0:x1`` of the photo, moved by the few pixels that put
    it best on the photo's ink there, and widened by a pixel: a pen stroke over the print loses only
    what lies on the print itself (with a fixed margin for the error, a "2" begun over the "=" lost
    its top), and the bridging puts that back."""
    H, W = printed.shape
    k = SHIFT
    big = np.zeros((y1 - y0 + 2 * k, x1 - x0 + 2 * k), bool)
    a, b, c, d = max(0, y0 - k), min(H, y1 + k), max(0, x0 - k), min(W, x1 + k)
    big[a - (y0 - k) : b - (y0 - k), c - (x0 - k) : d - (x0 - k)] = printed[a:b, c:d]
    if not big.any():
        return np.zeros(raw.shape, bool)
    # the ink the print covers at each shift: a correlation of two 0/1 maps
    hits = cv2.matchTemplate(big.astype(np.float32), (raw > 0).astype(np.float32), cv2.TM_CCORR)
    dy, dx = np.unravel_index(int(np.argmax(hits)), hits.shape)
    here = big[dy : dy + raw.shape[0], dx : dx + raw.shape[1]].astype(np.uint8)
    return cv2.dilate(here, np.ones((3, 3), np.uint8)) > 0


def _bridged(ink: np.ndarray, gaps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``ink`` with the pixels of ``gaps`` that a closing by a ``size`` line fills: a stroke's piece
    taken out with a line it crossed, put back where the stroke carries on both sides of it."""
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones(size, np.uint8)) > 0
    return ink | (closed & (gaps > 0)).astype(np.uint8)
