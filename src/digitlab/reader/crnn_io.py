"""The CRNN's input and output, without PyTorch: a line band cropped and scaled to 32 px (``prepare_line``),
padded into a batch (``batch_array``), texts as CTC labels (``encode``) and frames read greedily."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..digits.preprocess import NoDigitFound
from . import CHARSET, LINE_HEIGHT

MAX_WIDTH = 1024  # px after normalisation (about 40 symbols)
STRIDE = 4  # columns per output frame


def line_crop(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): where the writing of a line band is.

    The vertical extent is where the ink mass lies (1.5%..98.5% of it by rows), so a stray ruling
    remnant or the tail of a neighbouring line does not decide the scale.
    """
    ink = np.asarray(ink, np.float32)
    if ink.ndim != 2 or ink.size == 0:
        raise NoDigitFound("empty line")
    mass = np.where(ink > 0.25, ink, 0)
    total = float(mass.sum())
    if total < 4:
        raise NoDigitFound("no ink in the line")
    cum = np.cumsum(mass.sum(axis=1)) / total
    y0, y1 = int(np.searchsorted(cum, 0.015)), int(np.searchsorted(cum, 0.985)) + 1
    pad = max(1, int(0.08 * max(4, y1 - y0)))
    y0, y1 = max(0, y0 - pad), min(ink.shape[0], y1 + pad)
    cols = np.nonzero((ink[y0:y1] > 0.25).any(axis=0))[0]
    if len(cols) == 0:
        raise NoDigitFound("no ink in the line")
    xpad = int(0.25 * (y1 - y0))
    return y0, y1, max(0, int(cols[0]) - xpad), min(ink.shape[1], int(cols[-1]) + 1 + xpad)


def prepare_line(ink: np.ndarray) -> np.ndarray:
    """A line band's ink map (1 = ink) -> (32, W) float32: cropped to the writing, 32 px high."""
    y0, y1, x0, x1 = line_crop(ink)
    band = np.asarray(ink, np.float32)[y0:y1, x0:x1]
    scale = LINE_HEIGHT / band.shape[0]
    w = int(np.clip(round(band.shape[1] * scale), 16, MAX_WIDTH))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.clip(cv2.resize(band, (w, LINE_HEIGHT), interpolation=interp), 0, 1).astype(np.float32)


def batch_array(lines: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Pad prepared lines to one width; returns the (N,1,32,W) input and the frame count of each line."""
    w = max(l.shape[1] for l in lines)
    w = int(math.ceil(w / STRIDE) * STRIDE)
    x = np.zeros((len(lines), 1, LINE_HEIGHT, w), np.float32)
    for i, l in enumerate(lines):
        x[i, 0, :, : l.shape[1]] = l
    return (x - 0.1) / 0.3, [max(1, l.shape[1] // STRIDE) for l in lines]


def encode(text: str) -> list[int]:
    return [CHARSET.index(c) + 1 for c in text]


def greedy(logp: np.ndarray) -> str:
    best = logp.argmax(-1)
    out, prev = [], 0
    for k in best:
        if k != prev and k != 0:
            out.append(CHARSET[k - 1])
        prev = k
    return "".join(out)
