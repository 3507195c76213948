"""Grade a photographed worksheet: markers -> flat page -> sheet id -> key -> each answer box read and marked.

Each box is cropped just inside its printed border (found in the photo near where the key puts
it, since rectification is good to about a millimetre), its ink is
counted (too little: the box is blank), and all boxes of a page are read in one batch by the line
reader under the digits-only grammar. A box is marked:

- **correct**: the best reading is the expected answer and its probability is at least ``T_CORRECT``;
- **wrong**: the best reading is another number with probability at least ``T_WRONG`` *and* the
  expected answer is unlikely (below ``T_EXPECTED``) - a confident misreading of a right answer
  must not cost the pupil a mark;
- **unsure**: anything else (the teacher looks);
- **blank**: no ink.

A problem with several boxes (``q R r``) is correct when all are; wrong when one is confidently wrong
or some but not all are blank; blank when all are; else unsure.
"""

from __future__ import annotations

import functools
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DigitlabError, ImageError
from ..server.limits import MAX_PHOTO_PIXELS
from .layout import BOX_LINE_MM, NAME_BOX_MM, PNG_DPI, redraw, to_raster
from .markers import NoSheetFound, find_markers, read_sheet_id, rectify

# Chosen on validation handwriting (benchmarks/printed_sheets.py --bank val --calibrate): a confident
# cross needs a very sure reading; a tick needs only the expected answer to be the best reading.
T_CORRECT = 0.3
T_WRONG = 0.9
T_EXPECTED = 0.05
SEARCH_MM = 1.5  # the printed border is looked for this far either side of where the key puts it
WORK_SIDE = 2600  # photos are downscaled to this before anything else (a 12 MP photo is 4000 px)


@dataclass
class Graded:
    result: dict  # the JSON object of ``digitlab worksheet grade --json``
    key: dict
    photo: np.ndarray  # float RGB as graded (possibly downscaled)
    H: np.ndarray  # page mm -> photo px
    crops: dict = field(default_factory=dict)  # (problem id, part) -> PNG bytes of the box's ink
    name_png: bytes | None = None
    readings: dict = field(default_factory=dict)  # problem id -> [Reading or None (blank)] per box


def _png(grey01: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(1 - grey01, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _edge(profile: np.ndarray) -> tuple[int, int] | None:
    """(first, last) index of the printed line in a darkness profile across one edge, or None."""
    if len(profile) == 0:
        return None
    c = int(np.argmax(profile))
    peak = float(profile[c])
    if peak < 0.2:  # no line there (faint print, or a box drawn without border)
        return None
    on = profile >= 0.45 * peak
    a = b = c
    while a > 0 and on[a - 1]:
        a -= 1
    while b < len(profile) - 1 and on[b + 1]:
        b += 1
    return a, b


def box_ink(dark: np.ndarray, box_mm, dpi: float = PNG_DPI, search_mm: float = SEARCH_MM,
            printed=None) -> tuple[np.ndarray, bool]:
    """(ink map of the box's inside, 1 = ink; whether there is writing in it).

    The printed border is found, not assumed: the photo's rectification is good to about a
    millimetre, and a fixed inset either leaves a sliver of border (read as a "1") or cuts off a
    digit written close to it. Along each edge, the line is the row or column that is dark along
    (nearly) the whole side - a pupil's "1" beside it is dark over part of it only - and the crop
    starts just inside it.
    """
    s = dpi / 25.4
    x0, y0, x1, y1 = (v * s for v in box_mm)
    m = search_mm * s
    H, W = dark.shape
    top, left = max(0, round(y0 - m)), max(0, round(x0 - m))
    region = dark[top : min(H, round(y1 + m)), left : min(W, round(x1 + m))]
    ex0, ey0, ex1, ey1 = x0 - left, y0 - top, x1 - left, y1 - top  # expected lines in the region
    h, w = region.shape
    if h < 4 or w < 4:
        return np.zeros((max(h, 1), max(w, 1)), np.float32), False
    pad = max(1, round(0.25 * s))  # clearance inside the line (its blurred edge)
    fallback = BOX_LINE_MM * s + pad

    def side(prof: np.ndarray, lo: float, inward: int) -> int:
        a = max(0, round(lo - m))
        found = _edge(prof[a : round(lo + m) + 1])
        if found is None:
            return round(lo + inward * fallback)
        return a + (found[1] + pad if inward > 0 else found[0] - pad)

    # The top and bottom lines first (a row of digits is dark over part of a row only), then the
    # sides between them: a column is the border when it is dark along ~all of that height, which
    # a pupil's "1" - however tall - is not.
    mid = region[:, max(0, round(ex0 + m)) : max(1, round(ex1 - m))]
    rows = np.quantile(mid, 0.2, axis=1)
    rt, rb = side(rows, ey0, +1), side(rows, ey1, -1) + 1
    cols = np.quantile(region[max(0, rt) : max(1, rb)], 0.1, axis=0)
    cl, cr = side(cols, ex0, +1), side(cols, ex1, -1) + 1
    crop = region[max(0, rt) : max(0, rb), max(0, cl) : max(0, cr)]
    if crop.shape[0] < 4 or crop.shape[1] < 4:
        return np.zeros((4, 4), np.float32), False
    d = np.clip(crop - 0.1, 0, 1)
    mask = (d > 0.25).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    h = d.shape[0]
    # A stroke of a digit is tall or big; paper grain, JPEG noise and a pencil dot are not.
    keep = (stats[:, cv2.CC_STAT_HEIGHT] >= 0.22 * h) | (stats[:, cv2.CC_STAT_AREA] >= 0.012 * d.size)
    keep[0] = False
    if not keep.any() or stats[keep, cv2.CC_STAT_AREA].sum() < 0.004 * d.size:
        return np.zeros_like(d), False
    near = cv2.dilate(keep[labels].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    d = np.where(near, d, 0)
    if printed is not None:
        d = _with_overflow(dark, d, keep[labels], top + max(0, rt), left + max(0, cl), printed)
    hi = float(np.percentile(d[d > 0.25], 95))
    return np.clip(d / max(hi, 0.3), 0, 1).astype(np.float32), True


def _with_overflow(dark: np.ndarray, d: np.ndarray, inside: np.ndarray, y0: int, x0: int, printed) -> np.ndarray:
    """The box's ink ``d`` (its writing ``inside``, at ``y0, x0`` in ``dark``) with the writing that
    carries on past its left or right border: a pupil's "14" begun left of a small box, or its last
    digit written over the edge, is read whole instead of as "4".

    When there is ink near a side inside the box, the ink beside the box that joins it (a gap
    narrower than a digit's spacing) is kept, less the box's border (long straight runs in the photo)
    and the sheet's printed text (``printed()``: a mask in ``dark``'s pixels, widened by the
    rectification's error), so the question's "=" stays out. A stroke that runs along the border
    itself (a "1" written on it) loses what lies on the line."""
    bh, bw = d.shape
    reach = round(0.9 * bh)  # most of a digit either side
    H, W = dark.shape
    wx0, wx1 = max(0, x0 - reach), min(W, x0 + bw + reach)
    wy0, wy1 = max(0, y0 - round(0.15 * bh)), min(H, y0 + bh + round(0.15 * bh))
    iy, ix = y0 - wy0, x0 - wx0
    win = np.clip(dark[wy0:wy1, wx0:wx1] - 0.1, 0, 1)
    raw = (win > 0.25).astype(np.uint8)
    # a side to look past: there is ink near it inside the box (the box's writing, or the sliver of
    # a digit that straddles the border, too small to be kept as writing on its own)
    near, rows = max(8, round(0.12 * bh)), slice(iy + 2, iy + bh - 2)
    to_left, to_right = bool(raw[rows, ix : ix + near].any()), bool(raw[rows, ix + bw - near : ix + bw].any())
    if not (to_left or to_right):
        return d
    rules = (cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((1, max(3, round(0.5 * bw))), np.uint8))
             | cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((max(3, round(0.7 * bh)), 1), np.uint8)))
    rules = cv2.dilate(rules, np.ones((3, 3), np.uint8)) > 0  # the box's border, as the photo shows it
    ink = (raw.astype(bool) & ~rules & ~printed()[wy0:wy1, wx0:wx1]).astype(np.uint8)
    ink[iy : iy + bh, ix : ix + bw] = raw[iy : iy + bh, ix : ix + bw] | inside
    # a gap as wide as the border with its margin of error, or as digits leave between them
    joined = cv2.dilate(ink, np.ones((5, max(7, round(0.3 * bh))), np.uint8))
    _, labels = cv2.connectedComponents(joined, connectivity=8)
    hit = np.unique(labels[iy : iy + bh, ix : ix + bw][ink[iy : iy + bh, ix : ix + bw] > 0])
    keep = np.isin(labels, hit[hit > 0]) & (ink > 0)
    keep[:, ix : ix + bw] = False  # inside, the box's own reading of its ink stands
    keep[:, : ix] &= to_left
    keep[:, ix + bw :] &= to_right
    if keep.sum() < 0.01 * d.size:
        return d  # nothing worth the name outside: the writing only came near the border
    whole = np.zeros(win.shape, np.float32)
    whole[iy : iy + bh, ix : ix + bw] = d
    whole = np.where(keep, win, whole)
    rows, cols = (np.nonzero(whole.max(axis=k) > 0.25)[0] for k in (1, 0))
    return whole[max(0, rows[0] - 3) : rows[-1] + 4, max(0, cols[0] - 3) : cols[-1] + 4]


def mark_part(reading, expected: str) -> tuple[str, float]:
    """(status, confidence) of one non-blank box."""
    if reading is None or reading.text is None:
        return "unsure", 0.0
    top, p = reading.text, float(reading.probability)
    same = lambda a, b: a.lstrip("0") == b.lstrip("0")  # noqa: E731  "07" is 7
    p_exp = sum(q for t, q in reading.nbest if same(t, expected))
    if same(top, expected):
        return ("correct" if p >= T_CORRECT else "unsure"), p
    if p >= T_WRONG and p_exp < T_EXPECTED:
        return "wrong", p
    return "unsure", p


def mark_problem(parts: list[tuple[str, float]]) -> tuple[str, float]:
    statuses = [s for s, _ in parts]
    conf = min(c for _, c in parts)
    if all(s == "blank" for s in statuses):
        return "blank", conf
    if all(s == "correct" for s in statuses):
        return "correct", conf
    if "wrong" in statuses:
        return "wrong", max(c for s, c in parts if s == "wrong")
    # Some boxes written and some blank: a thin "1" along a border can be taken for none, and a pupil
    # may leave "R 0" out, so the teacher looks rather than a right answer getting a cross (in photos
    # of sheets with answers written over the boxes' edges, 2 of the 8 false crosses of 400 answers).
    return "unsure", conf


def _check_pixels(source, label: str) -> None:
    """Refuse a photo of more than ``MAX_PHOTO_PIXELS`` from its header, before it is decoded (a small
    PNG can declare 8000x7000 px: 170 MB as RGB, more while it is worked on)."""
    from PIL import Image

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below says it better
            with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as img:
                w, h = img.size
    except Image.DecompressionBombError:
        raise ImageError(f"{label}: photo has too many pixels (at most {MAX_PHOTO_PIXELS / 1e6:.0f} million)") from None
    except Exception:  # not an image, or not one PIL reads: load_rgb says what is wrong, in its words
        return
    if w * h > MAX_PHOTO_PIXELS:
        raise ImageError(f"{label}: photo has too many pixels ({w}x{h}; at most {MAX_PHOTO_PIXELS / 1e6:.0f} "
                         "million): send it at a phone camera's usual size")


def grade_sheet(source, name: str | None, key: dict | None, lookup, model, keep_crops: bool = True,
                overflow: bool = True) -> Graded:
    """Grade one photo, its boxes read by ``model`` (``predictor.grade_photo`` builds it). ``key``: the
    answer key to use; else ``lookup(sheet_id)`` gives it (the database).
    ``overflow=False`` reads each box's inside alone, not the writing that runs over its edge
    (``_with_overflow``): what the grader did before, kept so that the two can be compared.

    Raises ``NoSheetFound`` (an ``ImageError``) when the photo shows no readable worksheet.
    """
    from ..io.images import load_rgb
    from ..page.ink import darkness, flatten_light
    from ..reader.decode import NUMBER
    from ..reader.read import read_lines

    t0 = time.perf_counter()
    label = name or (str(source) if isinstance(source, (str, Path)) else "photo")
    _check_pixels(source, label)
    rgb = load_rgb(source, name=label)
    h, w = rgb.shape[:2]
    if max(h, w) > WORK_SIDE:
        s = WORK_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    try:
        found = find_markers(rgb)
    except NoSheetFound as exc:
        raise NoSheetFound(f"{label}: {exc}") from None
    page = rectify(rgb, found)
    try:
        sheet_id = read_sheet_id(page, photo=rgb)
    except NoSheetFound as exc:
        if key is None:
            raise NoSheetFound(f"{label}: {exc}") from None
        sheet_id = key["sheet_id"]  # the teacher said which key; the QR code is only a check
    if key is not None and key["sheet_id"] != sheet_id:
        raise NoSheetFound(f"{label}: this is sheet {sheet_id}, but the key given is for sheet {key['sheet_id']}")
    if key is None:
        key = lookup(sheet_id) if lookup else None
        if key is None:
            raise NoSheetFound(f"{label}: sheet {sheet_id} is not in the database (made elsewhere? grade with --key FILE)")
    dark = darkness(flatten_light(page, stroke_px=4.0))

    @functools.cache
    def printed() -> np.ndarray:  # drawn only for a page where some answer runs over its box
        sheet = redraw(key)  # its print less the boxes, whose borders are found in the photo, exactly
        sheet["draw"] = [d for d in sheet["draw"] if d[0] != "rect"]
        mask = (to_raster(sheet, PNG_DPI).min(axis=2) < 160).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((9, 9), np.uint8)) > 0  # about the rectification's error
        out = np.zeros(dark.shape, bool)
        h, w = min(out.shape[0], mask.shape[0]), min(out.shape[1], mask.shape[1])
        out[:h, :w] = mask[:h, :w]
        return out

    parts, inks = [], []
    crops = {}
    for p in key["problems"]:
        for k, box in enumerate(p["boxes_mm"]):
            ink, has = box_ink(dark, box, printed=printed if overflow else None)
            parts.append((p, k, has))
            if has:
                inks.append(ink)
            if keep_crops:
                crops[(p["id"], k)] = _png(ink if has else np.zeros((4, 4), np.float32))
    # The default reader, as ``read`` and ``check`` read (no test-time augmentation: with the CRNN it
    # left more answers unsure on validation sheets, benchmarks/printed_sheets.py --bank val).
    readings = read_lines(inks, NUMBER, model=model, tta=False) if inks else []
    it = iter(readings)
    per_problem: dict[int, list] = {}
    readings: dict[int, list] = {}
    for p, k, has in parts:
        r = next(it) if has else None
        status, conf = mark_part(r, p["answer"][k]) if has else ("blank", 1.0)
        per_problem.setdefault(p["id"], []).append((status, conf, r.text if r is not None else None))
        readings.setdefault(p["id"], []).append(r)
    problems = []
    for p in key["problems"]:
        marks = per_problem[p["id"]]
        status, conf = mark_problem([(s, c) for s, c, _ in marks])
        problems.append({"id": p["id"], "op": p.get("op", ""), "question": p.get("question", ""),
                         "expected": list(p["answer"]), "read": [t for _, _, t in marks], "status": status,
                         "confidence": round(float(conf), 4)})
    score = sum(q["status"] == "correct" for q in problems)
    result = {"file": label, "sheet_id": sheet_id, "score": score, "total": len(problems),
              "unsure": sum(q["status"] == "unsure" for q in problems), "problems": problems,
              "seconds": round(time.perf_counter() - t0, 3)}
    name_png = None
    if keep_crops:
        s = PNG_DPI / 25.4
        x0, y0, x1, y1 = NAME_BOX_MM
        name_png = _png(dark[round(y0 * s) + 3 : round(y1 * s) - 3, round(x0 * s) + 3 : round(x1 * s) - 3])
    return Graded(result, key, rgb, found.H, crops, name_png, readings)


COLOURS = {"correct": (30, 140, 50), "wrong": (200, 40, 40), "unsure": (230, 130, 0), "blank": (200, 40, 40)}


def annotate(g: Graded, max_side: int | None = None, fmt: str = "PNG") -> bytes:
    """The photo with a tick, a cross and the right answer, or a "?" beside each answer (PNG bytes;
    ``max_side``/``fmt="JPEG"`` for a lighter copy, e.g. for the web page)."""
    from PIL import Image, ImageDraw, ImageFont

    from .layout import font_path

    img = Image.fromarray((np.clip(g.photo, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)

    def pt(x, y):
        v = g.H @ np.array([x, y, 1.0])
        return float(v[0] / v[2]), float(v[1] / v[2])

    mm = np.linalg.norm(np.subtract(pt(0, 0), pt(10, 0))) / 10  # photo px per mm, roughly
    font = ImageFont.truetype(font_path(), max(10, int(5.5 * mm)))
    big = ImageFont.truetype(font_path(), max(12, int(9 * mm)))
    by_id = {p["id"]: p for p in g.key["problems"]}
    for q in g.result["problems"]:
        boxes = by_id[q["id"]]["boxes_mm"]
        colour = COLOURS[q["status"]]
        last = boxes[-1]
        for b in boxes:
            d.polygon([pt(b[0], b[1]), pt(b[2], b[1]), pt(b[2], b[3]), pt(b[0], b[3])], outline=colour,
                      width=max(2, int(0.5 * mm)))
        # the mark sits just right of the printed line (the layout keeps room for it)
        right = by_id[q["id"]].get("line_mm", last)[2]
        h = last[3] - last[1]
        cx, cy = right + 0.45 * h, (last[1] + last[3]) / 2
        s = 0.28 * h
        wid = max(2, int(0.8 * mm))
        if q["status"] == "correct":
            d.line([pt(cx - s, cy), pt(cx - s / 3, cy + s), pt(cx + s, cy - s)], fill=colour, width=wid)
        elif q["status"] in ("wrong", "blank"):
            d.line([pt(cx - s, cy - s), pt(cx + s, cy + s)], fill=colour, width=wid)
            d.line([pt(cx - s, cy + s), pt(cx + s, cy - s)], fill=colour, width=wid)
            d.text(pt(cx + 1.5 * s, cy), " R ".join(q["expected"]), fill=colour, font=font, anchor="lm")
        else:
            d.text(pt(cx, cy), "?", fill=colour, font=big, anchor="mm")
    d.text(pt(105, 37), f"{g.result['score']} / {g.result['total']}", fill=(200, 40, 40), font=big, anchor="mm")
    if max_side and max(img.size) > max_side:
        k = max_side / max(img.size)
        img = img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def parse_photo_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DigitlabError) else f"{type(exc).__name__}: {exc}"
