"""Render MNIST digits as the images real users send, and degrade them like other pens and scanners.

Used by the tests and the benchmarks: a fixed seed gives the same images every time.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def render_user_image(digit: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = (40, 200),
                      invert: bool | None = None, jpeg: bool | None = None, colour: bool = True) -> bytes:
    """An MNIST digit (28x28 uint8, white on black) as a PNG/JPEG of random size, margins and colours."""
    side = int(rng.integers(size[0], size[1] + 1))
    ink = digit.astype(np.float32) / 255.0
    # Crop to the ink and add a random margin on every side, so the digit is off-centre.
    ys, xs = np.nonzero(ink > 0.05)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = ink.shape
    pads = rng.uniform(0.1, 0.6, 4) * max(h, w)
    ink = np.pad(ink, ((int(pads[0]), int(pads[1])), (int(pads[2]), int(pads[3]))))
    scale = side / max(ink.shape)
    ink = cv2.resize(ink, (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))),
                     interpolation=cv2.INTER_CUBIC).clip(0, 1)
    paper = rng.uniform(0.75, 1.0, 3) if colour else np.full(3, rng.uniform(0.8, 1.0))
    pen = rng.uniform(0.0, 0.3, 3) if colour else np.full(3, rng.uniform(0.0, 0.2))
    if invert if invert is not None else rng.random() < 0.3:
        paper, pen = 1 - paper, 1 - pen
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    rgb += rng.normal(0, 0.02, rgb.shape)
    img = Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))
    buf = io.BytesIO()
    if jpeg if jpeg is not None else rng.random() < 0.5:
        img.save(buf, "JPEG", quality=int(rng.integers(60, 95)))
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def degrade(digit: np.ndarray, kind: str, rng: np.random.Generator, upscale: int = 84) -> np.ndarray:
    """Degrade an MNIST digit at a user-image resolution; returns uint8 greyscale, dark ink on white.

    kinds: ``binarise`` (thresholded at 16x16 then upscaled: a cheap scanner), ``dilate`` / ``erode``
    (a thicker or thinner pen: 1-2 px at the working resolution, 3x MNIST's), ``slant`` (+-15 degrees shear).
    """
    ink = cv2.resize(digit.astype(np.float32) / 255.0, (upscale, upscale), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if kind == "binarise":
        small = cv2.resize(digit.astype(np.float32) / 255.0, (16, 16), interpolation=cv2.INTER_AREA)
        ink = cv2.resize((small > 0.35).astype(np.float32), (upscale, upscale), interpolation=cv2.INTER_NEAREST)
    elif kind in ("dilate", "erode"):
        px = int(rng.integers(1, 3))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2)
        ink = cv2.dilate(ink, k) if kind == "dilate" else cv2.erode(ink, k)
    elif kind == "slant":
        angle = rng.uniform(-15, 15) * np.pi / 180
        M = np.float32([[1, np.tan(angle), -0.5 * upscale * np.tan(angle)], [0, 1, 0]])
        ink = cv2.warpAffine(ink, M, (upscale, upscale), flags=cv2.INTER_LINEAR)
    elif kind != "none":
        raise ValueError(f"unknown degradation {kind!r}")
    ink = np.pad(ink, upscale // 8)
    return ((1 - ink.clip(0, 1)) * 255).astype(np.uint8)
