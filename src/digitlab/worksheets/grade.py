"""Grade a photographed worksheet: markers -> flat page -> sheet id -> key -> each answer box read and marked.

Each box is cropped just inside its printed border (found in the photo near where the key puts
it, since rectification is good to about a millimetre), with what the pupil wrote over its edge
(``boxes.box_ink``); its ink is counted (too little: the box is blank), and all boxes of a page
are read in one batch by the line reader under the digits-only grammar. A box is marked:

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
from .boxes import box_ink
from .layout import NAME_BOX_MM, PNG_DPI, redraw, to_raster
from .markers import NoSheetFound, find_markers, read_sheet_id, rectify

# Chosen on validation handwriting (benchmarks/printed_sheets.py --bank val --calibrate): a confident
# cross needs a very sure reading; a tick needs only the expected answer to be the best reading.
T_CORRECT = 0.3
T_WRONG = 0.9
T_EXPECTED = 0.05
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
        mask = to_raster(sheet, PNG_DPI).min(axis=2) < 160  # exactly: ``boxes`` places it around each box
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
