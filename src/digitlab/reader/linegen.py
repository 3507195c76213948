"""Synthetic training lines: training glyphs composed into arithmetic lines and numbers.

Each line is drawn the way the page reader will hand it over: an ink map (1 = ink) of one line
band, with neighbours that touch or overlap, size and baseline jitter, slant, pen width, blur,
remnants of rulings and of the lines above and below. ``prepare_line`` (crnn.py) then normalises it
exactly as at inference. The benchmarks compose their pages with a different generator
(``benchmarks/pages.py``) from held-out glyphs, so they do not measure this generator's habits.
"""

from __future__ import annotations

import cv2
import numpy as np

from .glyphs import KIND_CHAR, GlyphBank, tight

_OP_KINDS = ["+", "-", "x", ".", "÷", "/"]
# Operator size as a fraction of the digit height: (low, high) of the longest side.
_OP_SIZE = {"+": (0.4, 0.8), "-": (0.35, 0.8), "x": (0.35, 0.75), ".": (0.08, 0.2), "÷": (0.45, 0.85),
            "/": (0.55, 1.05), "=": (0.4, 0.85)}


def random_text(rng: np.random.Generator) -> list[str]:
    """A line as a list of tokens: digits "0".."9" and operator kinds ("+", "x", "÷", "=", ...)."""
    r = rng.random()
    if r < 0.25:  # a written number
        n = int(rng.integers(1, 7))
        return [str(rng.integers(1 if i == 0 and n > 1 else 0, 10)) for i in range(n)]
    if r < 0.4:  # anything at all, so the reader does not lean on arithmetic habits
        n = int(rng.integers(2, 11))
        return [str(rng.integers(10)) if rng.random() < 0.6 else str(rng.choice([*_OP_KINDS, "="])) for _ in range(n)]

    def number(max_digits: int) -> list[str]:
        n = int(rng.integers(1, max_digits + 1))
        return [str(rng.integers(1 if i == 0 and n > 1 else 0, 10)) for i in range(n)]

    toks = number(3)
    for _ in range(1 if rng.random() < 0.85 else 2):
        toks += [str(rng.choice(_OP_KINDS))] + number(3)
    toks.append("=")
    if rng.random() < 0.05:
        toks.append("-")
    return toks + number(4)


def tokens_to_text(tokens: list[str]) -> str:
    return "".join(t if t.isdigit() else KIND_CHAR[t] for t in tokens)


def _resize(g: np.ndarray, h: float, w: float) -> np.ndarray:
    h, w = max(1, int(round(h))), max(1, int(round(w)))
    interp = cv2.INTER_AREA if h < g.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(g, (w, h), interpolation=interp)


def distort(g: np.ndarray, rng: np.random.Generator, elastic: float = 0.5) -> np.ndarray:
    """A glyph as another hand might write it: rotated (+-10 degrees), sheared, and with probability
    ``elastic`` elastically distorted (a smooth random displacement field, as in Simard et al. 2003).

    The training glyphs are a few writers' tens of thousands of digits, and a line reader sees each
    of them many times: without this, it learns their exact shapes better than it learns digits."""
    h, w = g.shape
    pad = max(2, int(0.15 * max(h, w)))
    g = cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    H, W = g.shape
    a, sh = np.deg2rad(rng.uniform(-10, 10)), rng.uniform(-0.15, 0.15)
    M = np.float32([[np.cos(a), -np.sin(a) + sh, 0], [np.sin(a), np.cos(a), 0]])
    M[:, 2] = np.float32([W / 2, H / 2]) - M[:, :2] @ np.float32([W / 2, H / 2])
    if rng.random() < elastic:
        sigma, alpha = 0.12 * max(H, W), rng.uniform(0.03, 0.08) * max(H, W)
        dx = cv2.GaussianBlur(rng.uniform(-1, 1, (H, W)).astype(np.float32), (0, 0), sigma)
        dy = cv2.GaussianBlur(rng.uniform(-1, 1, (H, W)).astype(np.float32), (0, 0), sigma)
        norm = alpha / max(1e-6, float(np.abs(np.r_[dx.ravel(), dy.ravel()]).max()))
        ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
        g = cv2.remap(g, xs + dx * norm, ys + dy * norm, cv2.INTER_LINEAR, borderValue=0)
    g = cv2.warpAffine(g, M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
    return tight(g)


def _kerned_x(g: np.ndarray, y0: int, right: np.ndarray, gap: float, floor: int) -> int:
    """The x at which glyph ``g`` (top row ``y0``) comes within ``gap`` px of the ink already on the
    line, row by row (``right``: each row's rightmost ink, -1 where none), and not left of ``floor``."""
    inked = g > 0.3
    rows = np.nonzero(inked.any(axis=1))[0]
    if not len(rows):
        return floor
    first = inked[rows].argmax(axis=1)
    return int(max(floor, np.ceil((right[y0 + rows] - first).max() + gap + 1)))


def render_tokens(tokens: list[str], bank: GlyphBank, rng: np.random.Generator, warp: float = 0.0,
                  kern: float = 0.0) -> np.ndarray:
    """Compose glyphs into one line of ink at a random scale (digit height 24-48 px); ``warp`` of the
    digits are distorted (``distort``: training lines only); ``kern`` of the lines are spaced by their
    ink, not their boxes (a minus slides under the hook of the 2 after it, as pens do)."""
    hd = float(rng.uniform(24, 48))
    touching = rng.random() < 0.5  # half the lines are written tightly, neighbours touching
    kerned = kern > 0 and rng.random() < kern  # no draw without a share: the same lines as before
    glyphs = []
    for t in tokens:
        if t.isdigit():
            g = bank.digit(int(t), rng)
            if warp > 0 and rng.random() < warp:
                g = distort(g, rng)
            h = hd * rng.uniform(0.85, 1.1)
            w = g.shape[1] * h / g.shape[0] * rng.uniform(0.8, 1.25)
            if g.shape[1] < 0.3 * g.shape[0]:  # a "1": keep it thin
                w = min(w, 0.35 * h)
            glyphs.append((t, _resize(g, h, w), hd * rng.normal(0, 0.04)))
        else:
            g = bank.op(t, rng)
            side = hd * rng.uniform(*_OP_SIZE[t])
            s = side / max(g.shape)
            gh, gw = max(2.0, g.shape[0] * s), max(2.0, g.shape[1] * s)
            if t == "/":
                gh, gw = side, max(2.0, g.shape[1] * side / g.shape[0])
            glyphs.append((t, _resize(g, gh, gw), hd * rng.normal(-0.5, 0.08)))  # centred on mid-height
    pad = int(hd)
    width = int(sum(g.shape[1] for _, g, _ in glyphs) + hd * 0.8 * len(glyphs) + 2 * pad)
    height = int(hd * 2.6)
    canvas = np.zeros((height, width), np.float32)
    baseline = int(hd * 1.7)
    slope = rng.normal(0, 0.02)
    right = np.full(height, -1, np.int64)  # each row's rightmost ink so far (kerned lines)
    x = pad
    prev = prev_w = None
    for t, g, dy in glyphs:
        gh, gw = g.shape

        def top(x: int) -> int:
            y_bottom = baseline + dy + slope * x if t.isdigit() else baseline + dy + slope * x + gh / 2
            return int(np.clip(y_bottom - gh, 0, height - gh))

        if prev is not None:
            digit_pair = t.isdigit() and prev.isdigit()
            if kerned:  # the gap is between the nearest inks; a glyph never slides half past the last
                if touching:
                    gap = rng.uniform(-0.08, 0.05) if digit_pair else rng.uniform(-0.05, 0.1)
                else:
                    gap = rng.uniform(0.05, 0.3) if digit_pair else rng.uniform(0.1, 0.5)
                x = min(_kerned_x(g, top(x), right, gap * hd, x - int(0.5 * min(gw, prev_w))), width - 1)
            else:
                if touching:
                    gap = rng.uniform(-0.22, 0.05) if digit_pair else rng.uniform(-0.1, 0.25)
                else:
                    gap = rng.uniform(-0.05, 0.3) if digit_pair else rng.uniform(0.05, 0.7)
                x += int(gap * hd)
            x = max(x, 1)
        y0 = top(x)
        x1 = min(width, x + gw)
        canvas[y0 : y0 + gh, x : x1] = np.maximum(canvas[y0 : y0 + gh, x : x1], g[:, : x1 - x])
        if kerned:
            cols = np.where(g[:, : x1 - x] > 0.3, np.arange(x, x1)[None, :], -1).max(axis=1)
            right[y0 : y0 + gh] = np.maximum(right[y0 : y0 + gh], cols)
        x += gw
        prev, prev_w = t, gw
    canvas = canvas[:, : min(width, x + pad)]
    # Pen: thicker or thinner strokes, slant, blur.
    r = rng.random()
    if r < 0.25:
        k = int(rng.integers(2, 4 if hd > 32 else 3))
        canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif r < 0.4 and hd > 30:
        canvas = cv2.erode(canvas, np.ones((2, 2), np.uint8))
    shear = rng.normal(0, 0.15)
    if abs(shear) > 0.02:
        h, w = canvas.shape
        extra = int(abs(shear) * h) + 1
        M = np.float32([[1, -shear, extra if shear > 0 else 0], [0, 1, 0]])
        canvas = cv2.warpAffine(canvas, M, (w + extra, h))
    return canvas


def add_clutter(ink: np.ndarray, rng: np.random.Generator, bank: GlyphBank | None = None) -> np.ndarray:
    """What a line band cut from a page carries besides the line: rulings, neighbours, specks, blur."""
    h, w = ink.shape
    out = ink.copy()
    if rng.random() < 0.3:  # remnants of a ruling or grid line the page cleaning missed
        for _ in range(int(rng.integers(1, 3))):
            y = int(rng.integers(0, h))
            a, b = sorted(rng.integers(0, w, 2))
            cv2.line(out, (int(a), y), (int(b), y + int(rng.integers(-1, 2))), float(rng.uniform(0.15, 0.6)),
                     int(rng.integers(1, 3)))
    if rng.random() < 0.2 and bank is not None:  # the tail of a digit from the line above or below
        g = bank.digit(int(rng.integers(10)), rng)
        g = _resize(g, h * 0.6, g.shape[1] * h * 0.6 / g.shape[0])
        x = int(rng.integers(0, max(1, w - g.shape[1])))
        cut = int(g.shape[0] * rng.uniform(0.15, 0.35))
        if rng.random() < 0.5:
            out[:cut, x : x + g.shape[1]] = np.maximum(out[:cut, x : x + g.shape[1]], g[-cut:, : w - x])
        else:
            out[h - cut :, x : x + g.shape[1]] = np.maximum(out[h - cut :, x : x + g.shape[1]], g[:cut, : w - x])
    if rng.random() < 0.3:
        n = int(rng.integers(1, 6))
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        for y, x in zip(ys, xs):
            cv2.circle(out, (int(x), int(y)), int(rng.integers(1, 3)), float(rng.uniform(0.3, 1)), -1)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.5)))
    out *= rng.uniform(0.6, 1.0)  # faint pens
    if rng.random() < 0.5:
        out += rng.normal(0, rng.uniform(0.01, 0.06), out.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def photo_degrade(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A line as a phone photo of a page hands it over: written small for the picture (digits 9-22 px
    high), so a pen is bolder for its size, then blurred by the lens and blocked by JPEG."""
    h, w = ink.shape
    hd = h / 2.6  # render_tokens' band is 2.6 digit heights
    target = float(rng.uniform(9, 22))
    s = target / hd
    small = cv2.resize(ink, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    if target >= 14 and rng.random() < 0.35:
        small = np.maximum(small, cv2.dilate(small, np.ones((2, 2), np.uint8)) * rng.uniform(0.6, 1.0))
    if rng.random() < 0.6:
        small = cv2.GaussianBlur(small, (0, 0), float(rng.uniform(0.4, 1.0)))
    if rng.random() < 0.6:
        u8 = (255 - np.clip(small, 0, 1) * 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 85))])
        if ok:
            small = 1 - cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    small = np.clip(small - 0.08, 0, 1)  # as the page's cleaning drops paper texture and JPEG noise
    return np.clip(small / max(float(small.max()), 0.35), 0, 1).astype(np.float32)


def training_line(bank: GlyphBank, rng: np.random.Generator, photo: float = 0.0,
                  warp: float = 0.0, kern: float = 0.0) -> tuple[np.ndarray, str]:
    """One raw line band (ink map) and its text; ``photo`` of them degraded as in a phone photo,
    ``warp`` of the digits distorted (``distort``), ``kern`` of them spaced by ink (``render_tokens``)."""
    tokens = random_text(rng)
    ink = add_clutter(render_tokens(tokens, bank, rng, warp, kern), rng, bank)
    if photo > 0 and rng.random() < photo:
        ink = photo_degrade(ink, rng)
    return ink, tokens_to_text(tokens)


def problem_tokens(rng: np.random.Generator, correct: bool, careless: float = 0.0) -> list[str]:
    """A homework line "a op b = c" whose answer is right or wrong, as tokens: a wrong answer is a
    slip (off by 1, 2, 10 or 11), or for ``careless`` of them any number at all."""
    kind = str(rng.choice(["+", "-", "x", "÷"]))
    a, b = int(rng.integers(0, 100)), int(rng.integers(1, 100))
    if kind == "-":
        a, b = max(a, b), min(a, b)
    if kind == "x":
        a, b = int(rng.integers(0, 13)), int(rng.integers(0, 13))
    if kind == "÷":
        b = int(rng.integers(1, 13))
        a = b * int(rng.integers(0, 13))
    value = {"+": a + b, "-": a - b, "x": a * b, "÷": a // max(b, 1)}[kind]
    answer = value if correct else value + int(rng.choice([-11, -10, -2, -1, 1, 2, 10, 11]))
    if answer < 0:
        answer = value + int(rng.integers(1, 5))
    if not correct and careless > 0 and rng.random() < careless:  # no draw without a share: lines as before
        answer = int(rng.integers(0, max(100, 2 * value + 1)))
        answer += answer == value
    op = kind if kind != "x" or rng.random() < 0.85 else "."
    if kind == "÷" and rng.random() < 0.3:
        op = "/"
    return [*str(a), op, *str(b), "=", *str(answer)]
