"""A second, harsher photo model for the benchmarks: phone photos as people really take them.

``pagegen.notebook_photo`` puts a whole A5 sheet in the middle of a plain table. Real photos of
homework are less kind, and none of the choices below was used to tune the page pipeline or the
reader (this module was written after them, to find where they break):

- the page fills 55-98% of the frame, and perspective or a careless aim can cut a corner off;
  sometimes an open exercise book, two facing pages with the binding's shadow between them;
- tables of wood grain, a light desk nearly as bright as the paper, a dark cloth;
- stronger perspective and rotation, and the page bowed (books do not lie flat);
- 5 mm squares or 8 mm rulings at the photo's own scale, so symbols are 18-70 px high;
- each line drifts up or down a little, one or two columns of 5-9 lines, numbers written smaller
  or larger than the squares;
- warm or cool light, a hard shadow edge (the phone or a hand), vignetting, defocus or motion blur,
  noise, JPEG at quality 40-90, 1,200-3,000 px on the long side.

Glyphs come from whatever bank is passed in (the benchmarks pass held-out writers).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from .pagegen import TruthLine, Writer, _encode, _map_box, _put, _truth, render_text, school_problem
from ..reader.glyphs import GlyphBank


def _wood(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = np.array(rng.choice([[0.55, 0.38, 0.22], [0.7, 0.55, 0.38], [0.42, 0.28, 0.18]]), np.float32)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    warp = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 25) * 400
    grain = 0.5 + 0.5 * np.sin((y + 0.15 * x + warp) / rng.uniform(4, 12))
    tone = 1 + 0.18 * (grain - 0.5) + cv2.GaussianBlur(rng.normal(0, 0.05, (h, w)).astype(np.float32), (0, 0), 2)
    return np.clip(base[None, None, :] * tone[..., None], 0, 1)


def _table(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["wood", "light", "dark", "cloth"], p=[0.4, 0.25, 0.2, 0.15])
    if kind == "wood":
        return _wood(h, w, rng)
    if kind == "light":  # a white or pale desk: little contrast with the paper
        rgb = rng.uniform(0.7, 0.85) * np.array([1.0, 0.98, 0.95]) + rng.normal(0, 0.02, 3)
    elif kind == "dark":
        rgb = rng.uniform(0.05, 0.3, 3)
    else:
        rgb = rng.uniform(0.2, 0.6, 3)
    table = np.ones((h, w, 3), np.float32) * rgb.astype(np.float32)
    if kind == "cloth":  # a woven texture
        yy, xx = np.mgrid[0:h, 0:w]
        table *= (1 + 0.08 * np.sin(xx / 2.0) * np.sin(yy / 2.0))[..., None].astype(np.float32)
    table += cv2.GaussianBlur(rng.normal(0, 0.04, (h, w, 1)).astype(np.float32), (0, 0), 2)[..., None]
    return np.clip(table, 0, 1)


def _sheet(W: int, H: int, rng: np.random.Generator, ruling: str, cell: int, spread: bool) -> np.ndarray:
    tint = np.array([0.96, 0.95, 0.9]) + rng.normal(0, 0.02, 3)
    page = np.ones((H, W, 3), np.float32) * tint.astype(np.float32)
    page += rng.normal(0, 0.012, (H, W, 1)).astype(np.float32)
    line_rgb = [0.5, 0.68, 0.9] if rng.random() < 0.6 else [0.6, 0.6, 0.63]
    thick = 2 if cell >= 32 and rng.random() < 0.5 else 1  # printed rulings are fine lines
    y0 = int(rng.integers(0, cell))
    if ruling == "squared":
        for y in range(y0, H, cell):
            cv2.line(page, (0, y), (W, y), line_rgb, thick)
        for x in range(int(rng.integers(0, cell)), W, cell):
            cv2.line(page, (x, 0), (x, H), line_rgb, thick)
    else:
        for y in range(2 * cell + y0, H, cell):
            cv2.line(page, (0, y), (W, y), line_rgb, thick)
    halves = [(0, W // 2), (W // 2, W)] if spread else [(0, W)]
    for a, b in halves:
        if rng.random() < 0.7:  # a margin line
            mx = a + int((b - a) * rng.uniform(0.07, 0.12))
            cv2.line(page, (mx, 0), (mx, H), [0.9, 0.45, 0.45], 2)
    if spread:  # the binding: a soft shadow down the middle
        xs = np.arange(W, dtype=np.float32)
        gutter = 1 - 0.35 * np.exp(-(((xs - W / 2) / (0.02 * W)) ** 2))
        page *= gutter[None, :, None]
    return np.clip(page, 0, 1)


def phone_photo(bank: GlyphBank, rng: np.random.Generator, careless: float = 0.0) -> tuple[bytes, list[TruthLine], np.ndarray]:
    """A phone photo of an exercise-book page (see the module docstring; ``careless``: see
    ``pagegen.school_problem``).

    Returns the JPEG bytes, the truth lines (boxes in the photo) and the sheet's corners in the photo.
    """
    spread = bool(rng.random() < 0.15)
    ruling = str(rng.choice(["squared", "ruled"], p=[0.6, 0.4]))
    px_per_mm = float(rng.uniform(4.0, 9.0))  # at the sheet's scale before the photo's own resize
    cell = max(12, int(round((5.0 if ruling == "squared" else 8.0) * px_per_mm)))
    W1, H1 = int(148 * px_per_mm), int(210 * px_per_mm)  # an A5 exercise-book page
    W = 2 * W1 if spread else W1
    page = _sheet(W, H1, rng, ruling, cell, spread)
    size = (0.8 * cell, 1.5 * cell) if ruling == "squared" else (0.5 * cell, 0.8 * cell)
    writer = Writer.sample(rng, size)
    if rng.random() < 0.2:  # a faint ballpoint
        writer.colour = tuple(float(c + 0.25 * (1 - c)) for c in writer.colour)
    truths: list[TruthLine] = []
    page_halves = [(0, W1), (W1, W)] if spread else [(0, W1)]
    if spread and rng.random() < 0.4:
        page_halves = page_halves[:1] if rng.random() < 0.5 else page_halves[1:]  # one page written
    for a, b in page_halves:
        n_cols = 1 if rng.random() < 0.35 else 2
        col_w = (b - a) * (0.8 / n_cols)
        for c in range(n_cols):
            cx = a + int((b - a) * (0.14 + c * 0.45) + rng.integers(0, max(2, cell)))
            y = int(rng.uniform(1.5, 3.5) * cell)
            for _ in range(int(rng.integers(5, 10))):
                text = school_problem(rng, careless)
                ink = render_text(text, bank, writer, rng)
                angle = float(rng.normal(0, 1.2))  # the line drifts a little
                if abs(angle) > 0.2:
                    h, w = ink.shape
                    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
                    extra = int(abs(np.sin(np.radians(angle))) * w) + 2
                    M[1, 2] += extra / 2
                    ink = cv2.warpAffine(ink, M, (w, h + extra))
                if ink.shape[1] > col_w * 0.95:
                    s = col_w * 0.95 / ink.shape[1]
                    ink = cv2.resize(ink, (int(ink.shape[1] * s), max(2, int(ink.shape[0] * s))), interpolation=cv2.INTER_AREA)
                if y + ink.shape[0] > H1 - cell:
                    break
                box = _put(page, ink, cx, y, writer.colour)
                truths.append(_truth(text, box))
                y = box[3] + cell * int(rng.integers(1, 3)) + int(rng.integers(0, cell // 2 + 1))
    # Bow the page: each column of the sheet shifts up or down along a smooth curve.
    ys, xs = np.mgrid[0:H1, 0:W].astype(np.float32)
    bow = float(rng.uniform(-0.012, 0.012)) * H1
    dy = bow * np.sin(np.pi * xs / W) * (0.5 + 0.5 * ys / H1)
    page = cv2.remap(page, xs, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    for t in truths:
        x0, y0, x1, y1 = t.box
        shift = float(np.mean(dy[min(y1, H1 - 1), x0:x1])) if x1 > x0 else 0.0
        t.box = [x0, int(y0 + shift), x1, int(y1 + shift)]
    # The photo: how much of the frame the sheet fills, and whether the frame cuts it.
    fill = float(rng.uniform(0.55, 0.98))
    TW, TH = int(W / fill * rng.uniform(1.0, 1.15)), int(H1 / fill * rng.uniform(1.0, 1.1))
    table = _table(TH, TW, rng)
    ox, oy = (TW - W) / 2 + rng.uniform(-0.08, 0.08) * TW, (TH - H1) / 2 + rng.uniform(-0.06, 0.06) * TH
    src = np.float32([[0, 0], [W, 0], [W, H1], [0, H1]])
    jitter = rng.uniform(-0.12, 0.12, (4, 2)) * [W, H1]
    dst = (src + [ox, oy] + jitter).astype(np.float32)
    rot = cv2.getRotationMatrix2D((TW / 2, TH / 2), float(rng.uniform(-12, 12)), 1.0)
    dst = (np.c_[dst, np.ones(4)] @ rot.T).astype(np.float32)
    Hm = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(page, Hm, (TW, TH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpPerspective(np.ones(page.shape[:2], np.float32), Hm, (TW, TH), flags=cv2.INTER_LINEAR)[..., None]
    photo = alpha * warped + (1 - alpha) * table  # the sheet's edge anti-aliased, as a lens sees it
    # Light: colour cast, a gradient, vignetting and sometimes a hard shadow edge.
    yy, xx = np.mgrid[0:TH, 0:TW].astype(np.float32)
    cast = np.array([1.0, 0.97, 0.88] if rng.random() < 0.5 else [0.92, 0.97, 1.0], np.float32)
    light = 1 - 0.35 * (rng.uniform() * xx / TW + rng.uniform() * yy / TH)
    r2 = ((xx - TW / 2) / TW) ** 2 + ((yy - TH / 2) / TH) ** 2
    light *= 1 - rng.uniform(0.1, 0.4) * r2
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        dist = (xx - TW * rng.uniform(0.2, 0.8)) * np.cos(a) + (yy - TH * rng.uniform(0.2, 0.8)) * np.sin(a)
        light *= 1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-dist / rng.uniform(3, 25)))
    photo = photo * light[..., None] * cast
    if rng.random() < 0.3:  # motion blur
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1 / k
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1), (k, k))
        photo = cv2.filter2D(photo, -1, kernel / max(kernel.sum(), 1e-6))
    else:
        photo = cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(0.4, 1.6)))
    photo += rng.normal(0, rng.uniform(0.01, 0.035), photo.shape).astype(np.float32)
    side = float(rng.uniform(1200, 3000))
    s = side / max(TW, TH)
    photo = cv2.resize(photo, (int(TW * s), int(TH * s)), interpolation=cv2.INTER_AREA)
    Hs = np.diag([s, s, 1]) @ Hm
    out_w, out_h = photo.shape[1], photo.shape[0]
    kept = []
    for t in truths:
        t.box = _map_box(t.box, Hs)
        x0, y0, x1, y1 = t.box
        if x0 >= 0 and y0 >= 0 and x1 <= out_w and y1 <= out_h:  # lines the frame cuts are not scored
            kept.append(t)
    corners = np.c_[src, np.ones(4)] @ Hs.T
    buf_rng = np.random.default_rng(rng.integers(1 << 31))
    data = _encode(photo, buf_rng, jpeg=True)
    if rng.random() < 0.5:  # a lower JPEG quality than pagegen's, instead
        img = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=int(rng.integers(40, 60)))
        data = out.getvalue()
    return data, kept, corners[:, :2] / corners[:, 2:3]


__all__ = ["phone_photo"]
