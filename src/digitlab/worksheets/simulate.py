"""Filled-in worksheets and phone photos of them, for the benchmark and the tests.

Handwriting comes from a :class:`~digitlab.reader.glyphs.GlyphBank` (use ``"heldout"``: glyphs the
reader never trained on) rendered by :func:`digitlab.synthetic.pagegen.render_text`; the photo is the page
warped in perspective onto a table, with uneven light, a shadow, blur, noise and JPEG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .layout import to_raster


@dataclass
class Written:
    problem_id: int
    written: list[str | None]  # per box: what the pupil wrote (None = left blank)
    truth: str  # "correct" | "wrong" | "blank": the mark the answer deserves


def pupil_answers(key: dict, rng: np.random.Generator, p_blank: float = 0.1, p_wrong: float = 0.25) -> list[Written]:
    out = []
    for p in key["problems"]:
        u = rng.random()
        if u < p_blank:
            out.append(Written(p["id"], [None] * len(p["answer"]), "blank"))
        elif u < p_blank + p_wrong:
            ans = list(p["answer"])
            k = int(rng.integers(len(ans)))
            v = int(ans[k])
            kind = int(rng.integers(3))
            new = v + int(rng.choice([-1, 1])) if kind == 0 else v + int(rng.choice([-10, 10])) if kind == 1 else v + int(rng.integers(2, 9))
            ans[k] = str(abs(new) if abs(new) != v else v + 1)
            out.append(Written(p["id"], ans, "wrong"))
        else:
            out.append(Written(p["id"], list(p["answer"]), "correct"))
    return out


def fill(sheet: dict, answers: list[Written], bank, rng: np.random.Generator, dpi: float = 200,
         name: str | None = "1234", overflow: float = 0.0) -> np.ndarray:
    """The printed page at ``dpi`` (float RGB, 1 = white) with the answers handwritten into their boxes;
    ``overflow``: the share of answers written at full size that run over the box's right (or, a third
    of those, its left) edge by a third to two thirds of a digit, as pupils write when a box is small."""
    from ..synthetic.pagegen import Writer, render_text

    page = to_raster(sheet, dpi).astype(np.float32) / 255
    s = dpi / 25.4
    boxes = {p["id"]: p["boxes_mm"] for p in sheet["problems"]}
    box_h = min(b[3] - b[1] for bs in boxes.values() for b in bs) * s
    writer = Writer.sample(rng, (0.5 * box_h, 0.72 * box_h))
    colour = np.float32(writer.colour)

    def put(ink: np.ndarray, box_px, n_chars: int = 1, over: bool = False) -> None:
        x0, y0, x1, y1 = box_px
        bw, bh = x1 - x0, y1 - y0
        ink = ink[:, np.nonzero(ink.max(axis=0) > 0.1)[0].min():] if ink.max() > 0.1 else ink
        ys = np.nonzero(ink.max(axis=1) > 0.1)[0]
        ink = ink[ys.min() : ys.max() + 1] if len(ys) else ink
        xs = np.nonzero(ink.max(axis=0) > 0.1)[0]
        ink = ink[:, : xs.max() + 1] if over and len(xs) else ink
        sc = min(1.0, 0.86 * bh / ink.shape[0]) if over else min(1.0, (bw - 0.12 * bh) / ink.shape[1], 0.86 * bh / ink.shape[0])
        if sc < 1:
            ink = cv2.resize(ink, (max(1, int(ink.shape[1] * sc)), max(1, int(ink.shape[0] * sc))), interpolation=cv2.INTER_AREA)
        ih, iw = ink.shape
        if over:  # past the right edge, or a third of the time the left, by part of a digit
            past = int(rng.uniform(0.33, 0.67) * iw / n_chars)
            ox = x0 - past if rng.random() < 1 / 3 else x1 + past - iw
            ox = max(0, min(ox, page.shape[1] - iw))
        else:
            ox = x0 + int(rng.uniform(0.06 * bh, max(0.06 * bh + 1, bw - iw - 0.06 * bh)))
        oy = y0 + int(rng.uniform(0.07 * bh, max(0.07 * bh + 1, bh - ih - 0.07 * bh)))
        region = page[oy : oy + ih, ox : ox + iw]
        a = ink[: region.shape[0], : region.shape[1], None]
        region[:] = region * (1 - a) + colour * a

    for w in answers:
        for text, box in zip(w.written, boxes[w.problem_id]):
            if text is None:
                continue
            px = [int(round(v * s)) for v in box]
            over = overflow > 0 and rng.random() < overflow  # no draw when 0: a seed's sheets stay as they were
            put(render_text(text, bank, writer, rng), px, len(text), over)
    if name:
        from .layout import NAME_BOX_MM

        put(render_text(name, bank, writer, rng), [int(round(v * s)) for v in NAME_BOX_MM])
    return page


def phone_photo(page: np.ndarray, rng: np.random.Generator, out_side: int = 2000, angle: float = 10,
                tilt: float = 0.06, jpeg: tuple[int, int] = (70, 92)) -> bytes:
    """A JPEG photo of the page on a table: perspective, rotation, light gradient, shadow, blur, noise."""
    H, W = page.shape[:2]
    TW, TH = int(W * 1.35), int(H * 1.22)
    table = np.ones((TH, TW, 3), np.float32) * rng.uniform(0.15, 0.6, 3).astype(np.float32)
    table += cv2.GaussianBlur(rng.normal(0, 0.06, (TH, TW)).astype(np.float32), (0, 0), 3)[..., None]
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    ox, oy = (TW - W) / 2, (TH - H) / 2
    dst = src + [ox, oy] + rng.uniform(-tilt, tilt, (4, 2)) * [W, H]
    rot = cv2.getRotationMatrix2D((TW / 2, TH / 2), float(rng.uniform(-angle, angle)), 1.0)
    dst = (np.c_[dst, np.ones(4)] @ rot.T).astype(np.float32)
    s = out_side / max(TW, TH)
    dst = dst * s
    ow, oh = int(TW * s), int(TH * s)
    M = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(page, M, (ow, oh), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=(-1, -1, -1))
    table = cv2.resize(table, (ow, oh), interpolation=cv2.INTER_AREA)
    photo = np.where(warped[..., :1] < 0, table, warped)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float32)
    light = 1 - 0.35 * (rng.uniform() * xs / ow + rng.uniform() * ys / oh)
    cx, cy = rng.uniform(0, ow), rng.uniform(0, oh)
    light *= 1 - 0.35 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (0.06 * ow * oh))
    warm = np.float32([1.0, rng.uniform(0.93, 1.0), rng.uniform(0.82, 0.97)])
    photo = photo * light[..., None] * warm
    photo = cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(0.4, 1.1)))
    photo += rng.normal(0, 0.015, photo.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(*jpeg)))
    return buf.getvalue()
