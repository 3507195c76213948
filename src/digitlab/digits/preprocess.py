"""Turn any user image into what an MNIST model expects, the way MNIST itself was made.

Pipeline (``preprocess_digit``): decode (``digitlab.io.images``: any mode, EXIF orientation,
transparency) -> greyscale ->
ink map (polarity detected from the border, background flattened, contrast stretched) -> crop to
the ink -> longest side scaled to 20 px with anti-aliasing -> centred by centre of mass in 28x28.
Optionally deskewed from image moments (used by the classic models).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError, NoDigitFound  # noqa: F401 (NoDigitFound is imported from here too)
from ..io.images import MAX_SIDE, load_image

BOX = 20  # MNIST: digits fitted into a 20x20 box ...
SIZE = 28  # ... centred by mass in a 28x28 field


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Greyscale (1 = white) -> ink in [0,1] (1 = ink) with the background at 0.

    Polarity comes from the border: whatever colour dominates the border is paper. Uneven light
    is flattened by subtracting a large median-blurred background before stretching contrast.
    """
    g = np.asarray(grey, dtype=np.float32)
    if g.ndim != 2:
        raise ImageError(f"expected a 2-D greyscale array, got shape {g.shape}")
    if g.size == 0:
        raise NoDigitFound("empty image")
    g = np.nan_to_num(g, nan=1.0, posinf=1.0, neginf=0.0)
    if g.max() > 1.0:
        g = g / 255.0
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    # Paper dominates the border: light paper means dark ink, and the other way round.
    ink = 1.0 - g if np.median(border) >= 0.5 else g
    h, w = ink.shape
    paper = float(np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])))
    ink = ink - paper
    if min(h, w) >= 32:
        ink = ink - paper_variation(np.clip(ink, 0, 1))
    ink = np.clip(ink, 0, 1)
    hi = float(np.percentile(ink, 99.5))
    if hi < 0.15:
        # The percentile ignores salt noise, but on a big canvas it also misses a real mark that
        # covers under 0.5% of it (the first dab of a stroke): accept a compact patch of strong ink.
        strong = cv2.morphologyEx((ink > 0.3).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        if strong.sum() < max(16, 2e-4 * ink.size):  # the opening drops isolated noise pixels
            raise NoDigitFound("no digit found (the image has no ink)")
        hi = float(np.percentile(ink[strong], 90))
    return np.clip(ink / hi, 0, 1).astype(np.float32)


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels, from the distance transform of a locally thresholded mask.

    A local threshold (over a third of the image: wider than any stroke, narrower than a light
    gradient) keeps shaded paper out of the mask, where a global one would take it for a huge blob.
    """
    u8 = (np.clip(ink, 0, 1) * 255).astype(np.uint8)
    block = max(3, (min(u8.shape) // 3) | 1)
    mask = cv2.adaptiveThreshold(u8, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, -20)
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    inside = dist[dist > 0]
    return 2.0 * float(np.percentile(inside, 95)) if inside.size else 2.0


def paper_variation(ink: np.ndarray, max_work_side: int = 800, max_kernel: int = 15) -> np.ndarray:
    """Slowly varying paper shading (shadows, uneven light) under an ink map, to subtract.

    A morphological opening with a disc wider than the strokes removes the strokes entirely and
    keeps only what varies more slowly (a white top-hat). The disc is sized from the measured
    stroke width, so thick marker strokes are never hollowed out. Shading is smooth, so the
    opening runs on a copy shrunk until the disc is at most ``max_kernel`` px: strokes shrink with
    it and stay narrower than the disc, and the cost drops with the square of the scale.
    """
    h, w = ink.shape
    k_full = 2.5 * stroke_width(ink) + 3
    scale = min(1.0, max_work_side / max(h, w), max_kernel / k_full)
    work = cv2.resize(ink, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else ink
    k = max(3, int(k_full * scale) | 1)
    k = min(k, max(3, (min(work.shape) // 2) | 1))
    bg = cv2.morphologyEx(work, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    bg = cv2.GaussianBlur(bg, (0, 0), k / 2)
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR) if scale < 1 else bg


def otsu_mask(ink: np.ndarray) -> np.ndarray:
    """Ink pixels of an ink map: Otsu's threshold, but never below 50/255 (faint shading is not ink)."""
    u8 = (np.clip(ink, 0, 1) * 255).astype(np.uint8)
    thr, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return u8 > max(thr, 50)


def ink_mask(ink: np.ndarray, min_area_frac: float = 0.0005) -> np.ndarray:
    """Binary ink mask (``otsu_mask``) with specks smaller than ``min_area_frac`` removed."""
    mask = otsu_mask(ink).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    min_area = max(2, int(min_area_frac * mask.size))
    biggest = stats[1:, cv2.CC_STAT_AREA].max()
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min(min_area, biggest)
    return keep[labels]


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) exclusive bounding box of a boolean mask, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def tight(ink: np.ndarray, thresh: float = 0.1) -> np.ndarray:
    """An ink map cropped to its ink (pixels above ``thresh``), float32; a 1x1 blank when there is none."""
    ys, xs = np.nonzero(ink > thresh)
    if len(ys) == 0:
        return ink[:1, :1] * 0
    return np.ascontiguousarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], dtype=np.float32)


def fit_to_mnist(ink: np.ndarray, box: int = BOX, size: int = SIZE) -> np.ndarray:
    """Scale an ink crop so its longest side is ``box`` px and centre its mass in ``size``x``size``."""
    h, w = ink.shape
    if h == 0 or w == 0 or float(ink.max()) <= 0:
        raise NoDigitFound("no digit found (the image has no ink)")
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # INTER_AREA anti-aliases when shrinking; upscaling tiny crops wants a smooth kernel instead.
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    small = np.clip(cv2.resize(ink, (nw, nh), interpolation=interp), 0, 1)
    if small.sum() <= 1e-6:
        small = np.ones_like(small)
    out = np.zeros((size, size), dtype=np.float32)
    ys, xs = np.indices(small.shape)
    total = small.sum()
    cy, cx = (ys * small).sum() / total, (xs * small).sum() / total
    oy = int(round(size / 2 - cy))
    ox = int(round(size / 2 - cx))
    oy = min(max(oy, 0), size - nh)
    ox = min(max(ox, 0), size - nw)
    out[oy : oy + nh, ox : ox + nw] = small
    return out


def deskew(img: np.ndarray) -> np.ndarray:
    """Moment-based deskew of a 28x28 image (shear so the principal axis is vertical)."""
    img = np.asarray(img, dtype=np.float32)
    m = cv2.moments(img)
    if abs(m["mu02"]) < 1e-2:
        return img.copy()
    skew = m["mu11"] / m["mu02"]
    h, w = img.shape
    M = np.float32([[1, skew, -0.5 * h * skew], [0, 1, 0]])
    return cv2.warpAffine(img, M, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)


def deskew_batch(images: np.ndarray) -> np.ndarray:
    """Deskew every image of an (N,28,28) batch (uint8 or float)."""
    f = np.asarray(images, dtype=np.float32)
    return np.stack([deskew(x) for x in f]) if len(f) else f


def crop_and_fit(ink: np.ndarray) -> np.ndarray:
    """Ink map -> 28x28 MNIST-style float32 image in [0,1]."""
    mask = ink_mask(ink)
    if not mask.any():
        raise NoDigitFound("no digit found (the image has no ink)")
    # MNIST's 20 px box includes the anti-aliased fringe, so the box is taken over all ink near
    # the strokes (the Otsu mask grown a little), not over the thresholded core alone.
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, min(ink.shape) // 100))
    ink = ink * near
    x0, y0, x1, y1 = bbox(ink > 0.1)
    return fit_to_mnist(ink[y0:y1, x0:x1])


def preprocess_digit(source, max_side: int = MAX_SIDE, name: str | None = None, reject: bool = True) -> np.ndarray:
    """Any image (path, bytes, PIL image, or 2-D array with 0=black) -> 28x28 float32 in [0,1].

    With ``reject`` (the default), a picture whose ink does not have a digit's shape (noise, a blob,
    a grid, stripes, ...) raises ``NoDigitFound`` (``digitlab.digits.reject``); ``reject=False`` skips that.
    """
    image = crop_and_fit(ink_map(load_image(source, max_side=max_side, name=name)))
    if reject:
        from .reject import check_shape

        check_shape(image)
    return image


def preprocess_mnist_like(arr: np.ndarray) -> np.ndarray:
    """A 28x28 array already in MNIST form (0 background, 255 or 1.0 ink): re-fit it like MNIST.

    Used for the API's 28x28 input and for canvas drawings, so a digit drawn in a corner still
    reaches the model centred.
    """
    a = np.asarray(arr, dtype=np.float32)
    if a.max() > 1.0:
        a = a / 255.0
    if float(a.max()) < 0.05:
        raise NoDigitFound("no digit found (the image has no ink)")
    return crop_and_fit(a / a.max())
