"""Symbols for arithmetic: digits 0-9 (MNIST) and + − × · ÷ / = (MDAS operator set, "=" built).

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

from .errors import DataError
from .preprocess import NoDigitFound, preprocess_mnist_like

OPERATORS = {  # MDAS folder -> (label, ASCII for expressions, glyph shown to people)
    "addition_plus": (10, "+", "+"),
    "subtraction_minus": (11, "-", "−"),
    "multiplication_cross": (12, "*", "×"),
    "multiplication_dot": (13, "*", "·"),
    "division_obelus": (14, "/", "÷"),
    "division_slash": (15, "/", "/"),
}
EQUALS = 16
NUM_CLASSES = 17
ASCII = [str(d) for d in range(10)] + [a for _, a, _ in OPERATORS.values()] + ["="]
GLYPH = [str(d) for d in range(10)] + [g for _, _, g in OPERATORS.values()] + ["="]
ZIP_NAME = "mdas_symbols_v1.zip"


def find_zip(data_dir=None) -> Path:
    from .data import cache_dir

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


def load_symbols(split: str = "train", data_dir=None, n_digits: int | None = None, equals: int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Operators (+ built "=") and MNIST digits for a split, normalised the MNIST way: (N,28,28) float32."""
    from .data import load_mnist, subset

    rng = np.random.default_rng(seed)
    ops, op_labels = _raw_operators(split, data_dir)
    minus = [im for im, lab in zip(ops, op_labels) if lab == OPERATORS["subtraction_minus"][0]]
    n_eq = equals if equals is not None else int(np.bincount(op_labels).max())
    eq = [make_equals(minus[rng.integers(len(minus))], minus[rng.integers(len(minus))], rng) for _ in range(n_eq)]
    X, y = [], []
    for im, lab in [*zip(ops, op_labels), *((e, EQUALS) for e in eq)]:
        try:
            X.append(preprocess_mnist_like(im))
            y.append(lab)
        except NoDigitFound:
            continue  # a blank image in the set
    mnist_split = "test" if split == "test" else "train"
    digits = load_mnist(mnist_split, data_dir)
    if split == "val":
        digits = subset(digits, n_digits or 1000, seed=seed + 1)
    elif n_digits:
        digits = subset(digits, n_digits, seed=seed)
    X = np.concatenate([np.stack(X), digits.images.astype(np.float32) / 255])
    y = np.concatenate([np.asarray(y), digits.labels])
    return X.astype(np.float32), y.astype(np.int64)


def train_symbol_model(data_dir=None, out=None, epochs: float = 8, n_digits: int = 30000, repeat_ops: int = 3,
                       seed: int = 0, progress: bool = True):
    """Train the 17-class symbol CNN; operators are repeated so each class is about as common as a digit."""
    import time

    from .models.cnn import CNNClassifier

    X, y = load_symbols("train", data_dir, n_digits=n_digits, seed=seed)
    ops = y >= 10
    X = np.concatenate([X[~ops], *([X[ops]] * repeat_ops)])
    y = np.concatenate([y[~ops], *([y[ops]] * repeat_ops)])
    Xv, yv = load_symbols("val", data_dir, n_digits=1000, seed=seed)
    model = CNNClassifier(width=32, epochs=epochs, num_classes=NUM_CLASSES, seed=seed)
    t0 = time.perf_counter()
    model.fit(X, y, X_val=Xv, y_val=yv, progress=progress)
    fit_s = time.perf_counter() - t0
    Xt, yt = load_symbols("test", data_dir, n_digits=None, seed=seed + 7)
    pred = model.predict(Xt)
    is_op = yt >= 10
    model.metadata.update({
        "fit_seconds": round(fit_s, 1), "classes": ASCII, "glyphs": GLYPH,
        "test_accuracy_digits": float((pred[~is_op] == yt[~is_op]).mean()),
        "test_accuracy_operators": float((pred[is_op] == yt[is_op]).mean()),
        "operator_test_n": int(is_op.sum()),
        "data": "MNIST digits + MDAS Symbol Dataset operators (MIT, (c) 2024 Jason MacLeod); '=' built from two minus signs",
    })
    if out:
        model.save(out)
    return model
