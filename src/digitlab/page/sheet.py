"""Find the sheet of paper in a photo and flatten its perspective (the document-scanner step).

The sheet is the largest bright, low-saturation region that clearly stands out from its
surroundings. Its outline is simplified to a quadrilateral; the homography maps it to an upright
rectangle with the sheet's own aspect ratio. When the paper fills the picture (a scan, a canvas
drawing, a close-up) no outline is found and the whole image is used.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

WORK_SIDE = 480  # px: the outline is found on a small copy; corners are scaled back


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise in image coordinates, starting near the left
    start = int(np.argmin(pts.sum(axis=1)))  # top-left has the smallest x + y
    return np.roll(pts, -start, axis=0)


def _quad_from_contour(contour: np.ndarray) -> np.ndarray | None:
    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
    if len(hull) >= 4:  # rounded or torn corners: the smallest rotated rectangle around it
        return cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)
    return None


def _small(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    return cv2.resize(rgb, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA), s


def _hsv(small: np.ndarray) -> np.ndarray:
    """The small copy (RGB, 0-1) as 8-bit HSV: hue 0-179, saturation and value 0-255."""
    return cv2.cvtColor((np.clip(small, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2HSV)


def _paperness(small: np.ndarray) -> np.ndarray:
    """Bright and nearly grey, with ink and rulings (thin) closed over: 0-255."""
    hsv = _hsv(small)
    paperness = hsv[..., 2].astype(np.float32) - 0.6 * hsv[..., 1].astype(np.float32)
    paperness = cv2.morphologyEx(paperness, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    return cv2.GaussianBlur(paperness, (5, 5), 0)


def _quad_from_mask(mask: np.ndarray, min_area: float, max_area: float) -> np.ndarray | None:
    """The largest bright region of ``mask`` as a quadrilateral, if it is sheet-like."""
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    biggest = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(biggest) / float(mask.size)
    if not min_area <= area <= max_area:
        return None
    quad = _quad_from_contour(biggest)
    if quad is None:
        return None
    # A sheet is convex and fills its quadrilateral; a blob of light is not.
    if cv2.contourArea(quad) <= 0 or cv2.contourArea(biggest) / cv2.contourArea(quad) < 0.85:
        return None
    return quad


def _otsu_quad(paperness: np.ndarray, min_area: float, max_area: float) -> np.ndarray | None:
    p8 = np.clip(paperness, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(p8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    inside, outside = p8[mask > 0], p8[mask == 0]
    if not len(inside) or not len(outside) or float(inside.mean()) - float(outside.mean()) < 40:
        return None  # nothing stands out from the paper: it fills the picture
    return _quad_from_mask(mask, min_area, max_area)


def _grey_quad(small: np.ndarray, min_area: float, max_area: float) -> np.ndarray | None:
    """The largest nearly grey region: a shadow darkens paper and table alike but leaves their
    colours, so on a wooden, beige or green table this is the sheet, lit or not."""
    sat = _hsv(small)[..., 1].astype(np.float32)
    greyness = cv2.morphologyEx(np.clip(255 - 3 * sat, 0, 255), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    return _otsu_quad(cv2.GaussianBlur(greyness, (5, 5), 0), min_area, max_area)


def _covers(big: np.ndarray, small_quad: np.ndarray, shape: tuple[int, int], factor: float = 1.15) -> bool:
    """Whether quadrilateral ``big`` holds nearly all of ``small_quad`` and is ``factor`` times larger."""
    if cv2.contourArea(big) < factor * cv2.contourArea(small_quad):
        return False
    a, b = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    cv2.fillPoly(a, [small_quad.astype(np.int32)], 1)
    cv2.fillPoly(b, [big.astype(np.int32)], 1)
    return (a & b).sum() >= 0.95 * a.sum()


def _outlines(small: np.ndarray, paperness: np.ndarray, min_area: float,
              max_area: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the outline to try first, the other of brightness and colour's outlines, or None).

    Brightness first; but when the nearly grey region holds the bright one and is clearly larger,
    a shadow has cut the bright region short (the shaded part of the sheet is no brighter than the
    table), and the grey one comes first."""
    bright = _otsu_quad(paperness, min_area, max_area)
    grey = _grey_quad(small, min_area, max_area)
    if bright is not None and grey is not None and _covers(grey, bright, small.shape[:2]):
        return grey, bright
    return bright, grey


def find_sheet(rgb: np.ndarray, min_area: float = 0.15, max_area: float = 0.93) -> np.ndarray | None:
    """Corners (4x2, TL TR BR BL, in ``rgb``'s pixels) of the sheet, or None if it fills the picture."""
    small, s = _small(rgb)
    quad = _outlines(small, _paperness(small), min_area, max_area)[0]
    return None if quad is None else order_corners(quad / s)


def sheet_outlines(rgb: np.ndarray, min_area: float = 0.15, max_area: float = 0.93) -> Iterator[np.ndarray | None]:
    """``find_sheet``'s outline (None: the whole picture) first, then, worked out only if asked for,
    other plausible outlines (corners as ``find_sheet``) and last None, for when the first is wrong
    (not when the sheet lies on a coloured table: ``_coloured_surround``).

    Brightness alone is fooled where the light is: a hard shadow across a pale desk splits the
    picture into a lit and a shaded part, and Otsu's threshold then finds the light, not the paper.
    So the paperness is also judged against its surroundings (divided by a blur a quarter of the
    picture wide, which a shadow's edge shifts but a sheet's edge does not), and the sheet is also
    looked for as the largest convex four-cornered outline among the picture's edges, and as the
    largest nearly grey region (``_grey_quad``; first when it holds the bright one, see ``_outlines``).
    """
    small, s = _small(rgb)
    paperness = _paperness(small)
    first, other = _outlines(small, paperness, min_area, max_area)
    yield None if first is None else order_corners(first / s)
    side = max(small.shape[:2])
    local = paperness / np.maximum(cv2.GaussianBlur(paperness, (0, 0), side / 4), 8.0)
    q = _otsu_quad(np.clip(local * 128, 0, 255), min_area, max_area)
    if q is not None:
        yield order_corners(q / s)
    grey = cv2.GaussianBlur(cv2.cvtColor((np.clip(small, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY), (5, 5), 0)
    edges = cv2.dilate(cv2.Canny(grey, 30, 90), np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    best, best_area = None, 0.0
    for c in contours:
        hull = cv2.convexHull(c)
        a = cv2.contourArea(hull) / float(edges.size)
        if not min_area <= a <= max_area or a <= best_area:
            continue
        approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            best, best_area = approx.reshape(4, 2).astype(np.float32), a
    if best is not None:
        yield order_corners(best / s)
    if other is not None:
        yield order_corners(other / s)
    if first is not None and not _coloured_surround(small, first):
        yield None


def _coloured_surround(small: np.ndarray, quad: np.ndarray, margin: float = 40.0) -> bool:
    """Whether what lies outside ``quad`` is clearly more colourful than inside (median saturation,
    0-255): a wooden, red or green table, which no page is; then the whole picture cannot be the
    page. A grey or white surround (a pale desk, the shaded part of a page) is not ruled out."""
    inside = np.zeros(small.shape[:2], np.uint8)
    cv2.fillPoly(inside, [quad.astype(np.int32)], 1)
    if inside.all() or not inside.any():
        return False
    sat = _hsv(small)[..., 1]
    return float(np.median(sat[inside == 0])) - float(np.median(sat[inside > 0])) >= margin


def rectify(rgb: np.ndarray, corners: np.ndarray, max_side: int = 1600) -> tuple[np.ndarray, np.ndarray]:
    """Warp the sheet to an upright rectangle; returns (image, 3x3 homography from ``rgb`` to it)."""
    tl, tr, br, bl = order_corners(corners)
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    scale = min(1.0, max_side / max(width, height))
    W, H = max(8, int(round(width * scale))), max(8, int(round(height * scale)))
    dst = np.float32([[0, 0], [W - 1, 0], [W - 1, H - 1], [0, H - 1]])
    M = cv2.getPerspectiveTransform(np.float32([tl, tr, br, bl]), dst)
    flat = cv2.warpPerspective(rgb, M, (W, H), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    return flat, M
