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


# -- arithmetic worksheets -------------------------------------------------------------------------
class SymbolBank:
    """Handwritten symbols to compose lines from: MNIST digits and MDAS operators (28x28 frames)."""

    def __init__(self, split: str = "test", data_dir=None, seed: int = 0) -> None:
        from .data import load_mnist
        from .symbols import EQUALS, OPERATORS, _raw_operators, make_equals

        rng = np.random.default_rng(seed)
        digits = load_mnist("test" if split == "test" else "train", data_dir)
        self.digits = {d: digits.images[digits.labels == d] for d in range(10)}
        ops, labels = _raw_operators(split, data_dir)
        self.ops = {lab: [im for im, l in zip(ops, labels) if l == lab] for lab in set(labels.tolist())}
        minus = self.ops[OPERATORS["subtraction_minus"][0]]
        self.ops[EQUALS] = [self._frame(make_equals(minus[rng.integers(len(minus))], minus[rng.integers(len(minus))], rng))
                            for _ in range(200)]
        glyph_to_label = {g: lab for lab, _, g in OPERATORS.values()}
        glyph_to_label["="] = EQUALS
        self.glyph_to_label = glyph_to_label

    @staticmethod
    def _frame(eq: np.ndarray) -> np.ndarray:
        # A built "=" as wide as a minus sign in its 28x28 frame.
        h, w = eq.shape
        s = 18 / max(h, w)
        small = cv2.resize(eq, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        out = np.zeros((28, 28), np.float32)
        y, x = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
        out[y : y + small.shape[0], x : x + small.shape[1]] = small
        return out.clip(0, 255).astype(np.uint8)

    def glyph(self, ch: str, rng: np.random.Generator) -> np.ndarray:
        if ch.isdigit():
            pool = self.digits[int(ch)]
        else:
            pool = self.ops[self.glyph_to_label[ch]]
        return np.asarray(pool[rng.integers(len(pool))])


def random_problem(rng: np.random.Generator, wrong: bool) -> tuple[str, str]:
    """(glyph string as written, ASCII expression) for a line like 12+7=19, maybe with a wrong answer."""
    op = rng.choice(["+", "−", "×", "·", "÷", "/"])
    a, b = int(rng.integers(1, 100)), int(rng.integers(1, 20 if op in "×·" else 100))
    if op in "÷/":
        b = int(rng.integers(1, 13))
        a = b * int(rng.integers(1, 13))
        value = a // b
    elif op == "−":
        a, b = max(a, b), min(a, b)
        value = a - b
    elif op in "×·":
        value = a * b
    else:
        value = a + b
    answer = value
    if wrong:
        answer = value + int(rng.choice([-1, 1]) * rng.integers(1, 11))
        if answer < 0:
            answer = value + int(rng.integers(1, 11))
    ascii_op = {"+": "+", "−": "-", "×": "*", "·": "*", "÷": "/", "/": "/"}[op]
    return f"{a}{op}{b}={answer}", f"{a}{ascii_op}{b}={answer}"


def render_line(glyphs: str, bank: SymbolBank, rng: np.random.Generator, scale: float = 1.6) -> np.ndarray:
    """A line of handwriting (ink: 1 = ink) from symbol images placed left to right."""
    pieces, prev_digit = [], False
    for ch in glyphs:
        img = bank.glyph(ch, rng).astype(np.float32) / 255
        digit = ch.isdigit()
        # Digits of one number sit close (sometimes touching); operators get some room.
        gap = int(rng.integers(-5, 1)) if digit and prev_digit else int(rng.integers(0, 5))
        if pieces and gap < 0:
            prev = pieces[-1]
            overlap = min(-gap, prev.shape[1] - 1)
            merged = np.concatenate([prev[:, :-overlap], np.maximum(prev[:, -overlap:], img[:, :overlap]), img[:, overlap:]], 1)
            pieces[-1] = merged
        else:
            if pieces and gap > 0:
                pieces.append(np.zeros((28, gap), np.float32))
            pieces.append(img)
        prev_digit = digit
    line = np.concatenate(pieces, axis=1)
    s = scale * rng.uniform(0.9, 1.1)
    return cv2.resize(line, (int(line.shape[1] * s), int(28 * s)), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def render_worksheet(bank: SymbolBank, rng: np.random.Generator, n_lines: int = 4, rotate_deg: float = 0.0,
                     photo: bool = False) -> tuple[np.ndarray, list[str]]:
    """A page of arithmetic lines (uint8 greyscale, dark ink on paper) and the ASCII truth of each line."""
    truths, lines = [], []
    for i in range(n_lines):
        glyphs, ascii_line = random_problem(rng, wrong=bool(i % 2) ^ bool(rng.integers(2)))
        lines.append(render_line(glyphs, bank, rng))
        truths.append(ascii_line)
    width = max(l.shape[1] for l in lines) + 80
    gap = 30
    height = sum(l.shape[0] for l in lines) + gap * (n_lines + 1)
    ink = np.zeros((height, width), np.float32)
    y = gap
    for l in lines:
        x = int(rng.integers(20, 60))
        ink[y : y + l.shape[0], x : x + l.shape[1]] = np.maximum(ink[y : y + l.shape[0], x : x + l.shape[1]], l[:, : width - x])
        y += l.shape[0] + gap
    if rotate_deg:
        M = cv2.getRotationMatrix2D((width / 2, height / 2), rotate_deg, 1.0)
        cos, sin = abs(M[0, 0]), abs(M[0, 1])
        nw, nh = int(height * sin + width * cos), int(height * cos + width * sin)
        M[0, 2] += nw / 2 - width / 2
        M[1, 2] += nh / 2 - height / 2
        ink = cv2.warpAffine(ink, M, (nw, nh), flags=cv2.INTER_LINEAR)
    h, w = ink.shape
    paper = np.ones((h, w), np.float32) * rng.uniform(0.85, 1.0)
    if photo:
        # Uneven light: a smooth gradient and a soft shadow, then sensor noise.
        ys, xs = np.mgrid[0:h, 0:w]
        paper *= 1 - 0.35 * (rng.uniform() * xs + rng.uniform() * ys) / max(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        paper *= 1 - 0.25 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (0.15 * max(h, w) ** 2))
    pen = rng.uniform(0.05, 0.25)
    page = paper * (1 - ink) + pen * ink
    if photo:
        page += rng.normal(0, 0.03, page.shape)
    return (page.clip(0, 1) * 255).astype(np.uint8), truths
