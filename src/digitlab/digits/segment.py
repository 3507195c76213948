"""Split a line of handwriting into symbols: connected components, merged and split as needed.

- parts of one symbol (a broken "5", the bars of "=", the dots of "÷") are merged when they
  overlap horizontally;
- a component far wider than a symbol is (touching digits) is cut at the weakest columns of its
  vertical projection;
- symbols come back left to right, each normalised the MNIST way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .preprocess import NoDigitFound, fit_to_mnist, ink_map, ink_mask
from ..io.images import load_image


@dataclass
class Symbol:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input image
    image: np.ndarray = field(repr=False)  # 28x28 float32, MNIST style
    parts: int = 1  # connected components merged into it

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def components(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of the 8-connected components of a mask, left to right."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:]]
    return sorted(boxes)


def _x_overlap(a, b) -> float:
    inter = min(a[2], b[2]) - max(a[0], b[0])
    return inter / max(1, min(a[2] - a[0], b[2] - b[0]))


def merge_boxes(boxes: list, min_overlap: float = 0.5, line_height: int | None = None) -> list[tuple[tuple[int, int, int, int], int]]:
    """Merge boxes that overlap horizontally by ``min_overlap`` of the narrower one.

    A flat fragment (under a third of the line height: the detached bar of a 5, a dot) needs only
    half that overlap: it is a piece of its neighbour, not a symbol of its own.
    """
    merged: list[list] = []
    for b in sorted(boxes):
        need = min_overlap
        if line_height and min(b[3] - b[1], merged[-1][0][3] - merged[-1][0][1] if merged else line_height) < line_height / 3:
            need = min_overlap / 2
        if merged and _x_overlap(merged[-1][0], b) >= need:
            m = merged[-1][0]
            merged[-1] = [(min(m[0], b[0]), min(m[1], b[1]), max(m[2], b[2]), max(m[3], b[3])), merged[-1][1] + 1]
        else:
            merged.append([b, 1])
    return [(tuple(b), n) for b, n in merged]


def split_wide(ink: np.ndarray, box, line_height: int, max_aspect: float = 1.15) -> list[tuple[int, int, int, int]]:
    """Cut a too-wide component (touching digits) at the weakest columns of its ink projection."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, max(y1 - y0, line_height)
    if w <= max_aspect * h:
        return [box]
    n = max(2, int(round(w / (0.75 * h))))
    proj = ink[y0:y1, x0:x1].sum(axis=0)
    cuts = []
    for i in range(1, n):
        centre = int(i * w / n)
        lo, hi = max(1, centre - w // (3 * n)), min(w - 1, centre + w // (3 * n) + 1)
        cuts.append(lo + int(np.argmin(proj[lo:hi])) if hi > lo else centre)
    edges = [0, *cuts, w]
    out = []
    for a, b in zip(edges, edges[1:]):
        sub = ink[y0:y1, x0 + a : x0 + b] > 0.1
        ys = np.nonzero(sub.any(axis=1))[0]
        if len(ys) and b > a:
            out.append((x0 + a, y0 + int(ys[0]), x0 + b, y0 + int(ys[-1]) + 1))
    return out or [box]


def segment_ink(ink: np.ndarray, min_overlap: float = 0.5, split: bool = True) -> list[Symbol]:
    """Segment an ink map (1 = ink) holding one line of symbols."""
    mask = ink_mask(ink, min_area_frac=0.0002)
    boxes = components(mask)
    if not boxes:
        raise NoDigitFound("no digit found (the image has no ink)")
    heights = [b[3] - b[1] for b in boxes]
    line_h = max(heights)  # the tallest symbol: fragments must not make the line look short
    # Merge first, then drop what is still a lone speck: the dots of "÷" are specks on their own
    # but belong to the bar they sit over.
    merged = [(box, parts) for box, parts in merge_boxes(boxes, min_overlap, line_h)
              if parts > 1 or max(box[2] - box[0], box[3] - box[1]) >= 0.12 * line_h]
    # Ink near the thresholded strokes keeps the anti-aliased fringe and drops distant specks.
    near = ink * (cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    symbols = []
    for box, parts in merged:
        pieces = split_wide(ink, box, line_h) if split and parts == 1 else [box]
        for x0, y0, x1, y1 in pieces:
            symbols.append(Symbol((x0, y0, x1, y1), fit_to_mnist(near[y0:y1, x0:x1]), parts if len(pieces) == 1 else 1))
    return symbols


def segment_image(source, max_side: int | None = None, name: str | None = None) -> list[Symbol]:
    kw = {"name": name}
    if max_side:
        kw["max_side"] = max_side
    return segment_ink(ink_map(load_image(source, **kw)))
