"""Handwritten glyphs as tight ink crops (float32, 1 = ink), grouped by character.

Three disjoint sources, so that what trains the reader is never what measures it:

=============  ==================================  =======================  ======================
source         digits                              operators (MDAS split)   use
=============  ==================================  =======================  ======================
``train``      MNIST train (less 5k), optdigits    train                    training the reader
               ``tra``
``val``        MNIST train's 5k held back,          val                      choosing thresholds
               optdigits ``cv``
``heldout``    MNIST test, optdigits ``windep``     test                     benchmarks only
=============  ==================================  =======================  ======================

"=" is built from two real minus strokes of the same source (the operator set has no "=").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..digits.preprocess import tight  # noqa: F401 (its home is preprocess, which synthetic.styles imports too)

SOURCES = ("train", "val", "heldout")
# Operator kinds: the character a line reads as, and how big it is drawn (see linegen / benchmarks).
OP_KINDS = {10: "+", 11: "-", 12: "x", 13: ".", 14: "÷", 15: "/"}
KIND_CHAR = {"+": "+", "-": "-", "x": "*", ".": "*", "÷": "/", "/": "/", "=": "="}


@dataclass
class GlyphBank:
    """Glyph crops by digit (0-9) and by operator kind ("+", "-", "x", ".", "÷", "/", "=")."""

    digits: dict[int, list[np.ndarray]]
    ops: dict[str, list[np.ndarray]]
    source: str = ""

    def digit(self, d: int, rng: np.random.Generator) -> np.ndarray:
        pool = self.digits[d]
        return pool[rng.integers(len(pool))]

    def op(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        pool = self.ops[kind]
        return pool[rng.integers(len(pool))]

    @classmethod
    def load(cls, source: str = "train", data_dir=None, seed: int = 0, max_per_digit: int | None = None,
             styles: float = 0.0) -> "GlyphBank":
        """The glyphs of ``source``; ``styles`` > 0 adds stylised 1s, 4s, 7s and 9s (``digitlab.synthetic.styles``)
        for that multiple of the default share of each class."""
        from ..datasets.mnist import load_mnist, load_optdigits, train_val_split
        from ..synthetic.styles import DEFAULT_SHARE, stylise
        from ..datasets.operators import _raw_operators, make_equals

        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        rng = np.random.default_rng(seed)
        if source == "heldout":
            mnist, opt, op_split = load_mnist("test", data_dir), load_optdigits("windep", data_dir), "test"
        else:
            tr, va = train_val_split(load_mnist("train", data_dir))  # the CNN's own validation split
            mnist = tr if source == "train" else va
            opt = load_optdigits("tra" if source == "train" else "cv", data_dir)
            op_split = source
        digits: dict[int, list[np.ndarray]] = {d: [] for d in range(10)}
        for d in range(10):
            imgs = mnist.images[mnist.labels == d]
            if max_per_digit:
                imgs = imgs[:max_per_digit]
            digits[d] = [tight(im.astype(np.float32) / 255) for im in imgs]
            # optdigits are 32x32 binary bitmaps: soften the staircase the way a scanner would.
            for im in opt.images[opt.labels == d]:
                soft = cv2.GaussianBlur(im.astype(np.float32) / 255, (3, 3), 0.7)
                # Each optdigits writer is worth more than one MNIST digit: there are few of them.
                digits[d].extend([tight(soft)] * (3 if source == "train" else 1))
            if styles > 0 and d in DEFAULT_SHARE:
                base = [g for g in digits[d] if g.size > 1]
                picks = rng.random(len(base)) < min(1.0, DEFAULT_SHARE[d] * styles)
                digits[d].extend(stylise(g, d, rng) for g, p in zip(base, picks) if p)
        raw, labels = _raw_operators(op_split, data_dir)
        ops: dict[str, list[np.ndarray]] = {k: [] for k in [*OP_KINDS.values(), "="]}
        for im, lab in zip(raw, labels):
            ops[OP_KINDS[int(lab)]].append(tight(im.astype(np.float32) / 255))
        minus = [im for im, lab in zip(raw, labels) if OP_KINDS[int(lab)] == "-"]
        ops["="] = [tight(make_equals(minus[rng.integers(len(minus))], minus[rng.integers(len(minus))], rng) / 255)
                    for _ in range(max(200, len(minus)))]
        return cls({d: [g for g in v if g.size > 1] for d, v in digits.items()},
                   {k: [g for g in v if g.size > 1] for k, v in ops.items()}, source)
