"""One image, one line: a written number or expression read from any picture of it (a tight crop,
a table cell, a form's comb, a band of a page), with its symbols' boxes (``predictor.Predictor``'s
``number`` and ``expression``)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .decode import Grammar
from .read import read_lines


def _digit_boxes(ink: np.ndarray, spans: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Each symbol's box (x0, x1, y0, y1) in a line's ink map: CTC spans are narrower than glyphs, so a
    symbol reaches halfway to its neighbours' centres, then the box shrinks to the ink inside."""
    cols = np.flatnonzero(ink.max(0) > 0.2)
    if not len(cols) or not spans:
        return [(a, b, 0, ink.shape[0]) for a, b in spans]
    centres = [(a + b) / 2 for a, b in spans]
    bounds = [cols[0], *((p + q) / 2 for p, q in zip(centres, centres[1:])), cols[-1] + 1]
    out = []
    for (a, b), lo, hi in zip(spans, bounds, bounds[1:]):
        x0, x1 = int(lo), max(int(np.ceil(hi)), int(lo) + 1)
        part = ink[:, x0:x1] > 0.2
        xs, ys = np.flatnonzero(part.any(0)), np.flatnonzero(part.any(1))
        out.append((x0 + xs[0], x0 + xs[-1] + 1, ys[0], ys[-1] + 1) if len(xs) else (a, b, 0, ink.shape[0]))
    return out


# Written numbers get the CNN's second opinion too: on 3,000 validation numbers of 2-6 digits
# (validation writers, training generator, seeds 7 and 8) exact reads 91.9% -> 92.4% at CNN_WEIGHT
# (92.7 -> 92.9%, 91.2 -> 91.9%); before the CNN saw each symbol's own ink it gained nothing (92.0%).
NUMBER_DIGIT_OPINION = True


WHOLE_IMAGE_SIDE = 600  # px: images up to this size are also read as one line, whole (tight crops)


def _whole_image(source, name: str, max_side: int | None):
    """(line, page): the whole image as one line (``page.ink.whole_image_ink``), on a page of its own."""
    from ..page.ink import whole_image_ink
    from ..page.layout import Line, Page
    from ..io.images import load_rgb

    rgb = load_rgb(source, name=name, **({"max_side": max_side} if max_side else {}))
    ink = whole_image_ink(rgb)
    h, w = rgb.shape[:2]
    m = (ink.shape[0] - h) // 2
    line = Line(ink, (0, 0, w, h), [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], 0, (-m, -m))
    return line, Page([line], 0.0, None, (w, h), rgb, np.eye(3))


def _one_line(source, name: str, model, max_side: int | None, profile, grammar: Grammar, digits,
              propose=None, unsquash: bool = False) -> tuple:
    """(line, page, reading): the likeliest reading under ``grammar`` of the band with the most
    writing, or of the whole image when it is small (a tight crop) or shows no band; ``unsquash``:
    writing squeezed narrower than hands write is read widened too (``_squashed``)."""
    from ..page import analyse_page
    from ..digits.preprocess import NoDigitFound

    try:
        page = analyse_page(source, name=name, max_side=max_side, columns=False)
    except NoDigitFound:
        page = None
    found = []  # (line, page)
    if page is not None and page.lines:
        # One line: the band with the most writing.
        found.append((max(page.lines, key=lambda l: float(l.ink.sum())), page))
    if page is None or not page.lines or max(page.size) <= WHOLE_IMAGE_SIDE:
        # A small image may be the line itself, cropped tightly: read it whole too, keep the likelier.
        try:
            found.append(_whole_image(source, name, max_side))
        except NoDigitFound:
            if not found:
                raise
    readings = read_lines([l.ink for l, _ in found], grammar, model=model, profile=profile, digits=digits,
                          propose=propose)
    k = max(range(len(found)), key=lambda i: readings[i].probability if readings[i].text else -1.0)
    reading, ink = readings[k], found[k][0].ink
    if unsquash and _squashed(ink, reading.text):
        # A crop stored at a fixed size (130x120 whatever the number's width) squeezes its digits
        # narrower than any hand writes them: read it widened too, and keep the likelier.
        wide = cv2.resize(ink, (int(ink.shape[1] * UNSQUASH), ink.shape[0]), interpolation=cv2.INTER_LINEAR)
        again = read_lines([wide], grammar, model=model, profile=profile, digits=digits, propose=propose)[0]
        if again.text and again.probability > reading.probability:
            reading = replace(again, spans=[(int(a / UNSQUASH), int(b / UNSQUASH)) for a, b in again.spans])
    return (*found[k], reading)


SQUASHED = 0.4  # width per symbol / height below which writing is squeezed (handwritten digits: 0.5-0.8)
UNSQUASH = 1.6  # how much wider such writing is read again (validation crops: 1.6 and 2.0 alike)


def _squashed(ink: np.ndarray, text: str | None) -> bool:
    """Whether ``text``, read from ``ink``, stands narrower than anyone writes its symbols."""
    ys, xs = np.nonzero(ink > 0.25)
    if not text or not len(ys):
        return False
    return (np.ptp(xs) + 1) / (len(text) * (np.ptp(ys) + 1)) < SQUASHED


def expression_reading(source, name: str, model, max_side: int | None = None, propose=None) -> dict:
    """One written expression ("468*59+79", "7+5+3=15") in any image, read by ``model``: text,
    confidence, alternatives, box, and the N-best readings (``propose``: see ``read_lines``). Working it
    out and judging a written answer are ``arithmetic.calc``'s (``predictor.Predictor.calc``)."""
    from ..digits.preprocess import NoDigitFound
    from .decode import EXPRESSION

    line, _, reading = _one_line(source, name, model, max_side, None, EXPRESSION, False, propose)
    if reading.text is None:
        raise NoDigitFound(f"{name}: no expression found")
    return {"text": reading.text, "confidence": round(reading.probability, 4),
            "alternatives": [t for t, _ in reading.nbest[1:4]], "bbox": line.bbox, "nbest": reading.nbest}


def number_reading(source, name: str, model, max_side: int | None = None, profile=None) -> dict:
    """A written number (one line of digits) in any image, read by ``model``: text, confidence,
    alternatives, digit boxes (``predictor.read_number`` builds it)."""
    from ..digits.preprocess import NoDigitFound
    from .decode import NUMBER

    opinion = model.metadata.get("number_digit_opinion", NUMBER_DIGIT_OPINION)
    line, page, reading = _one_line(source, name, model, max_side, profile, NUMBER, opinion, unsquash=True)
    if reading.text is None:
        raise NoDigitFound(f"{name}: no number found")
    left, top = line.origin
    digits = []
    for ch, (a, b, y0, y1), c in zip(reading.text, _digit_boxes(line.ink, reading.spans), reading.symbol_confidence):
        quad = np.float32([[left + a, top + y0], [left + b, top + y0], [left + b, top + y1], [left + a, top + y1]])
        p = np.c_[quad, np.ones(4)] @ page.to_user.T
        p = p[:, :2] / p[:, 2:3]
        digits.append({"digit": int(ch), "confidence": c,
                       "box": [int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())]})
    return {"text": reading.text, "confidence": round(reading.probability, 4),
            "alternatives": [t for t, _ in reading.nbest[1:4]], "digits": digits, "bbox": line.bbox}
