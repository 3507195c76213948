"""Read line images with the shipped line reader: N-best readings under a grammar, symbol positions."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .crnn import LINE_HEIGHT, MAX_WIDTH, LineReader
from .decode import ARITHMETIC, Grammar, align, beam_search, text_log_probs
from .rescore import rescore


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
        (validation lines: with the sum, the verdict bounds left 21.7% of lines unsure; with the mean 3.7%).
        A reading with a symbol a member never learnt (a parenthesis, for the CRNNs) is the mean of the others."""
        total, weight = np.zeros(len(texts)), np.zeros(len(texts))
        for m, w, f in zip(self.members, self.weights, frames):
            can = np.array([set(t) <= set(getattr(m, "charset", t)) for t in texts], bool)  # parentheses: PP-OCR's
            if w and can.any():
                total += w * np.where(can, text_log_probs(f, texts), 0.0)
                weight += w * can
        return total / np.maximum(weight, 1e-12)


def primary(model):
    """A reader's own network: the primary member of an ensemble, or the reader itself."""
    return getattr(model, "primary", model)


DEFAULT_READER = "ppocr"


def get_line_reader(name_or_path=None, ensemble: bool = True):
    """The line reader by name or path; by default PP-OCRv6 (``ppocr.py``) fused with the partners
    its settings name (``weights/ppocr.json``: ``partners``). A CRNN file (``line_reader``) comes with the
    partners its file names. ``ensemble=False``: the reader alone."""
    from ..errors import ModelError
    from ..models import get_model
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
    from ..models import get_model

    members = [reader]
    for name in names:
        member = get_model(name)
        if not isinstance(member, LineReader):
            raise ModelError(f"{name}, named as a partner line reader, is not a line-reader model")
        members.append(member)
    return ReaderEnsemble(members) if len(members) > 1 else reader


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
    shipped CNN, a name: that model; off by default, see ``rescore.CNN_WEIGHT``); ``profile`` (a ``ProfileModel``, see ``digitlab
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
    slash = model.metadata.get("slash")
    if slash and slash.get("weight") and grammar.name in slash.get("grammars", ()):  # by its lean (``slash``)
        from .slash import slash_rescore

        nbests = [slash_rescore(ink, lp, nb, g, slash) for ink, lp, nb, g in zip(inks, logps, nbests, geometry)]
    if digits is True or isinstance(digits, str):
        from ..models import get_model

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
