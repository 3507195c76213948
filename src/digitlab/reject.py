"""Is it a digit at all? Refusing pictures that are not one (noise, blobs, grids, stripes, ...).

Every image with ink reaches the model as a 28x28 MNIST-style picture, and a classifier trained only
on digits calls anything a digit: a filled square is a confident "0". This module looks at the
preprocessed picture the way a person would before reading it:

``components``  pieces of ink of some size (a digit is one stroke, or two for a broken 4 or 5);
``holes``       closed loops of paper (8 has two; a grid or a checkerboard has many);
``fill``        share of its bounding box that the ink covers (strokes leave paper between them);
``thickness``   widest ink (twice the largest inscribed radius) over the box's longest side:
                 a stroke is thin next to the digit's height, a blob is not;
``texture``     share of ink pixels that are mid-grey rather than stroke or paper (noise,
                 gradients);
``ink``         mean ink over the whole 28x28 picture (a digit leaves most of it empty);
``confidence``  the shipped CNN's top probability (only checked for that model: others are calibrated
                 differently).

A picture is refused when any feature lies beyond its bound. The bounds in ``THRESHOLDS`` were
chosen on validation data only: real digits from MNIST's validation split (the CNN's own held-back
5k) and optdigits ``cv``, rendered as user images, against non-digits from
``digitlab.synth.non_digit_image`` with a seed the benchmark never uses
(``python benchmarks/non_digits.py --calibrate``). MNIST test and optdigits ``windep`` are only
measured (``python benchmarks/non_digits.py``).

Turn it off with ``reject=False`` (``preprocess_digit``, ``recognize.predict_source``); the study and
``evaluate`` score MNIST arrays directly and never pass through it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .preprocess import NoDigitFound

INK = 0.4  # a pixel of the 28x28 picture is ink above this
MIN_PIECE = 4  # pieces of ink (and holes) smaller than this many pixels are ignored

# Refuse above (below, for confidence) these bounds. Chosen by `benchmarks/non_digits.py --calibrate`
# on validation data (see the module docstring); the values it printed are copied here.
THRESHOLDS = {
    "components": 3,
    "holes": 2,
    "fill": 0.62,
    "thickness": 0.5,
    "texture": 0.6,
    "confidence": 0.0,
}
UPPER = ("components", "holes", "fill", "thickness", "texture", "ink")  # refuse when feature > bound
LOWER = ("confidence",)  # refuse when feature < bound

REASONS = {
    "components": "too many separate pieces of ink",
    "holes": "too many enclosed loops (a grid or a pattern?)",
    "fill": "the ink fills its box (a blob or a block?)",
    "thickness": "the ink is too thick for a pen stroke",
    "texture": "the ink looks like texture or shading, not strokes",
    "ink": "too much ink for a digit",
    "confidence": "the model does not recognise it as any digit",
}


def shape_features(image: np.ndarray) -> dict[str, float]:
    """The shape features of one preprocessed 28x28 picture (float in [0,1], 1 = ink)."""
    x = np.asarray(image, dtype=np.float32)
    if x.max() > 1.0:
        x = x / 255.0
    mask = (x > INK).astype(np.uint8)
    if not mask.any():
        return {"components": 0, "holes": 0, "fill": 0.0, "thickness": 0.0, "texture": 1.0, "ink": float(x.mean())}
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    components = int((areas >= MIN_PIECE).sum())
    # Holes: paper regions (4-connected) that do not reach the outside of the padded picture.
    paper = np.pad(1 - mask, 1, constant_values=1)
    m, lab, pstats, _ = cv2.connectedComponentsWithStats(paper, connectivity=4)
    outside = lab[0, 0]
    holes = int(sum(1 for i in range(1, m) if i != outside and pstats[i, cv2.CC_STAT_AREA] >= 2))
    ys, xs = np.nonzero(mask)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = float(mask.sum() / (h * w))
    dist = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 5)
    thickness = float(2 * dist.max() / max(h, w))
    soft = x > 0.05
    texture = float(((x > 0.05) & (x < 0.6)).sum() / max(1, soft.sum()))
    return {"components": components, "holes": holes, "fill": fill, "thickness": thickness, "texture": texture,
            "ink": float(x.mean())}


def features(image: np.ndarray, probabilities=None) -> dict[str, float]:
    """Shape features, plus ``confidence`` (top probability) when probabilities are given."""
    out = shape_features(image)
    if probabilities is not None:
        out["confidence"] = float(np.max(probabilities))
    return out


def why_not_digit(feats: dict[str, float], thresholds: dict[str, float] | None = None) -> str | None:
    """The first reason to refuse these features as a digit, or None when they pass every bound."""
    t = THRESHOLDS if thresholds is None else thresholds
    for key in UPPER:
        if key in feats and key in t and feats[key] > t[key]:
            return key
    for key in LOWER:
        if key in feats and key in t and feats[key] < t[key]:
            return key
    return None


def check_shape(image: np.ndarray, thresholds: dict[str, float] | None = None) -> None:
    """Raise ``NoDigitFound`` when a preprocessed 28x28 picture does not have a digit's shape."""
    reason = why_not_digit(shape_features(image), thresholds)
    if reason:
        raise NoDigitFound(f"no digit found ({REASONS[reason]})")


def check_confidence(probabilities, thresholds: dict[str, float] | None = None) -> None:
    """Raise ``NoDigitFound`` when the shipped CNN's top probability is below the calibrated bound."""
    t = THRESHOLDS if thresholds is None else thresholds
    if float(np.max(probabilities)) < t.get("confidence", 0.0):
        raise NoDigitFound(f"no digit found ({REASONS['confidence']})")
