"""Read line images with the shipped line reader: N-best readings under a grammar, symbol positions."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import CHARSET, DIGITS
from .crnn import LINE_HEIGHT, MAX_WIDTH, STRIDE, LineReader, line_crop, prepare_line
from .decode import ARITHMETIC, Grammar, beam_search, text_log_probs


@dataclass
class Reading:
    text: str | None  # the most probable reading the grammar allows; None when none is
    probability: float  # P(text | line), summed over all CTC alignments
    nbest: list[tuple[str, float]]  # (text, probability), best first
    spans: list[tuple[int, int]] = field(default_factory=list)  # x-range of each symbol in the line's ink
    symbol_confidence: list[float] = field(default_factory=list)
    # the primary reader's (T, 16) log-probabilities of the line as it is, for a second read (``read_lines(plain=)``)
    frames: np.ndarray | None = field(default=None, repr=False, compare=False)


class ReaderEnsemble:
    """Line readers read together: each line's N-best lists from every member (and every test-time
    augmentation) are averaged, as ``read_lines`` averages augmentations.

    The first member is the *primary*: its metadata (the verdict calibration, which was measured with
    the whole ensemble) is the ensemble's, and symbol positions come from its alignment. A reader file
    names its partners in ``metadata["ensemble"]`` (``python -m digitlab.arithmetic.calibrate --ensemble``).
    """

    def __init__(self, members: list[LineReader]) -> None:
        self.members = list(members)

    @property
    def primary(self) -> LineReader:
        return self.members[0]

    @property
    def metadata(self) -> dict:
        return self.primary.metadata

    def prepare(self, ink: np.ndarray) -> np.ndarray:
        return self.primary.prepare(ink)

    def geometry(self, ink: np.ndarray) -> tuple[float, float]:
        return self.primary.geometry(ink)

    def frame_log_probs(self, prepared: list[np.ndarray]) -> list[np.ndarray]:
        return [lp for m in self.members for lp in m.frame_log_probs(prepared)]

    def save(self, path) -> None:
        self.primary.save(path)


class FusedReader:
    """Line recognisers combined by their exact CTC likelihoods (a log-linear product of experts).

    Each member reads a line on its own input (their frames do not align: other strides, other
    peaks); the union of their N-best readings is scored under every member's exact likelihood
    (``text_log_probs``), and a reading's score is ``sum_m weight_m * log P_m(text | line) / sum_m weight_m``. The first
    member is the *primary*: its metadata (verdict calibration) is the fused reader's, its alignment
    places the symbols, and its probability scale is kept (the union's scores are spread over the
    mass the primary gives the union). Weights are chosen on validation lines (``benchmarks/real_pens.py``).
    """

    def __init__(self, members: list, weights: list[float]) -> None:
        if len(members) != len(weights) or not members:
            raise ValueError("one weight per member")
        self.members, self.weights = list(members), [float(w) for w in weights]

    @property
    def primary(self):
        return self.members[0]

    @property
    def metadata(self) -> dict:
        return self.primary.metadata

    def prepare(self, ink: np.ndarray) -> np.ndarray:
        return self.primary.prepare(ink)

    def geometry(self, ink: np.ndarray) -> tuple[float, float]:
        return self.primary.geometry(ink)

    def frame_log_probs(self, prepared: list[np.ndarray]) -> list[np.ndarray]:
        return self.primary.frame_log_probs(prepared)

    def score(self, frames: list[np.ndarray], texts: list[str]) -> np.ndarray:
        """Fused log-scores of ``texts`` given each member's frames of one line: the weighted mean of the
        members' exact log-likelihoods. A mean, not a sum: summed, three readers that agree on a
        misreading made it look 10^5 times likelier than the truth, and no prior could overturn that
        (validation lines: with the sum, the verdict bounds left 21.7% of lines unsure; with the mean 3.7%)."""
        return sum(w * text_log_probs(f, texts) for w, f in zip(self.weights, frames) if w) / sum(self.weights)


def primary(model):
    """A reader's own network: the primary member of an ensemble, or the reader itself."""
    return getattr(model, "primary", model)


DEFAULT_READER = "ppocr"


def get_line_reader(name_or_path=None, ensemble: bool = True):
    """The line reader by name or path; by default PP-OCRv6 (``ppocr.py``) fused with the partners
    its settings name (``weights/ppocr.json``: ``partners``). A CRNN file (``line_reader``) comes with the
    partners its file names. ``ensemble=False``: the reader alone."""
    from ..errors import ModelError
    from ..recognize import get_model
    from .ppocr import get_ppocr

    name = name_or_path or DEFAULT_READER
    if str(name) == "ppocr":
        reader = get_ppocr()
        partners = reader.cfg.get("partners") or {}
        if not ensemble or not partners:
            return reader
        members = [reader] + [get_line_reader(p, ensemble=False) for p in partners]
        return FusedReader(members, [1.0, *partners.values()])
    model = get_model(name)
    if not isinstance(model, LineReader):
        raise ModelError(f"{name_or_path} is not a line-reader model")
    return with_partners(model, model.metadata.get("ensemble") or []) if ensemble else model


def with_partners(reader: LineReader, names: list[str]) -> LineReader | ReaderEnsemble:
    """``reader`` read together with the line readers ``names`` (model names or paths); itself for none."""
    from ..errors import ModelError
    from ..recognize import get_model

    members = [reader]
    for name in names:
        member = get_model(name)
        if not isinstance(member, LineReader):
            raise ModelError(f"{name}, named as a partner line reader, is not a line-reader model")
        members.append(member)
    return ReaderEnsemble(members) if len(members) > 1 else reader


def align(logp: np.ndarray, text: str) -> list[tuple[int, int, float]]:
    """CTC forced alignment (Viterbi): for each symbol, its first and last frame and peak posterior."""
    labels = [CHARSET.index(c) + 1 for c in text]
    ext = [0]
    for k in labels:
        ext += [k, 0]
    T, S = logp.shape[0], len(ext)
    ext = np.asarray(ext)
    # A state may be entered from itself, the state before, or (a symbol unlike the one two back)
    # skipping the blank between them; ties go to the earliest of those, as in the usual recursion.
    skip = np.zeros(S, bool)
    skip[2:] = (ext[2:] != 0) & (ext[2:] != ext[:-2])
    score = np.full((T, S), -np.inf)
    back = np.zeros((T, S), np.int64)
    score[0, 0] = logp[0, 0]
    if S > 1:
        score[0, 1] = logp[0, ext[1]]
    states = np.arange(S)
    for t in range(1, T):
        prev = score[t - 1]
        cands = np.full((3, S), -np.inf)
        cands[0] = prev
        cands[1, 1:] = prev[:-1]
        cands[2, 2:] = np.where(skip[2:], prev[:-2], -np.inf)
        j = cands.argmax(0)
        score[t] = cands[j, states] + logp[t, ext]
        back[t] = states - j
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
    from ..preprocess import NoDigitFound, crop_and_fit

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


# The digit CNN's weight as a second opinion on each reading's digits, chosen on 1,500 validation lines
# (validation writers, training generator; measured with the reader before the shipped one, 86.0% of
# validation lines exact): exact reads 91.3% -> 92.3% at 0.5 (0.25: 92.2%, 1.0: 92.1%); with the
# checker's near misses and prior, 0.5 also leaves fewest lines unsure (docs/arithmetic.md).
# Off by default here: on its own it makes mistakes surer, so at the same false-cross bound more lines
# were unsure (6,000 validation lines: 7.6% -> 9.3%). The checker turns it on with its near misses
# and prior (``arithmetic.check.read_for_verdicts``), where it pays. With the CNN fine-tuned on line
# slices (``slices.py``; 4,000 validation lines, seed 8, prior 5) 0.5 is still best: 6.6% of lines
# unsure against 8.3% at 1.0 and 8.9% at 1.5. With the two shipped readers (same lines, best prior):
# 5.2% at 0.5, 5.7% at 0.3, 6.1% at 0.75 (benchmarks/results/checker_val_cnn_weight_*.json).
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
    symbol ``s`` counts ``(15 p(s)) ** weight``. With a handwriting ``profile`` (issue 15) it is also multiplied by how much
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
    with one class per ``CHARSET`` symbol, ``digitlab train slice-cnn --symbols``)."""
    params = getattr(model, "params", None) or {}
    return CHARSET if params.get("num_classes") == len(CHARSET) else DIGITS


# Test-time augmentation: each line is also read stretched 1.15x (other CTC frames fall on each
# symbol) and with a bolder pen, and the three N-best lists are averaged (a mixture of the three
# readings' distributions; frame probabilities cannot be averaged, the stretched line has more frames).
# Chosen on 2,000 validation lines (validation writers, training generator, seed 555): exact lines
# 88.1% -> 89.1% plain, 78.5% -> 79.6% degraded as in a phone photo (with a third, 0.87x copy: 89.4 /
# 79.4%, not worth a fourth read).
TTA = True


def _stretched(line: np.ndarray, factor: float = 1.15) -> np.ndarray:
    w = int(np.clip(round(line.shape[1] * factor), 16, MAX_WIDTH))
    return np.clip(cv2.resize(line, (w, LINE_HEIGHT), interpolation=cv2.INTER_LINEAR), 0, 1).astype(np.float32)


def _bolder(line: np.ndarray) -> np.ndarray:
    return np.maximum(line, cv2.dilate(line, np.ones((2, 2), np.uint8)) * 0.7).astype(np.float32)


def _merge(nbests: list[list[tuple[str, float]]], keep: int = 8) -> list[tuple[str, float]]:
    """The mean of several N-best distributions over the same line (a reading missing from one counts 0)."""
    total: dict[str, float] = {}
    for nb in nbests:
        for t, p in nb:
            total[t] = total.get(t, 0.0) + p / len(nbests)
    return sorted(total.items(), key=lambda tp: -tp[1])[:keep]


def _nbest_single(model, inks, grammar, beam, tta, propose, plain):
    """N-best lists of one reader (or a ``ReaderEnsemble``, averaged with test-time augmentation)."""
    prepared = [model.prepare(ink) for ink in inks]
    # Test-time augmentation is the CRNN's (its input is a 32-px ink map); other readers read once.
    tta = (TTA if tta is None else tta) and isinstance(primary(model), LineReader)
    n = len(prepared)
    every = prepared + ([_stretched(l) for l in prepared] + [_bolder(l) for l in prepared] if tta and n else [])
    if plain is not None:  # members in order, each on every variant (ReaderEnsemble)
        members = getattr(model, "members", [model])
        rest = every[n:]
        all_logps = (list(plain) + (members[0].frame_log_probs(rest) if rest else [])
                     + [lp for m in members[1:] for lp in m.frame_log_probs(every)])
    else:
        all_logps = model.frame_log_probs(every)
    variants = len(all_logps) // max(1, n)
    per = [[[(t, float(np.exp(lp))) for t, lp in beam_search(all_logps[v * n + j], grammar, beam=beam)]
            for v in range(variants)] for j in range(n)]
    nbests = [_merge(p) if len(p) > 1 else p[0] for p in per]
    if propose is not None:
        for j, nb in enumerate(nbests):
            known = {t for t, _ in nb}
            extra = [t for t in dict.fromkeys(propose(nb)) if t not in known and grammar.accepts(t)] if nb else []
            if extra:
                p = np.mean([np.exp(text_log_probs(all_logps[v * n + j], extra)) for v in range(variants)], axis=0)
                nbests[j] = sorted(nb + [(t, float(q)) for t, q in zip(extra, p)], key=lambda tp: -tp[1])
    return nbests, all_logps[:n]


def _fused(model: FusedReader, frames: list[np.ndarray], texts: list[str]) -> list[tuple[str, float]]:
    """``texts`` scored by the fused reader, best first, on the primary's probability scale."""
    if not texts:
        return []
    score = model.score(frames, texts)
    mass = float(np.exp(text_log_probs(frames[0], texts)).sum())
    p = np.exp(score - score.max())
    p *= mass / p.sum()
    order = np.argsort(-p, kind="stable")
    return [(texts[k], float(p[k])) for k in order]


def _nbest_fused(model: FusedReader, inks, grammar, beam, propose, plain, keep: int = 8):
    """N-best lists of a ``FusedReader``: the union of its members' N-best, scored by all of them."""
    frames = []
    for k, m in enumerate(model.members):
        frames.append(list(plain) if k == 0 and plain is not None else m.frame_log_probs([m.prepare(i) for i in inks]))
    nbests = []
    for j in range(len(inks)):
        line = [f[j] for f in frames]
        texts = list(dict.fromkeys(t for f in line for t, _ in beam_search(f, grammar, beam=beam)))
        nb = _fused(model, line, texts)[:keep]
        if propose is not None and nb:
            known = set(texts)
            extra = [t for t in dict.fromkeys(propose(nb)) if t not in known and grammar.accepts(t)]
            if extra:  # on the scale of the readings kept, which stay as they are
                ref, s = nb[0], model.score(line, [nb[0][0]] + extra)
                p = ref[1] * np.exp(np.clip(s[1:] - s[0], -700, 700))
                nb = sorted(nb + [(t, float(q)) for t, q in zip(extra, p)], key=lambda tp: -tp[1])
        nbests.append(nb)
    return nbests, frames[0]


def read_lines(inks: list[np.ndarray], grammar: Grammar = ARITHMETIC, model=None,
               beam: int = 12, profile=None, digits=False, tta: bool | None = None, propose=None,
               rerank=None, plain: list[np.ndarray] | None = None) -> list[Reading]:
    """Read each line's ink map (1 = ink); symbol spans are in that ink map's columns.

    ``model``: any line reader (``get_line_reader``: PP-OCR, the CRNN, a ``ReaderEnsemble`` or a
    ``FusedReader``; the default reader when None). ``tta`` (default ``TTA``; the CRNN only) also reads
    each line stretched and bolder and averages the N-best lists.
    ``digits`` asks a digit model for a second opinion on each reading's digits (``rescore``; True: the
    shipped CNN, a name: that model; off by default, see ``CNN_WEIGHT``); ``profile`` (a ``ProfileModel``, see ``digitlab
    adapt``) re-ranks each line's readings by how it reads their digits. ``propose`` (N-best -> texts)
    names readings the beam may have pruned; each is scored exactly and joins the N-best (e.g. the
    checker's near misses that add up). ``rerank`` (N-best -> N-best) is applied last, before each
    line's best reading is placed (e.g. the checker's arithmetic prior). ``plain`` (the ``frames`` of an
    earlier reading of the same lines by the same primary reader) saves reading them again.
    """
    model = model or get_line_reader()
    if plain is not None and len(plain) != len(inks):
        raise ValueError(f"plain has {len(plain)} readings for {len(inks)} lines")
    if isinstance(model, FusedReader):
        nbests, logps = _nbest_fused(model, inks, grammar, beam, propose, plain)
    else:
        nbests, logps = _nbest_single(model, inks, grammar, beam, tta, propose, plain)
    geometry = [model.geometry(ink) for ink in inks]
    if digits is True or isinstance(digits, str):
        from ..recognize import get_model

        digits = get_model(None if digits is True else digits)
    digits = None if digits is False else digits
    if profile is not None or digits is not None:
        todo = [j for j, nb in enumerate(nbests) if nb]
        lines = [(inks[j], logps[j], nbests[j], geometry[j]) for j in todo]
        for j, nb in zip(todo, rescore(lines, digits, profile)):
            nbests[j] = nb
    if rerank is not None:
        nbests = [rerank(nb) if nb else nb for nb in nbests]
    out = []
    for logp, nbest, (x0, per) in zip(logps, nbests, geometry):
        if not nbest:
            out.append(Reading(None, 0.0, [], frames=logp))
            continue
        text, prob = nbest[0]
        spans, conf = [], []
        if text:
            for f0, f1, c in align(logp, text):
                spans.append((int(x0 + f0 * per), int(x0 + (f1 + 1) * per)))
                conf.append(round(c, 4))
        out.append(Reading(text, prob, nbest, spans, conf, frames=logp))
    return out


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
    from ..preprocess import load_rgb

    rgb = load_rgb(source, name=name, **({"max_side": max_side} if max_side else {}))
    ink = whole_image_ink(rgb)
    h, w = rgb.shape[:2]
    m = (ink.shape[0] - h) // 2
    line = Line(ink, (0, 0, w, h), [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], 0, (-m, -m))
    return line, Page([line], 0.0, None, (w, h), rgb, np.eye(3))


def read_number(source, name: str = "image", model: LineReader | None = None, max_side: int | None = None,
                profile=None) -> dict:
    """A written number (one line of digits) in any image: text, confidence, alternatives, digit boxes."""
    from ..page import analyse_page
    from ..preprocess import NoDigitFound
    from .decode import NUMBER

    try:
        page = analyse_page(source, name=name, max_side=max_side, columns=False)
    except NoDigitFound:
        page = None
    found = []  # (line, page)
    if page is not None and page.lines:
        # A number is one line: the band with the most writing.
        found.append((max(page.lines, key=lambda l: float(l.ink.sum())), page))
    if page is None or not page.lines or max(page.size) <= WHOLE_IMAGE_SIDE:
        # A small image may be the number itself, cropped tightly: read it whole too, keep the likelier.
        found.append(_whole_image(source, name, max_side))
    model = model or get_line_reader()
    opinion = model.metadata.get("number_digit_opinion", NUMBER_DIGIT_OPINION)
    readings = read_lines([l.ink for l, _ in found], NUMBER, model=model, profile=profile, digits=opinion)
    k = max(range(len(found)), key=lambda i: readings[i].probability if readings[i].text else -1.0)
    (line, page), reading = found[k], readings[k]
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
