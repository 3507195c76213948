"""A second opinion on "/" against "1": a handwritten slash leans further than the writer's digits.

Line recognisers read most handwritten slashes as a "1" ("10/55*22" as "10155*22"): printed, a "1"
and a "/" differ by a few degrees, and a hand's slant moves both. A person tells them apart by how
far the stroke leans *beside that writer's other digits*. This rescorer measures it: each "/" of a
reading is cut out of the line by the CTC alignment, its lean (dx per dy of its ink, top to the
right) is compared with the median lean of the line's other digits, and a reading that reads the
stroke "/" has its probability multiplied by ``exp(weight * logit)``, a logistic model's log-odds
of "/" over "1" for that stroke (floored at ``least``: shipped at 0, so a lean argues only for a
slash, never against the recogniser's own "/"); a reading with "1" there keeps its probability. A
short "/" (an obelus, a bar with dots) is left to the recogniser. Used under the grammars the
settings name (expressions: on "a op b = c" lines the grammar already places the one operator).

The model's coefficients and weight are settings of the reader (``weights/ppocr.json``:
``metadata.slash``), fitted on validation writers (``benchmarks/expressions.py``).
"""

from __future__ import annotations

import numpy as np

from .decode import align
from .rescore import symbol_ink

TALL = 0.6  # a "/" at least this share of the digits' height is a slash, not an obelus
CLIP = 4.0  # the most one stroke's lean can say, in log-odds


def lean(crop: np.ndarray) -> tuple[float, int] | None:
    """(dx per dy, top to the right; ink height in px) of the symbol's own ink in its slice, or None."""
    part = symbol_ink(crop)
    ys, xs = np.nonzero(part > 0.3)
    if len(ys) < 5:
        return None
    w = part[ys, xs]
    my, mx = np.average(ys, weights=w), np.average(xs, weights=w)
    vy = np.average((ys - my) ** 2, weights=w)
    return float(-np.average((ys - my) * (xs - mx), weights=w) / max(vy, 1e-6)), int(np.ptp(ys)) + 1


def _centres(logp: np.ndarray, text: str, geometry: tuple[float, float]) -> np.ndarray:
    x0, per = geometry
    return np.array([x0 + (f0 + f1 + 1) / 2 * per for f0, f1, _ in align(logp, text)])


def _slices(ink: np.ndarray, centres: np.ndarray) -> list[tuple[int, int]]:
    """Each symbol's column range in the line's ink: CTC peaks are narrow, so a symbol reaches halfway
    to its neighbours' centres, the first and last to the ink's ends (``rescore.symbol_images`` cuts
    the same way within the CRNN's crop; the slash's model was fitted on these slices)."""
    cols = np.flatnonzero(ink.max(0) > 0.2)
    bounds = [cols[0], *((a + b) / 2 for a, b in zip(centres, centres[1:])), cols[-1] + 1]
    return [(int(a), int(np.ceil(b))) for a, b in zip(bounds, bounds[1:])]


def slash_rescore(ink: np.ndarray, logp: np.ndarray, nbest: list[tuple[str, float]],
                  geometry: tuple[float, float], settings: dict) -> list[tuple[str, float]]:
    """``nbest`` re-ranked by how far the strokes lean that its readings read "1" or "/" (``settings``:
    ``intercept``, ``lean``, ``relative`` coefficients, ``weight``, ``least``); the N-best's mass is kept.

    The strokes are those the best reading reads "1" or "/", measured once: each reading then gains
    the stroke's log-odds where it reads that stroke (its symbol nearest the stroke's centre) as "/",
    so readings that agree on a stroke are moved alike, whatever their alignments."""
    if not nbest or not any("/" in t for t, _ in nbest) or not any("1" in t for t, _ in nbest):
        return nbest  # no reading puts a "1" against a "/"
    if not (ink > 0.2).any():
        return nbest
    top = nbest[0][0]
    centres = _centres(logp, top, geometry)
    measured = [(ch, c, lean(ink[:, a:b]) if b > a else None) for ch, c, (a, b) in zip(top, centres, _slices(ink, centres))]
    refs = [m for ch, _, m in measured if ch.isdigit() and ch != "1" and m is not None]
    if not refs:
        return nbest  # no digit of the writer's to compare with
    slant, height = float(np.median([m[0] for m in refs])), float(np.median([m[1] for m in refs]))
    w, b0, b1, c = (float(settings[k]) for k in ("weight", "lean", "relative", "intercept"))
    least = float(settings.get("least", -CLIP))
    strokes = [(x, w * float(np.clip(c + b0 * m[0] + b1 * (m[0] - slant), least, CLIP)))
               for ch, x, m in measured if ch in "1/" and m is not None and m[1] >= TALL * height]
    if not strokes:
        return nbest
    log_r = np.zeros(len(nbest))
    for k, (text, _) in enumerate(nbest):
        if "/" in text:
            at = centres if text == top else _centres(logp, text, geometry)
            log_r[k] = sum(s for x, s in strokes if text[int(np.abs(at - x).argmin())] == "/")
    if not log_r.any():
        return nbest
    p = np.array([q for _, q in nbest]) * np.exp(log_r - log_r.max())
    p *= sum(q for _, q in nbest) / max(p.sum(), 1e-30)
    return [(nbest[k][0], float(p[k])) for k in np.argsort(-p, kind="stable")]
