"""Held-out page generator for the benchmarks and tests: pages the line reader never trained on.

Different on purpose from the reader's training generator (``digitlab.reader.linegen``):

- glyphs only from held-out sources: MNIST *test*, optdigits ``windep`` (13 unseen writers), the
  MDAS operator *test* split ("=" built from test minus signs);
- its own spacing model: each symbol is kerned against the *ink profile* of its left neighbour
  (touching pages overlap strokes by a pen width or two), per-page writer styles (size, slant,
  pen width, operator sizes), school-style problems;
- whole pages: clean scans, and phone photos of exercise-book pages (squared or ruled paper with a
  margin, blue or black pen, two columns, the sheet on a table in perspective, shadow, blur, JPEG).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..reader.glyphs import KIND_CHAR, GlyphBank

OP_HEIGHT = {"+": (0.5, 0.7), "-": (0.45, 0.7), "x": (0.45, 0.65), ".": (0.12, 0.18), "÷": (0.55, 0.8),
             "/": (0.75, 1.0), "=": (0.5, 0.75)}


@dataclass
class Writer:
    height: float  # digit height, px
    slant: float  # shear
    pen: int  # dilation, px
    touching: bool
    colour: tuple[float, float, float]
    op_style: dict  # ASCII op -> glyph kind

    @classmethod
    def sample(cls, rng: np.random.Generator, height: tuple[float, float], touching: bool | None = None,
               blue: bool | None = None) -> "Writer":
        blue = rng.random() < 0.5 if blue is None else blue
        colour = (0.1, 0.2, 0.6) if blue else (0.12, 0.12, 0.14)
        colour = tuple(float(np.clip(c + rng.normal(0, 0.04), 0, 1)) for c in colour)
        return cls(float(rng.uniform(*height)), float(rng.normal(0, 0.12)), int(rng.choice([0, 0, 1])),
                   bool(rng.random() < 0.5) if touching is None else touching, colour,
                   {"*": str(rng.choice(["x", "."], p=[0.9, 0.1])), "/": str(rng.choice(["÷", "/"], p=[0.7, 0.3])),
                    "+": "+", "-": "-"})


def school_problem(rng: np.random.Generator, careless: float = 0.0) -> str:
    """An ASCII line like "17+25=42"; the answer is wrong about half the time: a slip (off by 1 or 10,
    or a few), or for ``careless`` of the wrong ones a number of one to three digits, anything at all."""
    op = str(rng.choice(["+", "-", "*", "/"]))
    if op == "+":
        a, b = int(rng.integers(0, 100)), int(rng.integers(0, 100))
        v = a + b
    elif op == "-":
        a, b = sorted(rng.integers(0, 100, 2))[::-1]
        v = int(a - b)
    elif op == "*":
        a, b = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        v = a * b
    else:
        b = int(rng.integers(1, 11))
        v = int(rng.integers(0, 11))
        a = b * v
    ans = v
    if rng.random() < 0.5:
        kind = rng.integers(3)
        ans = v + int(rng.choice([-1, 1])) if kind == 0 else v + int(rng.choice([-10, 10])) if kind == 1 else v + int(rng.integers(2, 9))
        ans = abs(ans) if ans != v else v + 1
        if careless > 0 and rng.random() < careless:  # no draw without a share: the same pages as before
            ans = int(rng.integers(0, 10 ** int(rng.integers(1, 4))))
            ans += ans == v
    return f"{a}{op}{b}={ans}"


def _glyph(bank: GlyphBank, ch: str, w: Writer, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    if ch.isdigit():
        g = bank.digit(int(ch), rng)
        h = w.height * rng.uniform(0.9, 1.08)
        return cv2.resize(g, (max(1, int(g.shape[1] * h / g.shape[0])), int(h)), interpolation=cv2.INTER_CUBIC), True
    kind = w.op_style.get(ch, "=" if ch == "=" else ch)
    g = bank.op(kind, rng)
    size = w.height * rng.uniform(*OP_HEIGHT[kind])
    s = size / max(g.shape)
    return cv2.resize(g, (max(2, int(g.shape[1] * s)), max(2, int(g.shape[0] * s))), interpolation=cv2.INTER_CUBIC), False


def render_text(text: str, bank: GlyphBank, w: Writer, rng: np.random.Generator) -> np.ndarray:
    """Ink (1 = ink) of one line, symbols kerned against their neighbour's ink profile."""
    glyphs = [_glyph(bank, ch, w, rng) for ch in text]
    H = int(w.height * 1.6)
    width = int(sum(g.shape[1] for g, _ in glyphs) + w.height * len(glyphs) + 40)
    canvas = np.zeros((H, width), np.float32)
    base = int(w.height * 1.3)
    right = np.full(H, -1, np.int64)  # rightmost ink column per row so far
    x_cursor, prev_digit = 10, None
    for (g, is_digit), ch in zip(glyphs, text):
        g = np.clip(g, 0, 1)
        gh, gw = g.shape
        y0 = base - gh + int(rng.normal(0, 0.03) * w.height) if is_digit else int(base - 0.5 * w.height - gh / 2)
        y0 = int(np.clip(y0, 0, H - gh))
        if prev_digit is None:
            x = x_cursor
        else:
            if w.touching:  # digits of a number overlap a little; operators touch at most
                gap = (rng.uniform(-0.08, 0.02) if is_digit and prev_digit else rng.uniform(-0.03, 0.05)) * w.height
            else:
                gap = rng.uniform(0.08, 0.3) * w.height if (is_digit and prev_digit) else rng.uniform(0.15, 0.45) * w.height
            left = np.array([np.argmax(r > 0.3) if (r > 0.3).any() else 10**6 for r in g])
            rows = np.arange(gh) + y0
            # the x at which this glyph's nearest ink comes within ``gap`` of what is already there
            need = right[rows] - left + gap + 1
            x = int(max(need.max(), x_cursor - gw // 4 if w.touching else 0))
            x = max(x, 1)
        canvas[y0 : y0 + gh, x : x + gw] = np.maximum(canvas[y0 : y0 + gh, x : x + gw], g[:, : width - x])
        cols = np.where(g > 0.3, np.arange(gw)[None, :] + x, -1).max(axis=1)
        right[y0 : y0 + gh] = np.maximum(right[y0 : y0 + gh], cols)
        x_cursor = x + gw
        prev_digit = is_digit
    canvas = canvas[:, : x_cursor + 10]
    if w.pen:
        canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (w.pen + 1, w.pen + 1)))
    if abs(w.slant) > 0.02:
        h, wd = canvas.shape
        extra = int(abs(w.slant) * h) + 1
        M = np.float32([[1, -w.slant, extra if w.slant > 0 else 0], [0, 1, 0]])
        canvas = cv2.warpAffine(canvas, M, (wd + extra, h))
    return np.clip(canvas, 0, 1)


def _paper(h: int, w: int, rng: np.random.Generator, ruling: str, cell: int) -> np.ndarray:
    tint = np.array([0.97, 0.96, 0.92]) + rng.normal(0, 0.015, 3)
    page = np.ones((h, w, 3), np.float32) * tint
    page += rng.normal(0, 0.01, (h, w, 1)).astype(np.float32)
    line_rgb = np.array([0.55, 0.7, 0.92]) if rng.random() < 0.6 else np.array([0.62, 0.62, 0.65])
    thick = int(rng.integers(1, 3))
    if ruling == "squared":
        for y in range(int(rng.integers(0, cell)), h, cell):
            cv2.line(page, (0, y), (w, y), line_rgb.tolist(), thick)
        for x in range(int(rng.integers(0, cell)), w, cell):
            cv2.line(page, (x, 0), (x, h), line_rgb.tolist(), thick)
    elif ruling == "ruled":
        for y in range(int(cell * 2), h, cell):
            cv2.line(page, (0, y), (w, y), line_rgb.tolist(), thick)
    if ruling != "plain":
        mx = int(w * rng.uniform(0.08, 0.12))
        cv2.line(page, (mx, 0), (mx, h), [0.9, 0.45, 0.45], 2)
    return np.clip(page, 0, 1)


def _put(page: np.ndarray, ink: np.ndarray, x: int, y: int, colour) -> tuple[int, int, int, int]:
    h, w = ink.shape
    H, W = page.shape[:2]
    h, w = min(h, H - y), min(w, W - x)
    a = ink[:h, :w, None]
    page[y : y + h, x : x + w] = page[y : y + h, x : x + w] * (1 - a) + np.array(colour) * a
    ys, xs = np.nonzero(ink[:h, :w] > 0.3)
    return x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1


@dataclass
class TruthLine:
    text: str
    box: list[int]  # in the final image
    correct: bool


def _encode(rgb: np.ndarray, rng: np.random.Generator, jpeg: bool) -> bytes:
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    buf = io.BytesIO()
    if jpeg:
        img.save(buf, "JPEG", quality=int(rng.integers(55, 86)))
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def _truth(text: str, box, correct=None) -> TruthLine:
    from ..arithmetic import check_expression

    return TruthLine(text, [int(v) for v in box], bool(check_expression(text)["correct"]) if correct is None else correct)


def clean_page(bank: GlyphBank, rng: np.random.Generator, touching: bool, n_lines: int = 8,
               careless: float = 0.0) -> tuple[bytes, list[TruthLine]]:
    """A scanned worksheet: white paper, one column, dark pen; neighbours touching or not (``careless``:
    see ``school_problem``)."""
    W, H = 1240, 1754  # A4 at 150 dpi
    writer = Writer.sample(rng, (34, 50), touching=touching, blue=False)
    page = _paper(H, W, rng, "plain", 0)
    truths, y = [], int(rng.integers(80, 160))
    for _ in range(n_lines):
        text = school_problem(rng, careless)
        ink = render_text(text, bank, writer, rng)
        x = int(rng.integers(80, 200))
        box = _put(page, ink, x, y, writer.colour)
        truths.append(_truth(text, box))
        y += int(ink.shape[0] + rng.uniform(0.6, 1.4) * writer.height)
        if y > H - 150:
            break
    angle = float(rng.uniform(-2, 2))
    M = cv2.getRotationMatrix2D((W / 2, H / 2), angle, 1.0)
    page = cv2.warpAffine(page, M, (W, H), borderMode=cv2.BORDER_REPLICATE)
    for t in truths:
        t.box = _map_box(t.box, np.r_[M, [[0, 0, 1]]])
    page += rng.normal(0, 0.01, page.shape).astype(np.float32)
    return _encode(page, rng, jpeg=False), truths


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes: how the benchmarks match found lines to truths."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _map_box(box, H) -> list[int]:
    x0, y0, x1, y1 = box
    pts = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    p = np.c_[pts, np.ones(4)] @ np.asarray(H).T
    p = p[:, :2] / p[:, 2:3]
    return [int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()), int(p[:, 1].max())]


def notebook_photo(bank: GlyphBank, rng: np.random.Generator, n_per_column: int = 6,
                   out_side: int = 1500, careless: float = 0.0) -> tuple[bytes, list[TruthLine], np.ndarray]:
    """A phone photo of an exercise-book page: squared or ruled, two columns, on a table, at an angle
    (``careless``: see ``school_problem``).

    Returns the JPEG bytes, the truth lines, and the sheet's corners in the photo (TL, TR, BR, BL).
    """
    W, H = 1050, 1480  # A5-ish page at ~200 dpi
    ruling = str(rng.choice(["squared", "ruled"]))
    cell = int(rng.uniform(36, 42)) if ruling == "squared" else int(rng.uniform(44, 52))
    page = _paper(H, W, rng, ruling, cell)
    writer = Writer.sample(rng, (0.9 * cell, 1.25 * cell) if ruling == "squared" else (0.6 * cell, 0.8 * cell))
    truths = []
    col_x = [int(W * rng.uniform(0.13, 0.17)), int(W * rng.uniform(0.58, 0.62))]
    for cx in col_x:
        y = int(rng.uniform(2, 3.5) * cell)
        for _ in range(n_per_column):
            text = school_problem(rng, careless)
            ink = render_text(text, bank, writer, rng)
            if ink.shape[1] > W * 0.33:  # keep the columns apart, as pupils do
                s = W * 0.33 / ink.shape[1]
                ink = cv2.resize(ink, (int(ink.shape[1] * s), max(2, int(ink.shape[0] * s))), interpolation=cv2.INTER_AREA)
            box = _put(page, ink, cx + int(rng.integers(0, 30)), y, writer.colour)
            truths.append(_truth(text, box))
            y += cell * int(rng.integers(2, 4)) if ruling == "squared" else cell * int(rng.integers(2, 3))
            if y > H - 2 * cell:
                break
    # The sheet on a table, photographed from above at an angle.
    TW, TH = int(W * 1.45), int(H * 1.3)
    table_rgb = rng.uniform(0.15, 0.55, 3)
    table = np.ones((TH, TW, 3), np.float32) * table_rgb
    table += cv2.GaussianBlur(rng.normal(0, 0.06, (TH, TW, 1)).astype(np.float32), (0, 0), 3)[..., None]
    ox, oy = (TW - W) / 2, (TH - H) / 2
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    jitter = rng.uniform(-0.07, 0.07, (4, 2)) * [W, H]
    dst = (src + [ox, oy] + jitter).astype(np.float32)
    rot = cv2.getRotationMatrix2D((TW / 2, TH / 2), float(rng.uniform(-8, 8)), 1.0)
    dst = (np.c_[dst, np.ones(4)] @ rot.T).astype(np.float32)
    Hm = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(page, Hm, (TW, TH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(-1, -1, -1))
    photo = np.where(warped[..., :1] < 0, table, warped)
    # Uneven light: a gradient and a soft shadow (a hand or a phone).
    ys, xs = np.mgrid[0:TH, 0:TW].astype(np.float32)
    light = 1 - 0.3 * (rng.uniform() * xs / TW + rng.uniform() * ys / TH)
    cx, cy = rng.uniform(0, TW), rng.uniform(0, TH)
    light *= 1 - 0.3 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (0.08 * (TW * TH)))
    photo = photo * light[..., None]
    photo = cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(0.5, 1.3)))
    photo += rng.normal(0, 0.02, photo.shape).astype(np.float32)
    s = out_side / max(TW, TH)
    photo = cv2.resize(photo, (int(TW * s), int(TH * s)), interpolation=cv2.INTER_AREA)
    Hs = np.diag([s, s, 1]) @ Hm
    for t in truths:
        t.box = _map_box(t.box, Hs)
    corners = np.c_[src, np.ones(4)] @ Hs.T
    return _encode(photo, rng, jpeg=True), truths, corners[:, :2] / corners[:, 2:3]


def number_image(bank: GlyphBank, rng: np.random.Generator) -> tuple[bytes, str]:
    """A written number of 2-6 digits (neighbours often touching) on light paper, PNG or JPEG."""
    n = int(rng.integers(2, 7))
    text = str(int(rng.integers(1, 10))) + "".join(str(int(d)) for d in rng.integers(0, 10, n - 1))
    writer = Writer.sample(rng, (28, 60), touching=bool(rng.random() < 0.6))
    ink = render_text(text, bank, writer, rng)
    pad = int(writer.height * rng.uniform(0.3, 1.0))
    H, W = ink.shape[0] + 2 * pad, ink.shape[1] + 2 * pad
    page = _paper(H, W, rng, "plain", 0)
    _put(page, ink, pad, pad, writer.colour)
    return _encode(page, rng, jpeg=bool(rng.random() < 0.5)), text


__all__ = ["box_iou", "clean_page", "notebook_photo", "number_image", "school_problem", "TruthLine", "KIND_CHAR"]
