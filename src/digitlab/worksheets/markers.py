"""Find a printed worksheet in a photo: ArUco corner markers -> homography -> a flat page; the QR sheet id.

The markers' places are fixed for every sheet (``layout.MARKER_ORIGINS_MM``), so three of the four
are enough for the homography (12 corner points). The page is then warped to ``dpi`` (150 by
default: the PNG's own grid, so box coordinates in the key map directly onto it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ImageError
from .layout import ARUCO_DICT, MARKER_MM, MARKER_ORIGINS_MM, PAGE_MM, PNG_DPI, QR_MM, QR_PREFIX

DETECT_SIDE = 1800  # px: markers are looked for on a copy this size at most; corners are refined on the original


class NoSheetFound(ImageError):
    """The photo shows no worksheet (markers or sheet id not found)."""


@dataclass
class Found:
    H: np.ndarray  # page millimetres -> photo pixels
    markers: list[int]  # marker ids seen
    residual_mm: float  # how well the markers agree with a flat page (RMS, mm)


def _detector() -> cv2.aruco.ArucoDetector:
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    params.adaptiveThreshWinSizeMax = 53
    params.adaptiveThreshWinSizeStep = 8
    params.minMarkerPerimeterRate = 0.02
    return cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(ARUCO_DICT), params)


def to_grey8(rgb: np.ndarray) -> np.ndarray:
    a = rgb if rgb.dtype == np.uint8 else (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a


def find_markers(rgb: np.ndarray) -> Found:
    """The page homography from the corner markers; ``NoSheetFound`` if fewer than three are seen."""
    grey = to_grey8(rgb)
    h, w = grey.shape
    s = min(1.0, DETECT_SIDE / max(h, w))
    small = cv2.resize(grey, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else grey
    corners, ids, _ = _detector().detectMarkers(small)
    if ids is None:
        # Very dark or washed-out photos: even out the light and try once more.
        small = cv2.createCLAHE(2.0, (8, 8)).apply(small)
        corners, ids, _ = _detector().detectMarkers(small)
    seen: dict[int, np.ndarray] = {}
    for c, i in zip(corners or [], [] if ids is None else ids.ravel()):
        i = int(i)
        if 0 <= i < 4 and i not in seen:
            seen[i] = c.reshape(4, 2) / s
    if len(seen) < 3:
        raise NoSheetFound(f"no worksheet found: {len(seen)} of the 4 corner markers visible "
                           "(photograph the whole sheet, flat, with all four black corner squares)")
    src, dst = [], []
    for i, c in seen.items():
        x, y = MARKER_ORIGINS_MM[i]
        src += [[x, y], [x + MARKER_MM, y], [x + MARKER_MM, y + MARKER_MM], [x, y + MARKER_MM]]
        dst += list(c)
    src, dst = np.float32(src), np.float32(dst)
    if s < 1:
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.05)
        win = max(2, int(2 / s))
        dst = cv2.cornerSubPix(grey, dst.reshape(-1, 1, 2).copy(), (win, win), (-1, -1), crit).reshape(-1, 2)
    H, _ = cv2.findHomography(src, dst, 0)
    if H is None:
        raise NoSheetFound("no worksheet found: the corner markers do not form a page")
    back = cv2.perspectiveTransform(dst.reshape(-1, 1, 2), np.linalg.inv(H)).reshape(-1, 2)
    resid = float(np.sqrt(((back - src) ** 2).sum(axis=1).mean()))
    if resid > 3.0:
        raise NoSheetFound(f"no worksheet found: the corner markers do not fit a flat page ({resid:.1f} mm off)")
    return Found(H, sorted(seen), resid)


def rectify(rgb: np.ndarray, found: Found, dpi: float = PNG_DPI) -> np.ndarray:
    """The photo warped onto the page grid at ``dpi`` (same dtype/channels as the input)."""
    s = 25.4 / dpi
    W, Hh = round(PAGE_MM[0] / s), round(PAGE_MM[1] / s)
    M = found.H @ np.diag([s, s, 1.0])  # page pixels -> photo pixels
    return cv2.warpPerspective(rgb, M, (W, Hh), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


def _decode(img: np.ndarray) -> str | None:
    det = cv2.QRCodeDetector()
    try:
        text, _, _ = det.detectAndDecode(img)
    except cv2.error:
        return None
    return text or None


def read_sheet_id(page: np.ndarray, dpi: float = PNG_DPI, photo: np.ndarray | None = None) -> str:
    """The sheet id in the QR code of a rectified page (the photo itself as a last resort)."""
    s = dpi / 25.4
    x0, y0, x1, y1 = QR_MM
    m = 5.0
    crop = to_grey8(page[max(0, int((y0 - m) * s)) : int((y1 + m) * s), max(0, int((x0 - m) * s)) : int((x1 + m) * s)])
    tries = [crop, cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)]
    tries.append(cv2.threshold(tries[1], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1])
    if photo is not None:
        tries.append(to_grey8(photo))
    for img in tries:
        text = _decode(img)
        if text:
            if not text.startswith(QR_PREFIX):
                raise NoSheetFound(f"the QR code on this sheet is not a digitlab worksheet id ({text[:40]!r})")
            return text[len(QR_PREFIX):]
    raise NoSheetFound("worksheet found but its QR code (top right) could not be read; retake the photo sharper")
