"""The training side of the learned "is this a digit?" model (``digitlab.digits.rejectnet``).

``training_set`` draws its pictures, training side only: MNIST train without the CNN's validation 5k
rendered as user images, optdigits ``tra``, degraded and marker-thick digits, and non-digits, half
from ``renders.non_digit_image`` and half from ``varied_non_digit`` (a broader generator: filled
shapes, blobs, dots, hatching, scribbles, patterns, photo-like fields, mixtures). ``train_reject``
(``digitlab train reject``) fits the model on them and saves it.
"""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
from PIL import Image

from ..digits.rejectnet import RejectModel
from ..errors import DigitlabError


def _encode(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """An ink map (1 = ink) as a user's picture: random paper and pen colours, noise, PNG or JPEG."""
    paper = rng.uniform(0.75, 1.0, 3)
    pen = rng.uniform(0.0, 0.3, 3)
    if rng.random() < 0.3:
        paper, pen = 1 - paper, 1 - pen
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    rgb += rng.normal(0, rng.uniform(0.0, 0.04), rgb.shape)
    buf = io.BytesIO()
    img = Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.5:
        img.save(buf, "JPEG", quality=int(rng.integers(60, 95)))
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def _shape(ink: np.ndarray, rng: np.random.Generator, s: int, scale: tuple[float, float] = (0.08, 0.4)) -> None:
    """Draw one filled shape (ellipse, rectangle, triangle, star, polygon, thick ring) into ``ink``."""
    c = (int(rng.uniform(0.15, 0.85) * s), int(rng.uniform(0.15, 0.85) * s))
    a = rng.uniform(*scale) * s
    kind = rng.integers(6)
    if kind == 0:
        cv2.ellipse(ink, c, (int(a), int(a * rng.uniform(0.45, 1.0))), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    elif kind == 1:
        box = cv2.boxPoints(((c[0], c[1]), (a * 2, a * 2 * rng.uniform(0.4, 1.0)), float(rng.uniform(0, 180))))
        cv2.fillPoly(ink, [box.astype(np.int32)], 1.0)
    elif kind == 2:
        cv2.fillPoly(ink, [(np.array(c) + rng.uniform(-a, a, (3, 2))).astype(np.int32)], 1.0)
    elif kind == 3:  # star or cog
        n = int(rng.integers(4, 9))
        t = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False) + rng.uniform(0, np.pi)
        r = np.where(np.arange(2 * n) % 2 == 0, a, a * rng.uniform(0.35, 0.8))
        pts = np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1).astype(np.int32)
        cv2.fillPoly(ink, [pts], 1.0)
    elif kind == 4:  # any polygon, not necessarily convex
        n = int(rng.integers(4, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = a * rng.uniform(0.4, 1.0, n)
        cv2.fillPoly(ink, [np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1).astype(np.int32)], 1.0)
    else:  # a ring with a wall too thick for a pen's 0
        cv2.circle(ink, c, int(a), 1.0, -1)
        cv2.circle(ink, c, int(a * rng.uniform(0.15, 0.45)), 0.0, -1)


def _varied_ink(rng: np.random.Generator, s: int) -> np.ndarray:
    from ..synthetic.renders import NON_DIGIT_KINDS, _non_digit_ink

    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    style = int(rng.integers(9))
    ink = np.zeros((s, s), np.float32)
    if style == 0:  # several filled shapes, any size
        for _ in range(int(rng.integers(1, 6))):
            _shape(ink, rng, s)
    elif style == 1:  # one big shape, perhaps with a bite out of it
        _shape(ink, rng, s, (0.25, 0.45))
        if rng.random() < 0.5:
            cut = np.zeros_like(ink)
            _shape(cut, rng, s, (0.08, 0.25))
            ink = np.clip(ink - cut, 0, 1)
    elif style == 2:  # irregular blobs: smooth noise, thresholded high
        field = cv2.GaussianBlur(rng.random((s, s)).astype(np.float32), (0, 0), rng.uniform(0.06, 0.2) * s)
        ink = (field > np.quantile(field, rng.uniform(0.55, 0.9))).astype(np.float32)
    elif style == 3:  # dots: a lattice or a scatter
        r = max(1, int(rng.uniform(0.01, 0.05) * s))
        if rng.random() < 0.5:
            n = int(rng.integers(3, 9))
            for v in np.linspace(0.15, 0.85, n):
                for u in np.linspace(0.15, 0.85, n):
                    cv2.circle(ink, (int(u * s), int(v * s)), r, 1.0, -1)
        else:
            for _ in range(int(rng.integers(8, 60))):
                cv2.circle(ink, tuple(int(v) for v in rng.uniform(0.05, 0.95, 2) * s), r, 1.0, -1)
    elif style == 4:  # hatching, cross-hatching or a dense scribble: many strokes
        t = max(1, int(rng.uniform(0.01, 0.04) * s))
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 3))):
                ang, n = rng.uniform(0, np.pi), int(rng.integers(5, 14))
                for off in np.linspace(-0.4, 0.4, n) * s:
                    d = np.array([np.cos(ang), np.sin(ang)]) * s
                    c = np.array([s / 2, s / 2]) + off * np.array([-np.sin(ang), np.cos(ang)])
                    cv2.line(ink, tuple((c - d).astype(int)), tuple((c + d).astype(int)), 1.0, t)
            ink *= np.asarray(_mask(rng, s), np.float32)
        else:
            pts = (rng.uniform(0.1, 0.9, (int(rng.integers(12, 30)), 2)) * s).astype(np.int32)
            cv2.polylines(ink, [pts], False, 1.0, t)
    elif style == 5:  # a pattern seen through a shape
        ink = _non_digit_ink(NON_DIGIT_KINDS[int(rng.integers(len(NON_DIGIT_KINDS)))], rng, s) * _mask(rng, s)
    elif style == 6:  # smooth photo-like grey field
        field = cv2.GaussianBlur(rng.random((s, s)).astype(np.float32), (0, 0), rng.uniform(0.03, 0.15) * s)
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        ink = field ** rng.uniform(0.5, 2.0) * rng.uniform(0.5, 1.0)
    elif style == 7:  # shapes filled with texture or shading
        for _ in range(int(rng.integers(1, 4))):
            _shape(ink, rng, s, (0.15, 0.4))
        fill = rng.random((s, s)).astype(np.float32) if rng.random() < 0.5 else \
            np.clip(xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1) + 0.5, 0, 1)
        ink = ink * (0.3 + 0.7 * fill)
    else:  # a generator picture with shapes on top
        ink = _non_digit_ink(NON_DIGIT_KINDS[int(rng.integers(len(NON_DIGIT_KINDS)))], rng, s)
        for _ in range(int(rng.integers(1, 4))):
            _shape(ink, rng, s)
    if rng.random() < 0.3:  # soft edges (a brush, a blurry photo)
        ink = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.5, 0.02 * s + 0.6))
    return np.clip(ink, 0, 1).astype(np.float32)


def _mask(rng: np.random.Generator, s: int) -> np.ndarray:
    m = np.zeros((s, s), np.float32)
    _shape(m, rng, s, (0.35, 0.5))
    return m


def varied_non_digit(rng: np.random.Generator, size: tuple[int, int] = (40, 200)) -> bytes:
    """A non-digit picture from a broader family than ``renders.non_digit_image`` (PNG or JPEG bytes)."""
    return _encode(_varied_ink(rng, int(rng.integers(size[0], size[1] + 1))), rng)


def marker_digit(digit: np.ndarray, rng: np.random.Generator, upscale: int = 84) -> np.ndarray:
    """An MNIST-format digit drawn with a marker: 2-4 px thicker at 3x scale, sometimes blurred and thresholded."""
    ink = cv2.resize(digit.astype(np.float32) / 255.0, (upscale, upscale), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    px = int(rng.integers(2, 5))
    ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2))
    if rng.random() < 0.5:
        ink = (cv2.GaussianBlur(ink, (0, 0), 1.5) > 0.5).astype(np.float32)
    return ((1 - np.pad(ink, upscale // 8)) * 255).astype(np.uint8)


def training_set(data_dir=None, digits: int = 20000, degraded: int = 1500, non_digits: int = 12000,
                 seed: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Preprocessed 28x28 pictures (float32) and labels (0 digit, 1 not a digit), training side only.

    ``digits`` MNIST train digits (the CNN's validation 5k excluded) rendered as user images;
    optdigits ``tra`` (all its 1,934 bitmaps, fewer when ``digits`` < 20000); ``degraded`` digits for each of
    thick, thin, binarised, slanted and marker pens; ``non_digits`` pictures, half from
    ``renders.non_digit_image`` (seed 100 + ``seed``), half from :func:`varied_non_digit`.
    """
    from tqdm import tqdm

    from ..datasets.mnist import load_mnist, optdigits_as_mnist, load_optdigits, subset, train_val_split
    from ..errors import DataError
    from ..digits.preprocess import NoDigitFound, preprocess_digit
    from ..synthetic.renders import NON_DIGIT_KINDS, degrade, non_digit_image, render_bitmap, render_user_image

    rng = np.random.default_rng(100 + seed)  # 0 and 1 are the benchmark's and the calibration's seeds
    train = train_val_split(load_mnist("train", data_dir))[0]  # never the validation 5k
    mn = subset(train, digits + 5 * degraded, seed=100 + seed)
    pool = mn.images[digits:]
    try:
        tra = load_optdigits("tra", data_dir)
        tra = subset(tra, max(1, int(len(tra) * min(1.0, digits / 20000))), seed=seed)
        pool = np.concatenate([pool, subset(optdigits_as_mnist("tra", data_dir), max(1, degraded // 3), seed=seed).images])
    except DataError:
        tra = None
    kinds = ("dilate", "erode", "binarise", "slant", "marker")
    n_gen = non_digits // 2

    def pictures():  # drawn one at a time (the progress bar counts them), always in this order
        for im in mn.images[:digits]:
            yield 0, render_user_image(im, rng)
        for im in [] if tra is None else tra.images:
            yield 0, render_bitmap(im, rng)
        order = rng.permutation(len(pool))
        for j, kind in enumerate(kinds):
            for im in pool[order[j::5]][:degraded]:
                yield 0, marker_digit(im, rng) if kind == "marker" else degrade(im, kind, rng)
        for i in range(n_gen):
            yield 1, non_digit_image(NON_DIGIT_KINDS[i % len(NON_DIGIT_KINDS)], rng)
        for _ in range(non_digits - n_gen):
            yield 1, varied_non_digit(rng)

    total = (min(digits, len(mn)) + (0 if tra is None else len(tra))
             + sum(min(degraded, len(range(j, len(pool), 5))) for j in range(len(kinds))) + non_digits)
    X, y, no_ink = [], [], 0
    for label, src in tqdm(pictures(), total=total, desc="reject data", disable=not progress, mininterval=1):
        try:
            X.append(preprocess_digit(src, reject=False))
            y.append(label)
        except NoDigitFound:  # no ink at all: refused before any model, nothing to learn
            no_ink += 1
    X, y = np.stack(X).astype(np.float32), np.array(y, np.int64)
    info = {"digits": int((y == 0).sum()), "non_digits": int((y == 1).sum()), "no_ink_skipped": no_ink,
            "mnist_train": digits, "optdigits_tra": 0 if tra is None else len(tra), "degraded_per_kind": degraded,
            "non_digit_seed": 100 + seed, "non_digit_generator": n_gen, "non_digit_varied": non_digits - n_gen}
    return X, y, info


def train_reject(out, data_dir=None, epochs: float = 8, seed: int = 0, digits: int = 20000, degraded: int = 1500,
                 non_digits: int = 12000, width: int = 16, progress: bool = True) -> RejectModel:
    """``digitlab train reject``: build the training set, fit the tiny CNN, save it (``.dlm``)."""
    import os
    import platform

    import torch

    if os.environ.get("DIGITLAB_THREADS"):
        torch.set_num_threads(int(os.environ["DIGITLAB_THREADS"]))
    if min(digits, non_digits) < 10 or degraded < 0 or epochs <= 0:
        raise DigitlabError("reject training needs at least 10 digits and 10 non-digits, degraded >= 0, epochs > 0")
    t0 = time.perf_counter()
    X, y, info = training_set(data_dir, digits, degraded, non_digits, seed, progress)
    data_seconds = time.perf_counter() - t0
    # 5% held out of the training side, only to watch the fit (the bound is calibrated elsewhere).
    order = np.random.default_rng(seed).permutation(len(X))
    hold, fit = order[: len(X) // 20], order[len(X) // 20 :]
    model = RejectModel(width=width, epochs=epochs, seed=seed)
    t1 = time.perf_counter()
    model.fit(X[fit], y[fit], X_val=X[hold], y_val=y[hold], progress=progress)
    model.metadata.update({"data": info, "data_seconds": round(data_seconds, 1),
                           "fit_seconds": round(time.perf_counter() - t1, 1),
                           "versions": {"torch": torch.__version__, "python": platform.python_version()},
                           "threads": torch.get_num_threads(),
                           "how": f"digitlab train reject --epochs {epochs} --seed {seed}"})
    model.save(out)
    return model
