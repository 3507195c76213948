"""A second opinion on each reading's digits: each symbol cut out of the line by the CTC alignment and
shown to a digit model (the shipped CNN, one fine-tuned on line slices, or a handwriting profile),
and the N-best readings re-ranked by what it sees (``rescore``). Used by the CRNN path and by
profiles; the default reader does without it (``read.read_lines``, ``digits=``)."""

from __future__ import annotations

import cv2
import numpy as np

from . import CRNN_CHARSET, DIGITS
from .crnn import LINE_HEIGHT, STRIDE, line_crop
from .decode import align


def symbol_ink(crop: np.ndarray, share: float = 0.2, thresh: float = 0.2, operator: bool = False) -> np.ndarray:
    """A symbol's own ink in its slice of a line: the largest stroke and those of at least ``share`` its
    size that share its rows, with the faint pixels around them. For an ``operator``, the strokes
    that share its *columns* instead, of any size: the second bar of "=", the dots of "÷".

    The slice is the line's full height, so it also holds specks, the tails of the lines above and
    below and remnants of rulings; cropped to all of it, the symbol came out small and off centre.
    On 5,185 digits of validation lines, placed by aligning the true text: the CNN read 92.9% of the
    slices as they are and 95.3% of their symbols' own ink (dropping small strokes alone: 93.6%).
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats((crop > thresh).astype(np.uint8), connectivity=8)
    if n <= 2:
        return crop
    area, top, height = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_TOP], stats[1:, cv2.CC_STAT_HEIGHT]
    main = int(area.argmax())
    if operator:
        left, width = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_WIDTH]
        centre = left + width / 2
        keep = np.r_[False, (centre >= left[main]) & (centre <= left[main] + width[main]) & (area >= 3)]
    else:
        rows = np.minimum(top + height, top[main] + height[main]) > np.maximum(top, top[main])
        keep = np.r_[False, (area >= share * area[main]) & rows]
    near = cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return crop * near


def symbol_images(ink: np.ndarray, logp: np.ndarray, text: str, cache: dict | None = None,
                  chars: str = DIGITS, geometry: tuple[float, float] | None = None) -> dict[int, np.ndarray]:
    """28x28 MNIST-style images of the symbols of ``text`` that are in ``chars`` (the digits by default)
    in a line's ink map, placed by CTC alignment.

    CTC peaks are narrower than glyphs, so each symbol reaches halfway to its neighbours' centres.
    ``cache`` (one per line) keeps the images by column range: readings of a line that differ in one
    symbol place the others where they were. ``geometry``: the reader's ``(x0, columns per frame)``
    for the line (``geometry(ink)`` of the reader whose frames ``logp`` are; the CRNN's by default).
    """
    from ..digits.preprocess import NoDigitFound, crop_and_fit

    cache = {} if cache is None else cache
    y0, y1, x0, x1 = line_crop(ink)
    fx0, per = geometry or (x0, STRIDE * (y1 - y0) / LINE_HEIGHT)
    centres = [fx0 + (f0 + f1 + 1) / 2 * per for f0, f1, _ in align(logp, text)]
    bounds = [x0, *((a + b) / 2 for a, b in zip(centres, centres[1:])), x1]
    out = {}
    for i, ch in enumerate(text):
        if ch not in chars:
            continue
        key = (int(bounds[i]), int(np.ceil(bounds[i + 1])), not ch.isdigit())
        if key not in cache:
            crop, cache[key] = ink[y0:y1, key[0] : key[1]], None
            if crop.size and crop.max() > 0.2:
                try:
                    cache[key] = crop_and_fit(symbol_ink(crop, operator=key[2]))
                except NoDigitFound:
                    pass
        if cache[key] is not None:
            out[i] = cache[key]
    return out


# The digit CNN's weight as a second opinion on each reading's digits, for the CRNN pair (the default
# reader, PP-OCR fused with the pair, reads without it: its calibration says "digits": false). The pair
# was calibrated with 0.5; read so, 4.1% of 4,000 validation lines are unsure at the best prior
# (benchmarks/results/checker_val.json). Other weights were tried with an earlier pair and gave no
# clear difference; that comparison is not kept.
CNN_WEIGHT = 0.5


def rescore(lines: list[tuple], digits=None, profile=None,
            weight: float = CNN_WEIGHT, limit: float = 7.0, floor: float = 1e-3) -> list[list[tuple[str, float]]]:
    """Re-rank the N-best readings of lines ``(ink, logp, nbest[, geometry])`` by what a digit classifier
    sees (``geometry``: the reader's, see ``symbol_images``).

    Each digit of a reading is cut out of the line by the CTC alignment and shown to the digit model
    ``digits`` (e.g. the shipped CNN, which has seen more writers than the line reader; None: no second
    opinion): a reading's probability is
    multiplied, per digit ``d``, by ``(10 p_cnn(d)) ** weight``, the hybrid recogniser's scaled likelihood
    (a product of experts); a symbol model (``symbol_classes``) is shown the operators too, and each
    symbol ``s`` counts ``(15 p(s)) ** weight``. With a handwriting ``profile`` it is also multiplied by how much
    the profile changes the base CNN's belief, ``p_profile(d) / p_base(d)``: where the profile has learnt
    nothing about a glyph the ratio is 1 (the profile's base model then gives the second opinion, if
    one is asked for with ``digits``). Readings under ``floor`` times the best are left as they are
    (they cannot win); each line's N-best mass is kept.
    """
    base = profile.base_model if profile is not None else digits
    weight = weight if digits is not None else 0.0
    chars = symbol_classes(base) if profile is None else DIGITS
    crops, owner, scored = {}, [], []  # each distinct image is shown to the classifier once
    for j, (ink, logp, nbest, *geometry) in enumerate(lines):
        scored.append(0)
        cache: dict = {}
        for k, (text, q) in enumerate(nbest):
            if q < floor * nbest[0][1]:
                break
            scored[j] += 1
            for i, img in symbol_images(ink, logp, text, cache, chars, *geometry).items():
                owner.append((crops.setdefault(id(img), (len(crops), img))[0], j, k, chars.index(text[i])))
    if not crops:
        return [line[2] for line in lines]
    X = np.stack([img for _, img in crops.values()]).astype(np.float32)  # one batch a page: per-call costs dominate
    log_base = np.log(base.predict_proba(X) + 1e-6)
    factor = weight * (np.clip(log_base, -limit, 0) + np.log(len(chars)))
    if profile is not None:
        factor += np.clip(np.log(profile.predict_proba(X) + 1e-6) - log_base, -limit, limit)
    log_r = [np.zeros(len(line[2])) for line in lines]
    for n, j, k, d in owner:
        log_r[j][k] += factor[n, d]
    out = []
    for (_, _, nbest, *_), lr, m in zip(lines, log_r, scored):
        lr[m:] = lr[:m].min()  # readings too unlikely to be looked at must not gain on those that were
        p = np.array([q for _, q in nbest]) * np.exp(lr - lr.max())
        p *= sum(q for _, q in nbest) / max(p.sum(), 1e-30)
        out.append([(nbest[k][0], float(p[k])) for k in np.argsort(-p, kind="stable")])
    return out


def symbol_classes(model) -> str:
    """The symbols a second-opinion model tells apart: the digits, or every symbol of a line (a model
    with one class per ``CRNN_CHARSET`` symbol, ``digitlab train slice-cnn --symbols``)."""
    params = getattr(model, "params", None) or {}
    return CRNN_CHARSET if params.get("num_classes") == len(CRNN_CHARSET) else DIGITS
