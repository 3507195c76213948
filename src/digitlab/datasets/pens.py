"""Real pen trajectories rendered as ink: digits of real writers, composed into lines.

Sources (both CC BY 4.0, UNIPEN text format, read from ``$DIGITLAB_DATA``):
- UCI pendigits (Alpaydin & Alimoglu, DOI 10.24432/C5MG6K): ``pendigits-orig.tra`` (30 writers, for
  training and validation) and ``pendigits-orig.tes`` (14 other writers, **for testing only**);
- UJI Pen Characters v1 (Llorens et al., LREC 2008): 11 writers, digits and letters (two of each).

The operators (+ - x / = and the obelus) are not in either set; they are drawn as pen strokes with the
same pen and a writer's size and slant, with jitter, and a UJI writer's own "x" where one is asked for.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError

Strokes = list[np.ndarray]  # each (n, 2) float: x right, y down


@dataclass
class PenSet:
    """Characters of real writers: ``strokes[i]`` is written by ``writers[i]`` and means ``labels[i]``."""

    strokes: list[Strokes]
    labels: list[str]
    writers: list[str]
    by_writer: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, (w, c) in enumerate(zip(self.writers, self.labels)):
            self.by_writer.setdefault(w, {}).setdefault(c, []).append(i)


_SEGMENT = re.compile(r'\.SEGMENT\s+\S+\s+\S+\s+\S+\s+"(.)"')


def parse_unipen(text: str, writer_of=None, name: str = "<text>") -> tuple[list[Strokes], list[str], list[str]]:
    """(strokes, labels, writers) of a UNIPEN file. ``writer_of(comment)`` names a sample's writer from its
    ``.COMMENT`` line (pendigits: "<label> <writer> <n>"); None: one writer, ``name``."""
    samples, labels, writers = [], [], []
    cur: Strokes | None = None
    pts: list[tuple[float, float]] | None = None
    writer = name
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(".SEGMENT"):
            m = _SEGMENT.match(line)
            if not m:
                raise DataError(f"{name}: malformed .SEGMENT line: {line[:60]!r}")
            cur = []
            samples.append(cur)
            labels.append(m.group(1))
            writers.append(writer)
        elif line.startswith(".COMMENT") and cur is not None and writer_of is not None:
            writers[-1] = writer_of(line)
        elif line.startswith(".PEN_DOWN"):
            pts = []
        elif line.startswith(".PEN_UP"):
            if cur is not None and pts:
                cur.append(np.asarray(pts, np.float32))
            pts = None
        elif pts is not None and line and not line.startswith("."):
            x, y = line.split()[:2]
            pts.append((float(x), float(y)))
    keep = [i for i, s in enumerate(samples) if s]
    return [samples[i] for i in keep], [labels[i] for i in keep], [writers[i] for i in keep]


def _data_dir(data_dir=None) -> Path:
    d = data_dir or os.environ.get("DIGITLAB_DATA")
    if not d:
        raise DataError("set DIGITLAB_DATA (or --data-dir) to the folder that holds pendigits/ and uji_penchars_v1/")
    return Path(d).expanduser()


def _read_gz(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path} not found: the real-pen sets come from ../shared/datasets (CC BY 4.0)")
    return gzip.decompress(path.read_bytes()).decode("ascii", "replace")


def load_pendigits(split: str = "tra", data_dir=None) -> PenSet:
    """UCI pendigits pen trajectories: ``split`` "tra" (30 writers) or "tes" (14 others; testing only).

    pendigits' y axis points up (tablet units), so it is flipped to image coordinates here.
    """
    if split not in ("tra", "tes"):
        raise DataError(f"pendigits split must be 'tra' or 'tes', not {split!r}")
    text = _read_gz(_data_dir(data_dir) / "pendigits" / f"pendigits-orig.{split}.gz")
    strokes, labels, writers = parse_unipen(text, lambda c: f"pen{split}-{c.split()[2]}", f"pendigits-{split}")
    strokes = [[s * np.float32([1, -1]) for s in ch] for ch in strokes]
    return PenSet(strokes, labels, writers)


def load_uji(data_dir=None, chars: str | None = None) -> PenSet:
    """UJI Pen Characters v1: 11 writers, two samples of each digit and letter (``chars``: keep only those)."""
    folder = _data_dir(data_dir) / "uji_penchars_v1"
    strokes, labels, writers = [], [], []
    for k in range(1, 12):
        s, l, w = parse_unipen(_read_gz(folder / f"UJIpenchars-w{k:02d}.gz"), None, f"uji-w{k:02d}")
        for a, b, c in zip(s, l, w):
            if chars is None or b in chars:
                strokes.append(a), labels.append(b), writers.append(c)
    return PenSet(strokes, labels, writers)


# ---- operators drawn as strokes (unit box: x 0..w, y 0..1 of the digit height, y down) ----

def _line(p, q, n: int = 12) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (np.asarray(p, np.float32) * (1 - t) + np.asarray(q, np.float32) * t).astype(np.float32)


def operator_strokes(op: str, rng: np.random.Generator) -> Strokes:
    """Pen strokes of an operator in digit-height units (the digit box is 0..1 high), with jitter."""
    j = lambda s=0.04: rng.normal(0, s)  # noqa: E731
    mid = 0.5 + j(0.06)
    if op == "+":
        a = rng.uniform(0.22, 0.34)
        return [_line((0.0 + j(), mid + j()), (2 * a + j(), mid + j())),
                _line((a + j(), mid - a + j()), (a + j(), mid + a + j()))]
    if op == "-":
        w = rng.uniform(0.35, 0.6)
        return [_line((0, mid + j()), (w, mid + j()))]
    if op == "=":
        w, g = rng.uniform(0.4, 0.6), rng.uniform(0.09, 0.16)
        return [_line((0 + j(), mid - g + j(0.02)), (w + j(), mid - g + j(0.02))),
                _line((0 + j(), mid + g + j(0.02)), (w + j(), mid + g + j(0.02)))]
    if op == "*":  # a cross: x
        a = rng.uniform(0.18, 0.28)
        return [_line((0 + j(), mid - a + j()), (2 * a + j(), mid + a + j())),
                _line((2 * a + j(), mid - a + j()), (0 + j(), mid + a + j()))]
    if op == "/":
        if rng.random() < 0.5:  # a slash, leaning right, as tall as a digit or taller
            top, lean = rng.uniform(-0.1, 0.05), rng.uniform(0.35, 0.6)
            return [_line((lean + j(), top), (0.0 + j(), rng.uniform(0.95, 1.1)))]
        a = rng.uniform(0.24, 0.34)  # an obelus: a bar and two dots (short dabs of the pen)
        dot = lambda y: _line((a - 0.04, y - 0.02), (a + 0.04, y + 0.02), 3)  # noqa: E731
        return [_line((0 + j(), mid + j(0.02)), (2 * a + j(), mid + j(0.02))), dot(mid - rng.uniform(0.18, 0.26)),
                dot(mid + rng.uniform(0.18, 0.26))]
    if op == "(" or op == ")":
        t = np.linspace(-1, 1, 16)
        bow = rng.uniform(0.12, 0.2) * (1 - t ** 2)
        x = -bow if op == "(" else bow  # "(" bows out to the left
        return [np.c_[x - x.min(), 0.5 + 0.55 * t].astype(np.float32)]
    raise ValueError(f"no strokes for operator {op!r}")


def _normalised(strokes: Strokes, height: float) -> Strokes:
    """A real character scaled to ``height`` (its box's height), top-left at (0, 0)."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(0), pts.max(0)
    scale = height / max(hi[1] - lo[1], 1e-3, (hi[0] - lo[0]) / 1.5)
    return [(s - lo) * scale for s in strokes]


@dataclass
class Writer:
    """How one writer places characters on a line: size, slant, spacing and pen."""

    height: float
    slant: float  # shear, x += slant * (y from the bottom)
    gap: float  # space between characters, in heights
    pen: int  # stroke width in px
    drift: float  # baseline change per character, in heights

    @classmethod
    def draw(cls, rng: np.random.Generator, height: float = 40.0) -> "Writer":
        return cls(height * rng.uniform(0.8, 1.2), rng.uniform(-0.25, 0.15), rng.uniform(0.05, 0.45),
                   int(rng.integers(2, 6)), rng.normal(0, 0.03))

    @classmethod
    def tablet(cls, rng: np.random.Generator) -> "Writer":
        """A writer as a pen tablet's export draws them: symbols 100-300 px high in a 1-3 px line."""
        w = cls.draw(rng, float(rng.uniform(100, 300)))
        return cls(w.height, w.slant, w.gap, int(rng.integers(1, 4)), w.drift)


def compose_line(text: str, pens: PenSet, writer_id: str, rng: np.random.Generator,
                 writer: Writer | None = None, margin: int = 12, x_from: PenSet | None = None,
                 messy: float = 0.0) -> np.ndarray:
    """An ink map (float32, 1 = ink) of ``text`` written by ``writer_id``: each digit one of that writer's
    own samples, operators drawn in the same pen (a "*" is the writer's own "x" when ``x_from`` has one
    for a UJI writer). Characters sit on a drifting baseline, each a little off it, at the writer's spacing.

    ``messy`` (in heights) writes the line as people do when nothing rules it: each symbol up to that
    far off the baseline, the "=" lower, the answer climbing or falling, and sizes varying more.
    """
    w = writer or Writer.draw(rng)
    own = pens.by_writer[writer_id]
    placed: list[Strokes] = []
    x, base = 0.0, 0.0
    # (no draws at all when tidy: the tidy lines of a seed stay the lines benchmarks were measured on)
    jitter = (lambda lo, hi: rng.uniform(lo, hi) * messy) if messy else (lambda lo, hi: 0.0)
    climb = jitter(-0.5, 0.5)  # the answer's slope, in heights per symbol
    after_equals = False
    for ch in text:
        h = w.height * rng.uniform(0.92, 1.08) * (1 + jitter(-0.5, 0.5))
        if ch.isdigit():
            strokes = _normalised(pens.strokes[int(rng.choice(own[ch]))], h)
            dy = base + rng.normal(0, 0.04) * h + jitter(-1, 1) * h
        elif ch == "*" and x_from is not None and writer_id in x_from.by_writer and "x" in x_from.by_writer[writer_id]:
            strokes = _normalised(x_from.strokes[int(rng.choice(x_from.by_writer[writer_id]["x"]))], 0.5 * h)
            dy = base + 0.3 * h
        elif ch == " ":
            x += w.height * 0.6
            continue
        else:
            strokes = [s * h for s in operator_strokes(ch, rng)]
            dy = base + (jitter(0.2, 0.6) * h if ch == "=" else 0.0)
        width = max(float(np.concatenate(strokes)[:, 0].max()), 0.15 * h)
        placed.append([s + np.float32([x, dy]) for s in strokes])
        x += width + w.gap * w.height * rng.uniform(0.6, 1.4)
        base += w.drift * w.height + (climb * w.height if after_equals else 0.0)
        after_equals = after_equals or ch == "="
    pts = np.concatenate([s for ch in placed for s in ch])
    # slant: shear by the height above the line's lowest point
    sheared = [[np.c_[s[:, 0] + w.slant * (pts[:, 1].max() - s[:, 1]), s[:, 1]] for s in ch] for ch in placed]
    pts = np.concatenate([s for ch in sheared for s in ch])
    lo = pts.min(0) - margin - w.pen
    size = np.ceil(pts.max(0) - lo + margin + w.pen).astype(int)
    canvas = np.zeros((int(size[1]), int(size[0])), np.uint8)
    for ch in sheared:
        for s in ch:
            p = np.round((s - lo) * 4).astype(np.int32)  # 2 bits of sub-pixel precision
            cv2.polylines(canvas, [p.reshape(-1, 1, 2)], False, 255, w.pen, cv2.LINE_AA, shift=2)
    return canvas.astype(np.float32) / 255.0


def as_paper(ink: np.ndarray, rng: np.random.Generator | None = None, squared: bool = False) -> np.ndarray:
    """An ink map as a greyscale scan (uint8, dark ink on light paper, a little noise); ``squared``:
    as a colour scan (BGR) of squared paper, as European pupils do their sums on, the squares about
    a digit's height, the lines grey or blue, under the ink."""
    rng = rng or np.random.default_rng(0)
    paper = rng.uniform(215, 250)
    ink_tone = rng.uniform(10, 80)
    a = np.clip(ink, 0, 1)
    if not squared:
        img = paper - (paper - ink_tone) * a + rng.normal(0, 3, ink.shape)
        return np.clip(img, 0, 255).astype(np.uint8)
    h, w = ink.shape
    side, (ox, oy) = rng.uniform(36, 50), rng.uniform(0, 36, 2)
    grid = np.zeros((h, w), np.float32)
    for x in np.arange(ox, w, side):
        cv2.line(grid, (int(x), 0), (int(x), h - 1), 1.0, 1)
    for y in np.arange(oy, h, side):
        cv2.line(grid, (0, int(y)), (w - 1, int(y)), 1.0, 1)
    # Grey lines darken every channel; blue ones (BGR) the red and green channels most.
    tint = np.float32([1, 1, 1]) if rng.random() < 0.5 else np.float32([0.2, 0.6, 0.9])
    sheet = paper - rng.uniform(25, 90) * grid[..., None] * tint
    img = sheet * (1 - a[..., None]) + ink_tone * a[..., None] + rng.normal(0, 3, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def number_text(rng: np.random.Generator, low: int = 1, high: int = 6) -> str:
    """A written number of ``low``..``high`` digits (no leading zero unless it is 0)."""
    n = int(rng.integers(low, high + 1))
    return str(int(rng.integers(0, 10))) if n == 1 else str(int(rng.integers(10 ** (n - 1), 10 ** n)))


def pen_lines(pens: PenSet, n: int, seed: int = 0, kind: str = "line", x_from: PenSet | None = None,
              careless: float = 0.2, messy: float = 0.0, make_text=None,
              tablet: bool = False) -> tuple[list[np.ndarray], list[str], list[str]]:
    """``n`` ink maps of real writers' digits composed as ``kind`` "line" ("a op b = c", half of them
    wrong, as ``synthetic.pagegen.school_problem`` draws them) or "number", or as ``make_text(rng)``
    writes; (inks, texts, writers). ``messy``: see ``compose_line``; ``tablet``: written large in a fine
    line, as pen tablets export them (``Writer.tablet``)."""
    from ..synthetic.pagegen import school_problem

    rng = np.random.default_rng(seed)
    writers = sorted(pens.by_writer)
    inks, texts, who = [], [], []
    while len(inks) < n:
        wid = writers[int(rng.integers(len(writers)))]
        text = make_text(rng) if make_text else school_problem(rng, careless) if kind == "line" else number_text(rng)
        if any(ch.isdigit() and ch not in pens.by_writer[wid] for ch in text):
            continue  # a writer with no sample of a digit
        writer = Writer.tablet(rng) if tablet else None
        inks.append(compose_line(text, pens, wid, rng, writer=writer, x_from=x_from, messy=messy))
        texts.append(text)
        who.append(wid)
    return inks, texts, who
