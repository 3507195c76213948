"""Where the writing is on a straightened page: its skew, the columns it is set in, and the bands of
its lines (``page.layout`` composes them into lines to read)."""

from __future__ import annotations

import cv2
import numpy as np


# -- skew ------------------------------------------------------------------------------------------
def estimate_skew(mask: np.ndarray, max_angle: float = 15.0, coarse: float = 0.5) -> float:
    """Angle (degrees, counter-clockwise) by which the text lines are rotated.

    Projection profiles: at the right angle the ink's row histogram is most peaked (text rows vs
    gaps), so we maximise its variance, coarse then fine. The ink pixels are projected directly
    (a sample of them), which is much cheaper than rotating the image for every angle.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 10:
        return 0.0
    if len(xs) > 40000:
        pick = np.random.default_rng(0).choice(len(xs), 40000, replace=False)
        ys, xs = ys[pick], xs[pick]
    xs = xs.astype(np.float64) - mask.shape[1] / 2
    ys = ys.astype(np.float64) - mask.shape[0] / 2
    bin_px = 1.0  # coarser bins alias: short lines give a flat profile, and a bin edge makes a false peak

    def score(angle: float) -> float:
        t = np.deg2rad(angle)
        rows = np.floor((ys * np.cos(t) + xs * np.sin(t)) / bin_px).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        return float(np.sum(counts.astype(np.float64) ** 2))  # variance up to constants (same total)

    best = max(np.arange(-max_angle, max_angle + 1e-9, coarse), key=score)
    best = max(np.arange(best - coarse, best + coarse + 1e-9, 0.05), key=score)
    return float(round(best, 2))


def rotation_matrix(shape: tuple[int, int], angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """2x3 matrix rotating by -angle about the centre, enlarged to keep the whole page; and the size."""
    h, w = shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
    cos, sin = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    return M, (nw, nh)


# -- lines and columns -----------------------------------------------------------------------------
def find_lines(mask: np.ndarray, min_gap_frac: float = 0.25) -> list[tuple[int, int]]:
    """Row ranges (y0, y1) of text lines from the horizontal projection of a deskewed ink mask."""
    rows = mask.sum(axis=1)
    if rows.max() <= 0:
        return []
    on = rows > max(1, 0.01 * rows.max())
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    bands = [list(b) for b in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0])]
    if not bands:
        return []
    med = float(np.median([b[1] - b[0] for b in bands]))
    merged = [bands[0]]
    for b in bands[1:]:
        # Parts of one line (the bars of "=", the dots of "÷", a detached stroke) are separated by
        # gaps much smaller than a line's height; real lines are further apart. Two bands that are
        # each nearly a line high are two lines, however close (a small hand on squared paper).
        gap, a = b[0] - merged[-1][1], merged[-1]
        both_lines = min(b[1] - b[0], a[1] - a[0]) >= 0.6 * med and gap >= max(2, 0.06 * med)
        if (gap < min_gap_frac * med and not both_lines) or (b[1] - b[0]) < 0.3 * med:
            merged[-1][1] = max(merged[-1][1], b[1])
        else:
            merged.append(b)
    merged = _split_tall(rows, merged)
    # Specks are small next to the typical band (not the tallest: a stray long stroke would set
    # that, and every real line would then look like a speck).
    typical = float(np.median([b[1] - b[0] for b in merged]))
    out = []
    for a, b in merged:
        # Splitting a tall band at its faintest rows can leave a slice with no ink at all.
        inked = np.nonzero(rows[a:b] > 0)[0]
        if len(inked) and b - a >= 0.3 * typical:
            out.append((int(a + inked[0]), int(a + inked[-1] + 1)))
    return out


def _split_tall(rows: np.ndarray, bands: list[list[int]]) -> list[list[int]]:
    """Split bands about twice a line's height at their faintest row: two lines whose tails overlap."""
    if len(bands) < 3:
        return bands
    line_h = float(np.median([b[1] - b[0] for b in bands]))
    if line_h < 6:
        return bands  # specks, not lines of writing
    out = []
    for a, b in bands:
        while b - a >= 1.7 * line_h:
            lo, hi = a + int(0.3 * line_h), b - int(0.3 * line_h)
            cut = lo + int(np.argmin(rows[lo:hi]))
            if rows[cut] > 0.25 * rows[a:b].mean() or not a < cut < b:
                break  # no faint row: one tall line after all (a fraction, a big bracket)
            out.append([a, cut])
            a = cut
        out.append([a, b])
    return out


def find_columns(mask: np.ndarray, symbol_h: float) -> list[tuple[int, int]]:
    """Column ranges (x0, x1) of a page of exercises, left to right.

    Candidate columns are separated by vertical white channels wider than 1.5 symbols. A candidate
    whose lines are short (answers written far to the right, a mark in the margin) or that holds
    little ink is not a column of its own: it joins its left neighbour; four symbols or more from
    every neighbour, a quarter of its lines being long is enough (a column of short exercises). A
    strip of short marks that are not on that neighbour's lines (what cleaning leaves of the shadow
    of an open book's binding) is no writing: it belongs to no column.
    """
    cols = mask.sum(axis=0)
    on = np.nonzero(cols > 0)[0]
    if not len(on):
        return []
    runs, start, prev = [], on[0], on[0]
    for x in on[1:]:
        if x - prev > 1.5 * symbol_h:
            runs.append([int(start), int(prev) + 1])
            start = x
        prev = x
    runs.append([int(start), int(prev) + 1])
    total = cols.sum()

    found: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def bands(r) -> list[tuple[int, int]]:
        if (r[0], r[1]) not in found:
            found[r[0], r[1]] = find_lines(mask[:, r[0] : r[1]])
        return found[r[0], r[1]]

    def long_lines(r, apart: bool = False) -> bool:
        sub = mask[:, r[0] : r[1]]
        widths = []
        for y0, y1 in bands(r):
            xs = np.nonzero(sub[y0:y1].any(axis=0))[0]
            widths.append(xs[-1] - xs[0] + 1)
        # Far from its neighbours, a column may hold many short exercises ("1x1=1" written
        # narrow is under two symbols wide): a quarter of its lines being long is enough there.
        share = 0.25 if apart else 0.5
        return bool(widths) and float(np.quantile(widths, 1 - share)) >= 3.0 * symbol_h

    # Runs four symbols or more from every neighbour: answers written far to the right are closer.
    gaps = [np.inf] + [b[0] - a[1] for a, b in zip(runs, runs[1:])] + [np.inf]
    apart = {(r[0], r[1]): min(gaps[i], gaps[i + 1]) >= 4.0 * symbol_h for i, r in enumerate(runs)}

    def is_column(r) -> bool:
        return cols[r[0] : r[1]].sum() / total >= 0.08 and long_lines(r, apart[r[0], r[1]])

    def on_lines_of(r, left) -> bool:
        rows = bands(left)
        mine = bands(r)
        hits = sum(any(min(b1, l1) - max(b0, l0) > 0 for l0, l1 in rows) for b0, b1 in mine)
        return hits >= 0.5 * len(mine)

    # Whether a group is a column is judged on its own run: what joined it (a strip of specks
    # cut into many tiny "lines") must not make a column look like a margin.
    out: list[list] = []  # [x0, x1, a column?, the run it was judged on]
    for r in runs:
        column = is_column(r)
        if out and column and out[-1][2]:
            out.append([r[0], r[1], True, r])
        elif out and not column and out[-1][2] and not long_lines(r) and not on_lines_of(r, out[-1][3]):
            continue
        elif out:
            out[-1][1] = r[1]
            if column and not out[-1][2]:
                out[-1][2:] = [True, r]
        else:
            out.append([r[0], r[1], column, r])
    return [(a, b) for a, b, _, _ in out]
