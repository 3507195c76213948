"""Mark a checked page on the user's own image: a tick, a cross with the right answer, or a "?"."""

from __future__ import annotations

import io

import cv2
import numpy as np

from ..io.files import atomic_write

COLOURS = {"correct": (30, 140, 50), "wrong": (200, 40, 40), "unsure": (230, 130, 0), "unreadable": (120, 120, 120),
           "computed": (30, 90, 200)}


def annotate(result, out_path) -> None:
    """Write the user's image with each line outlined and marked beside its right end (PNG, atomic)."""
    from PIL import Image

    img = (np.clip(result.image, 0, 1) * 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    canvas = np.ascontiguousarray(img.copy())
    h, w = canvas.shape[:2]
    marks = [_mark_place(line, w, h) for line in result.lines]
    # A right answer written beside a line that ends near the image's edge gets white paper to sit on.
    need = max([cx + lh // 3 + 6 + cv2.getTextSize(_label(line), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, lh / 45),
                                                   max(1, max(2, lh // 14) // 2))[0][0] + 4
                for line, (_, cx, _, lh) in zip(result.lines, marks) if _label(line)] + [w])
    if need > w:
        canvas = np.ascontiguousarray(np.pad(canvas, ((0, 0), (0, need - w), (0, 0)), constant_values=255))
    for line, (poly, cx, cy, lh) in zip(result.lines, marks):
        colour = COLOURS.get(line.status, COLOURS["unsure"])
        thick = max(2, lh // 14)
        cv2.polylines(canvas, [poly], True, colour, max(1, thick // 2), cv2.LINE_AA)
        s = lh // 3
        if line.status == "correct":
            cv2.line(canvas, (cx - s, cy), (cx - s // 3, cy + s), colour, thick, cv2.LINE_AA)
            cv2.line(canvas, (cx - s // 3, cy + s), (cx + s, cy - s), colour, thick, cv2.LINE_AA)
            label = ""
        elif line.status == "wrong":
            cv2.line(canvas, (cx - s, cy - s), (cx + s, cy + s), colour, thick, cv2.LINE_AA)
            cv2.line(canvas, (cx - s, cy + s), (cx + s, cy - s), colour, thick, cv2.LINE_AA)
            label = _label(line)
        elif line.status == "computed":
            label = f"= {line.value_exact or line.value}"
            cx -= s
        else:
            label = "?"
            cx -= s
        if label:
            cv2.putText(canvas, label, (cx + s + 6, cy + s // 2), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, lh / 45), colour,
                        max(1, thick // 2), cv2.LINE_AA)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "PNG")
    atomic_write(out_path, buf.getvalue())


def _mark_place(line, w: int, h: int) -> tuple[np.ndarray, int, int, int]:
    """(outline, x, y of the mark, line height): the mark sits just right of the line, along its direction."""
    poly = np.asarray(line.polygon or [[line.bbox[0], line.bbox[1]], [line.bbox[2], line.bbox[1]],
                                       [line.bbox[2], line.bbox[3]], [line.bbox[0], line.bbox[3]]], np.int32)
    lh = max(10, int(np.linalg.norm(poly[3] - poly[0])))
    right = (poly[1] + poly[2]) / 2
    direction = poly[1] - poly[0]
    direction = direction / max(1e-6, np.linalg.norm(direction))
    cx, cy = (right + direction * (lh * 0.8)).astype(int)
    return poly, int(np.clip(cx, lh // 2, w - lh // 2)), int(np.clip(cy, lh // 2, h - lh // 2)), lh


def _label(line) -> str:
    """The right answer written beside a crossed line."""
    return f"= {line.value_exact or line.value}" if line.status in ("wrong", "computed") else ""
