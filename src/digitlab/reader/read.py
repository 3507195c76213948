"""Read line images with the shipped line reader: N-best readings under a grammar, symbol positions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import CHARSET
from .crnn import LINE_HEIGHT, STRIDE, LineReader, line_crop, prepare_line
from .decode import ARITHMETIC, Grammar, beam_search


@dataclass
class Reading:
    text: str | None  # the most probable reading the grammar allows; None when none is
    probability: float  # P(text | line), summed over all CTC alignments
    nbest: list[tuple[str, float]]  # (text, probability), best first
    spans: list[tuple[int, int]] = field(default_factory=list)  # x-range of each symbol in the line's ink
    symbol_confidence: list[float] = field(default_factory=list)


def get_line_reader(name_or_path=None) -> LineReader:
    from ..errors import ModelError
    from ..recognize import get_model

    model = get_model(name_or_path or "line_reader")
    if not isinstance(model, LineReader):
        raise ModelError(f"{name_or_path} is not a line-reader model")
    return model


def align(logp: np.ndarray, text: str) -> list[tuple[int, int, float]]:
    """CTC forced alignment (Viterbi): for each symbol, its first and last frame and peak posterior."""
    labels = [CHARSET.index(c) + 1 for c in text]
    ext = [0]
    for k in labels:
        ext += [k, 0]
    T, S = logp.shape[0], len(ext)
    score = np.full((T, S), -np.inf)
    back = np.zeros((T, S), np.int64)
    score[0, 0] = logp[0, 0]
    if S > 1:
        score[0, 1] = logp[0, ext[1]]
    for t in range(1, T):
        for s in range(S):
            cands = [score[t - 1, s]]
            idx = [s]
            if s >= 1:
                cands.append(score[t - 1, s - 1])
                idx.append(s - 1)
            if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
                cands.append(score[t - 1, s - 2])
                idx.append(s - 2)
            j = int(np.argmax(cands))
            score[t, s] = cands[j] + logp[t, ext[s]]
            back[t, s] = idx[j]
    s = S - 1 if S == 1 or score[T - 1, S - 1] >= score[T - 1, S - 2] else S - 2
    path = [s]
    for t in range(T - 1, 0, -1):
        s = int(back[t, s])
        path.append(s)
    path.reverse()
    out = []
    for i in range(len(labels)):
        frames = [t for t, s in enumerate(path) if s == 2 * i + 1]
        if not frames:
            frames = [min(T - 1, i)]
        out.append((frames[0], frames[-1], float(np.exp(logp[frames, labels[i]].max()))))
    return out


def read_lines(inks: list[np.ndarray], grammar: Grammar = ARITHMETIC, model: LineReader | None = None,
               beam: int = 12) -> list[Reading]:
    """Read each line's ink map (1 = ink); symbol spans are in that ink map's columns."""
    model = model or get_line_reader()
    prepared, geometry = [], []
    for ink in inks:
        prepared.append(prepare_line(ink))
        y0, y1, x0, _ = line_crop(ink)
        geometry.append((x0, LINE_HEIGHT / (y1 - y0)))
    out = []
    for logp, (x0, scale) in zip(model.frame_log_probs(prepared), geometry):
        nbest = [(t, float(np.exp(lp))) for t, lp in beam_search(logp, grammar, beam=beam)]
        if not nbest:
            out.append(Reading(None, 0.0, []))
            continue
        text, prob = nbest[0]
        spans, conf = [], []
        if text:
            for f0, f1, c in align(logp, text):
                spans.append((int(x0 + f0 * STRIDE / scale), int(x0 + (f1 + 1) * STRIDE / scale)))
                conf.append(round(c, 4))
        out.append(Reading(text, prob, nbest, spans, conf))
    return out


def read_number(source, name: str = "image", model: LineReader | None = None, max_side: int | None = None) -> dict:
    """A written number (one line of digits) in any image: text, confidence, alternatives, digit boxes."""
    from ..page import analyse_page
    from ..preprocess import NoDigitFound
    from .decode import NUMBER

    page = analyse_page(source, name=name, max_side=max_side, columns=False)
    if not page.lines:
        raise NoDigitFound(f"{name}: no number found")
    # A number is one line: the band with the most writing.
    line = max(page.lines, key=lambda l: float(l.ink.sum()))
    reading = read_lines([line.ink], NUMBER, model=model)[0]
    if reading.text is None:
        raise NoDigitFound(f"{name}: no number found")
    _, y0, _, y1 = line.box
    left = line.origin[0]
    digits = []
    for ch, (a, b), c in zip(reading.text, reading.spans, reading.symbol_confidence):
        quad = np.float32([[left + a, y0], [left + b, y0], [left + b, y1], [left + a, y1]])
        p = np.c_[quad, np.ones(4)] @ page.to_user.T
        p = p[:, :2] / p[:, 2:3]
        digits.append({"digit": int(ch), "confidence": c,
                       "box": [int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())]})
    return {"text": reading.text, "confidence": round(reading.probability, 4),
            "alternatives": [t for t, _ in reading.nbest[1:4]], "digits": digits, "bbox": line.bbox}
