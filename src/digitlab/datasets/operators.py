"""Handwritten operators for arithmetic: + − × · ÷ / (MDAS operator set) and a built "=".

The MDAS Symbol Dataset (MIT licence, (c) 2024 Jason MacLeod) has no "=": we build each "=" from
two real minus-sign images of the same split, stacked with a random gap, horizontal offset and
length, so every "=" is made of genuine handwritten strokes.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import DataError

OPERATORS = {  # MDAS folder -> (label, ASCII for expressions, glyph shown to people)
    "addition_plus": (10, "+", "+"),
    "subtraction_minus": (11, "-", "−"),
    "multiplication_cross": (12, "*", "×"),
    "multiplication_dot": (13, "*", "·"),
    "division_obelus": (14, "/", "÷"),
    "division_slash": (15, "/", "/"),
}
ZIP_NAME = "mdas_symbols_v1.zip"


def find_zip(data_dir=None) -> Path:
    from .mnist import cache_dir

    bases = [Path(p) for p in (data_dir, os.environ.get("DIGITLAB_DATA")) if p] + [cache_dir()]
    for base in bases:
        for cand in (base / "mdas_symbols" / ZIP_NAME, base / ZIP_NAME):
            if cand.is_file():
                return cand
    raise DataError(f"{ZIP_NAME} not found; put it in DIR/mdas_symbols/ and pass --data-dir DIR or set DIGITLAB_DATA")


def _raw_operators(split: str, data_dir=None) -> tuple[list[np.ndarray], np.ndarray]:
    path = find_zip(data_dir)
    images, labels = [], []
    try:
        with zipfile.ZipFile(path) as z:
            for name in sorted(z.namelist()):
                parts = name.split("/")
                if len(parts) < 4 or parts[-3] != split or parts[-2] not in OPERATORS or not name.endswith(".png"):
                    continue
                arr = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L"))
                images.append(arr)
                labels.append(OPERATORS[parts[-2]][0])
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if not images:
        raise DataError(f"{path}: no operator images for split {split!r}")
    return images, np.asarray(labels)


def make_equals(minus_a: np.ndarray, minus_b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stack two real minus strokes into an "=" (white on black, any size)."""
    def crop(a):
        ys, xs = np.nonzero(a > 30)
        return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)

    a, b = crop(minus_a), crop(minus_b)
    width = max(a.shape[1], b.shape[1])
    b = cv2.resize(b, (max(2, int(b.shape[1] * rng.uniform(0.8, 1.2))), b.shape[0]))
    gap = int(rng.uniform(0.2, 0.6) * width)
    offset = int(rng.uniform(-0.15, 0.15) * width)
    h = a.shape[0] + gap + b.shape[0]
    w = max(a.shape[1], b.shape[1] + abs(offset)) + abs(offset) + 2
    canvas = np.zeros((h + 4, w + 4), np.float32)
    xa = 2 + max(0, -offset)
    canvas[2 : 2 + a.shape[0], xa : xa + a.shape[1]] = a
    xb = 2 + max(0, offset)
    canvas[2 + a.shape[0] + gap : 2 + h, xb : xb + b.shape[1]] = np.maximum(
        canvas[2 + a.shape[0] + gap : 2 + h, xb : xb + b.shape[1]], b)
    return canvas
