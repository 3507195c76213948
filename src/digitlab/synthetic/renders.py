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
    (a thicker or thinner pen: 1-2 px at the working resolution, 3x MNIST's), ``slant`` (+-15 degrees shear);
    beyond the study's four: ``marker`` (a broad pen: 3-5 px), ``stretch`` (width 0.6-0.75 or 1.35-1.6
    times the height's share: tall thin or squat hands).
    """
    ink = cv2.resize(digit.astype(np.float32) / 255.0, (upscale, upscale), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if kind == "binarise":
        small = cv2.resize(digit.astype(np.float32) / 255.0, (16, 16), interpolation=cv2.INTER_AREA)
        ink = cv2.resize((small > 0.35).astype(np.float32), (upscale, upscale), interpolation=cv2.INTER_NEAREST)
    elif kind in ("dilate", "erode"):
        px = int(rng.integers(1, 3))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2)
        ink = cv2.dilate(ink, k) if kind == "dilate" else cv2.erode(ink, k)
    elif kind == "marker":
        px = int(rng.integers(3, 6))
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2))
    elif kind == "stretch":
        f = rng.uniform(0.6, 0.75) if rng.random() < 0.5 else rng.uniform(1.35, 1.6)
        ink = cv2.resize(ink, (max(8, int(round(upscale * f))), upscale), interpolation=cv2.INTER_LINEAR)
    elif kind == "slant":
        angle = rng.uniform(-15, 15) * np.pi / 180
        M = np.float32([[1, np.tan(angle), -0.5 * upscale * np.tan(angle)], [0, 1, 0]])
        ink = cv2.warpAffine(ink, M, (upscale, upscale), flags=cv2.INTER_LINEAR)
    elif kind != "none":
        raise ValueError(f"unknown degradation {kind!r}")
    ink = np.pad(ink, upscale // 8)
    return ((1 - ink.clip(0, 1)) * 255).astype(np.uint8)


def render_bitmap(bitmap: np.ndarray, rng: np.random.Generator, **kw) -> bytes:
    """A binary bitmap (e.g. optdigits 32x32, 255 = ink) as a paper-like user image (``render_user_image``).

    The bitmap is scaled up 4x with a smooth kernel and blurred, so the staircase of the 32x32 grid
    becomes a pen stroke's soft edge before the usual size, margins, colours, noise and JPEG.
    """
    ink = bitmap.astype(np.float32) / 255.0
    up = cv2.resize(ink, (ink.shape[1] * 4, ink.shape[0] * 4), interpolation=cv2.INTER_LINEAR)
    up = cv2.GaussianBlur(up, (0, 0), 1.5)
    up = up / max(float(up.max()), 1e-6)
    return render_user_image((up.clip(0, 1) * 255).astype(np.uint8), rng, **kw)


NON_DIGIT_KINDS = ("noise", "blobs", "grids", "stripes", "checkerboards", "gradients")


def _non_digit_ink(kind: str, rng: np.random.Generator, side: int) -> np.ndarray:
    """Ink map (1 = ink) of one non-digit picture, ``side`` x ``side``."""
    s = side
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    if kind == "noise":
        style = rng.integers(3)
        if style == 0:  # white / grey noise everywhere
            ink = rng.random((s, s)).astype(np.float32)
        elif style == 1:  # salt and pepper
            ink = (rng.random((s, s)) < rng.uniform(0.05, 0.5)).astype(np.float32)
        else:  # blotchy noise (blurred, thresholded)
            ink = cv2.GaussianBlur(rng.random((s, s)).astype(np.float32), (0, 0), rng.uniform(1, 4))
            ink = (ink > np.median(ink)).astype(np.float32)
        return ink
    if kind == "blobs":
        ink = np.zeros((s, s), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            c = (int(rng.uniform(0.25, 0.75) * s), int(rng.uniform(0.25, 0.75) * s))
            a = rng.uniform(0.12, 0.35) * s
            axes = (int(a), int(a * rng.uniform(0.5, 1.0)))
            if rng.random() < 0.5:
                cv2.ellipse(ink, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            else:
                pts = (np.array(c) + rng.uniform(-a, a, (int(rng.integers(3, 7)), 2))).astype(np.int32)
                cv2.fillPoly(ink, [cv2.convexHull(pts)], 1.0)
        return ink
    if kind == "grids":
        ink = np.zeros((s, s), np.float32)
        n, m = int(rng.integers(3, 9)), int(rng.integers(3, 9))
        t = max(1, int(rng.uniform(0.005, 0.03) * s))
        lo, hi = rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)
        for v in np.linspace(lo, hi, n):
            ink[:, max(0, int(v * s) - t // 2) : int(v * s) + t - t // 2] = 1
        for v in np.linspace(lo, hi, m):
            ink[max(0, int(v * s) - t // 2) : int(v * s) + t - t // 2, :] = 1
        return ink
    if kind == "stripes":
        n = int(rng.integers(3, 10))
        angle = rng.uniform(0, np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        duty = rng.uniform(0.3, 0.6)
        ink = ((u * n) % 1.0 < duty).astype(np.float32)
        return ink
    if kind == "checkerboards":
        n = int(rng.integers(4, 11))
        ink = (((xx * n).astype(int) + (yy * n).astype(int)) % 2).astype(np.float32)
        if rng.random() < 0.5:
            M = cv2.getRotationMatrix2D((s / 2, s / 2), float(rng.uniform(-30, 30)), 1.0)
            ink = cv2.warpAffine(ink, M, (s, s), flags=cv2.INTER_NEAREST)
        return ink
    if kind == "gradients":
        if rng.random() < 0.5:
            angle = rng.uniform(0, 2 * np.pi)
            ink = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) + 0.5
        else:
            c = rng.uniform(0.2, 0.8, 2)
            ink = 1 - np.hypot(xx - c[0], yy - c[1]) / rng.uniform(0.5, 1.0)
        return np.clip(ink, 0, 1).astype(np.float32) * rng.uniform(0.6, 1.0)
    raise ValueError(f"unknown non-digit kind {kind!r}; choose from {', '.join(NON_DIGIT_KINDS)}")


def non_digit_image(kind: str, rng: np.random.Generator, size: tuple[int, int] = (40, 200)) -> bytes:
    """A picture that is not a digit, as a user would send it: PNG bytes, random size and colours.

    kinds: ``noise`` (grey, salt-and-pepper or blotchy), ``blobs`` (1-3 filled ellipses or convex
    polygons), ``grids`` (3-8 lines each way), ``stripes`` (3-9 bars at any angle), ``checkerboards``
    (4-10 squares a side, sometimes rotated), ``gradients`` (linear or radial shading).
    """
    side = int(rng.integers(size[0], size[1] + 1))
    ink = _non_digit_ink(kind, rng, side)
    paper = rng.uniform(0.75, 1.0, 3)
    pen = rng.uniform(0.0, 0.3, 3)
    if rng.random() < 0.3:
        paper, pen = 1 - paper, 1 - pen
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    rgb += rng.normal(0, 0.02, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()
