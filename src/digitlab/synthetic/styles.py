"""Stroke-level style synthesis: the ways of writing digits that MNIST's writers seldom use.

MNIST's (American) writers draw a "1" as a bare bar, a "7" without a cross and a "9" with a
straight tail. Many European writers draw a "1" with a long up-stroke (a flag, sometimes a foot),
cross their "7", curl the tail of their "9" (some right back up) and leave their "4" open at the
top, its stem sometimes short under a tall, rounded left stroke; a model that never saw those
reads the 1 as 7, the 9 as 3 and the 4 as 6 or 9. Each style here adds the missing stroke to a
real digit at the width of that digit's own pen, so the rest of the writer's shape (slant,
wobble, thickness) is kept; the open 4, which cannot be made by adding a stroke to a closed
one, is redrawn in its writer's box, slant and pen.

Everything works on tight ink crops (float32 in [0, 1], 1 = ink), the currency of
``reader.glyphs``; :func:`stylised_mnist` wraps it for MNIST-format training sets.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..digits.preprocess import tight

WORK = 80  # working height in px: strokes are drawn at 4x MNIST's 20 px digit box
CURL_BACK = 0.3  # share of hooked 9s whose tail curls right back up (the 9 -> 3 errors left on other writers)


def _upscale(ink: np.ndarray, pad: tuple[float, float, float, float]) -> np.ndarray:
    """The crop scaled to WORK px high, padded by (top, bottom, left, right) fractions of WORK."""
    h, w = ink.shape
    scale = WORK / max(h, 1)
    up = cv2.resize(ink.astype(np.float32), (max(1, round(w * scale)), WORK), interpolation=cv2.INTER_CUBIC)
    t, b, l, r = (int(round(p * WORK)) for p in pad)
    return np.pad(np.clip(up, 0, 1), ((t, b), (l, r)))


def _pen_width(up: np.ndarray) -> int:
    """The stroke width of the writer's pen (px at WORK scale), from the distance transform."""
    mask = (up > 0.4).astype(np.uint8)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    inside = dist[dist > 0]
    return max(2, int(round(2 * float(np.percentile(inside, 90))))) if inside.size else 4


def _axis(points: np.ndarray) -> np.ndarray:
    """Unit principal axis of (N, 2) xy points, pointing down the page (+y)."""
    centred = points - points.mean(0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    v = vecs[:, -1]
    return v if v[1] >= 0 else -v


def _bezier(p0, p1, p2, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _draw(up: np.ndarray, curve: np.ndarray, width: int) -> np.ndarray:
    """``up`` with the polyline ``curve`` drawn in the same pen (anti-aliased, soft edge like a scan)."""
    layer = np.zeros_like(up)
    pts = np.round(curve * 16).astype(np.int32).reshape(-1, 1, 2)  # 4 fractional bits
    cv2.polylines(layer, [pts], False, 1.0, thickness=width, lineType=cv2.LINE_AA, shift=4)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.6, width / 5))
    return np.maximum(up, np.clip(layer * 1.15, 0, 1))


def _points(up: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(up > 0.4)
    return np.stack([xs, ys], 1).astype(np.float64)


def flag_one(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A "1" with the continental up-stroke: from the top of the bar, down to the left (and sometimes a foot)."""
    up = _upscale(ink, (0.05, 0.12, 0.7, 0.3))
    pts = _points(up)
    if len(pts) < 10:
        return ink
    v = _axis(pts)
    proj = pts @ v
    top = pts[proj <= np.percentile(proj, 3)].mean(0)
    bottom = pts[proj >= np.percentile(proj, 97)].mean(0)
    height = float(np.linalg.norm(bottom - top))
    width = _pen_width(up)
    # Steeper than a 7's bar (25-50 degrees off the bar, not 70-100) and shorter: with flags up to
    # 58 degrees and half the bar, MNIST test 7s with a short bar were read as 1 (9 of 1,028, was 2).
    angle = np.arctan2(v[1], v[0]) + np.radians(rng.uniform(25, 50))
    length = height * rng.uniform(0.2, 0.45)
    end = top + length * np.array([np.cos(angle), np.sin(angle)])
    bow = rng.uniform(-0.12, 0.12) * length * np.array([-np.sin(angle), np.cos(angle)])
    out = _draw(up, _bezier(top, (top + end) / 2 + bow, end), width)
    if rng.random() < 0.2:  # a foot: a short bar across the bottom
        half = height * rng.uniform(0.15, 0.25)
        tilt = np.radians(rng.uniform(-6, 6))
        d = half * np.array([np.cos(tilt), np.sin(tilt)])
        out = _draw(out, np.stack([bottom - d, bottom + d]), width)
    return tight(out)


def cross_seven(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A "7" with a short bar across the middle of its stem."""
    up = _upscale(ink, (0.05, 0.05, 0.25, 0.25))
    pts = _points(up)
    if len(pts) < 10:
        return ink
    y0, y1 = pts[:, 1].min(), pts[:, 1].max()
    y = y0 + (y1 - y0) * rng.uniform(0.45, 0.62)
    row = pts[np.abs(pts[:, 1] - y) <= 2]
    if len(row) == 0:
        return ink
    x = float(np.median(row[:, 0]))
    glyph_w = pts[:, 0].max() - pts[:, 0].min()
    half = max(glyph_w, 0.3 * (y1 - y0)) * rng.uniform(0.18, 0.32)
    tilt = np.radians(rng.uniform(-10, 6))
    d = half * np.array([np.cos(tilt), np.sin(tilt)])
    centre = np.array([x + rng.uniform(-0.2, 0.2) * half, y])
    return tight(_draw(up, np.stack([centre - d, centre + d]), _pen_width(up)))


def hook_nine(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A "9" whose tail curls to the left at the bottom (the bowl of a 3's lower half), some right back up."""
    up = _upscale(ink, (0.05, 0.2, 0.45, 0.1))
    pts = _points(up)
    if len(pts) < 10:
        return ink
    y0, y1 = pts[:, 1].min(), pts[:, 1].max()
    height = y1 - y0
    low = pts[pts[:, 1] >= y0 + 0.6 * height]
    if len(low) < 5:
        return ink
    d = _axis(low)
    end = pts[pts[:, 1] >= y1 - 0.04 * height - 1].mean(0)
    size = height * rng.uniform(0.18, 0.38)
    p1 = end + d * size * rng.uniform(0.3, 0.7)  # the tail goes on a little, then turns
    if rng.random() < CURL_BACK:  # ... and curls right back up, under the bowl
        low = p1 + np.array([-size * rng.uniform(0.6, 1.1), size * rng.uniform(0.0, 0.2)])
        turn = (p1 + low) / 2
        back = low + np.array([-size * rng.uniform(0.0, 0.3), -size * rng.uniform(0.6, 1.2)])
        curve = np.concatenate([_bezier(end, p1, turn), _bezier(turn, low, back)])
        return tight(_draw(up, curve, _pen_width(up)))
    p2 = end + np.array([-size * rng.uniform(0.8, 1.4), -size * rng.uniform(-0.1, 0.6)])
    return tight(_draw(up, _bezier(end, p1, p2), _pen_width(up)))


def _round_corner(a, corner, b, r: float, n: int = 16) -> np.ndarray:
    """The polyline a -> corner -> b with the corner rounded off over a share ``r`` of each leg."""
    if r <= 0:
        return np.stack([a, corner, b])
    p = corner + (a - corner) * r
    q = corner + (b - corner) * r
    return np.concatenate([np.stack([a]), _bezier(p, corner, q, n), np.stack([b])])


def open_four(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A "4" with an open top: a left stroke down to the bar, the bar across, a separate stem.

    Redrawn in the box, slant and pen of the writer's own 4. The left stroke is straight, rounded
    into the bar (the "u" of a cursive 4) or bent in at the top towards the stem; it never meets
    the stem, which is what sets it apart from a 9 with an open loop. The stem reaches above or
    below the left stroke's top, or (about a third) starts only a little above the bar under a
    tall, rounded left stroke; the bar may stop at the stem or run past it.
    """
    up = _upscale(ink, (0.08, 0.08, 0.4, 0.4))
    pts = _points(up)
    if len(pts) < 10:
        return ink
    width = _pen_width(up)
    x0, x1 = pts[:, 0].min(), pts[:, 0].max()
    y0, y1 = pts[:, 1].min(), pts[:, 1].max()
    height = y1 - y0
    if height < 8:
        return ink
    wide = float(np.clip(x1 - x0, 0.45 * height, 0.9 * height))
    cx = (x0 + x1) / 2
    v = _axis(pts)  # a 4's stem dominates its ink: its axis is the writer's slant
    shear = float(np.clip(v[0] / max(v[1], 1e-3), -0.4, 0.4))
    left = cx - wide / 2
    stem_x = left + wide * rng.uniform(0.62, 0.82)
    bar_y = y0 + height * rng.uniform(0.5, 0.72)
    gap = max(2.0 * width, 0.15 * wide)  # the open top: the left stroke stays clear of the stem
    top_l = np.array([left + wide * rng.uniform(0.0, 0.2), y0 + height * rng.uniform(0.0, 0.22)])
    corner = np.array([left + wide * rng.uniform(-0.05, 0.15), bar_y])
    end_x = stem_x + (0 if rng.random() < 0.25 else wide * rng.uniform(0.08, 0.3))
    bar_end = np.array([end_x, bar_y - height * rng.uniform(-0.02, 0.08)])
    style = rng.random()
    if style < 0.3:  # bent in at the top, towards the stem (a 9's open loop, but open)
        top_l = np.array([min(stem_x - gap, left + wide * rng.uniform(0.25, 0.5)), y0 + height * rng.uniform(0.0, 0.12)])
        ctrl = np.array([left - wide * rng.uniform(0.0, 0.15), y0 + height * rng.uniform(0.2, 0.35)])
        stroke = np.concatenate([_bezier(top_l, ctrl, corner), np.stack([bar_end])])
    else:
        stroke = _round_corner(top_l, corner, bar_end, rng.uniform(0.0, 0.6) if style < 0.75 else 0.0)
    stem_top = np.array([stem_x + wide * rng.uniform(-0.05, 0.05), y0 + height * rng.uniform(-0.05, 0.2)])
    if rng.random() < 0.3:  # a short stem under a tall, rounded left stroke: the 4 other models read as 6
        top_l = np.array([left + wide * rng.uniform(0.0, 0.2), y0])
        bar_end = np.array([stem_x + wide * rng.uniform(0.0, 0.1), bar_y - height * rng.uniform(0.0, 0.1)])
        stroke = _round_corner(top_l, corner, bar_end, rng.uniform(0.3, 0.8))
        stem_top[1] = y0 + height * rng.uniform(0.3, 0.5)
    stem_bottom = np.array([stem_x + wide * rng.uniform(-0.08, 0.04), y1])
    bow = np.array([wide * rng.uniform(-0.06, 0.06), 0.0])
    stem = _bezier(stem_top, (stem_top + stem_bottom) / 2 + bow, stem_bottom)
    mid = (y0 + y1) / 2
    out = np.zeros_like(up)
    for curve in (stroke, stem):
        curve = curve.copy()
        curve[:, 0] += shear * (curve[:, 1] - mid)
        out = _draw(out, curve, width)
    return tight(out)


STYLES = {1: flag_one, 4: open_four, 7: cross_seven, 9: hook_nine}
# Share of each class's digits that get a stylised copy (a flagged 1 is the commonest miss).
DEFAULT_SHARE = {1: 0.5, 4: 0.3, 7: 0.3, 9: 0.4}


def stylise(ink: np.ndarray, digit: int, rng: np.random.Generator) -> np.ndarray:
    """``ink`` (a tight crop of ``digit``) drawn in another style, or unchanged if ``digit`` has none."""
    style = STYLES.get(int(digit))
    return style(ink, rng) if style else ink


def stylised_mnist(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   share: dict[int, float] | None = None, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Stylised copies of a share of each styled class of an MNIST-format set (N,28,28 uint8).

    Returns only the new images (to be added to the originals), made as MNIST was: longest side
    20 px, centred by centre of mass in 28x28.
    """
    from ..digits.preprocess import fit_to_mnist

    share = DEFAULT_SHARE if share is None else share
    out_x, out_y = [], []
    for digit, frac in share.items():
        idx = np.flatnonzero(labels == digit)
        idx = idx[rng.random(len(idx)) < min(1.0, frac * scale)]
        for i in idx:
            crop = tight(images[i].astype(np.float32) / 255)
            if crop.size <= 1:
                continue
            styled = stylise(crop, digit, rng)
            out_x.append(np.round(fit_to_mnist(styled) * 255).astype(np.uint8))
            out_y.append(digit)
    if not out_x:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, labels.dtype)
    return np.stack(out_x), np.asarray(out_y, labels.dtype)
