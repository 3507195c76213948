"""A worksheet: its exercises, where everything is on the page (millimetres), and its PDF and PNG.

The page is A4 portrait. Four ArUco markers (DICT_4X4_50, ids 0-3 clockwise from the top left)
sit at fixed places near the corners and a QR code with the sheet id at the top right; their
geometry is fixed for every sheet (``FORMAT``), so a photo can be rectified and identified before
its answer key is known. Everything is drawn from one list of primitives, by :func:`to_pdf` (vector)
and :func:`to_raster` (any dpi), so the PDF and the PNG agree.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import DigitlabError

PAGE_MM = (210.0, 297.0)
PNG_DPI = 150
FORMAT = "digitlab-worksheet/1"
QR_PREFIX = "DLWS:"
ARUCO_DICT = cv2.aruco.DICT_4X4_50
MARKER_MM = 14.0
MARKER_MARGIN_MM = 8.0
# top-left corner of each marker, clockwise from the top left (ids 0..3)
MARKER_ORIGINS_MM = [(MARKER_MARGIN_MM, MARKER_MARGIN_MM),
                     (PAGE_MM[0] - MARKER_MARGIN_MM - MARKER_MM, MARKER_MARGIN_MM),
                     (PAGE_MM[0] - MARKER_MARGIN_MM - MARKER_MM, PAGE_MM[1] - MARKER_MARGIN_MM - MARKER_MM),
                     (MARKER_MARGIN_MM, PAGE_MM[1] - MARKER_MARGIN_MM - MARKER_MM)]
QR_MM = (160.0, 6.0, 182.0, 28.0)  # x0, y0, x1, y1 (module size follows from the code's version)
NAME_BOX_MM = (44.0, 21.0, 150.0, 33.0)
AREA_MM = (12.0, 40.0, 198.0, 271.0)  # where the exercises go (clear of the markers)
MAX_PROBLEMS = 40
MAX_COLUMN_PROBLEMS = 24  # printed as columns: 4 across, 6 down
OPS = ("+", "-", "x", "/")
OP_PRINT = {"+": "+", "-": "\u2212", "x": "\u00d7", "/": "\u00f7"}
OP_TEXT = {"+": "+", "-": "-", "x": "\u00d7", "/": "\u00f7"}
BOX_LINE_MM = 0.4


@lru_cache(maxsize=1)
def font_path() -> str:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not path.exists():
        raise DigitlabError(f"font not found: {path}")
    return str(path)


@lru_cache(maxsize=1)
def _ref_font():
    from PIL import ImageFont

    return ImageFont.truetype(font_path(), 1000)


def text_width_mm(text: str, size_pt: float) -> float:
    return _ref_font().getlength(text) / 1000 * size_pt * 25.4 / 72


# -- exercises --------------------------------------------------------------------------------------
@dataclass
class Problem:
    id: int
    op: str  # "+", "-", "x", "/"
    parts: list  # printed tokens: str for text, int k for the k-th answer box
    answer: list[str]
    layout: str = "line"  # or "column": the operands stacked by place value, the answer box under a rule

    @property
    def question(self) -> str:
        return " ".join("?" if isinstance(t, int) else t for t in self.parts)


def make_problems(n: int, ops=OPS, max_value: int = 20, remainder: bool = False, missing: bool = False,
                  seed: int | None = None, columns: bool = False) -> list[Problem]:
    """``n`` distinct exercises with operands up to ``max_value`` (results of + and x may exceed it).

    - subtraction never goes below zero; division without ``remainder`` always comes out exact;
    - ``remainder``: divisions are ``a ÷ b = [q] R [r]``;
    - ``missing``: about a third of the exercises ask for an operand instead: ``[ ] + 5 = 12``;
    - ``columns``: written as column sums (+ and -, and x by one digit), the answer under a rule.
    """
    limit = MAX_COLUMN_PROBLEMS if columns else MAX_PROBLEMS
    if not 1 <= n <= limit:
        raise DigitlabError(f"--problems must be between 1 and {limit} (one page{', in columns' if columns else ''}), not {n}")
    ops = [o.lower().replace("*", "x").replace("\u00d7", "x").replace("\u00f7", "/").replace(":", "/") for o in ops]
    bad = [o for o in ops if o not in OPS]
    if bad or not ops:
        raise DigitlabError(f"unknown operation(s) {' '.join(bad) or '(none)'}; choose from + - x /")
    if columns and ("/" in ops or remainder or missing):
        raise DigitlabError("column sums are + - x only, with no remainders or missing operands")
    if not 2 <= max_value <= 10_000:
        raise DigitlabError(f"--max must be between 2 and 10000, not {max_value}")
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for _ in range(n * 200):
        if len(out) == n:
            break
        op = ops[len(out) % len(ops)] if len(out) < len(ops) else str(rng.choice(ops))
        m = max_value
        if op == "+":
            a, b = int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))
            tokens, ans, vals = [a, "+", b], [str(a + b)], (a, b, a + b)
        elif op == "-":
            a, b = sorted(int(v) for v in rng.integers(0, m + 1, 2))[::-1]
            tokens, ans, vals = [a, "-", b], [str(a - b)], (a, b, a - b)
        elif op == "x":
            a, b = int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1) if not columns else rng.integers(2, 10))
            tokens, ans, vals = [a, "x", b], [str(a * b)], (a, b, a * b)
        else:
            b = int(rng.integers(2 if m >= 4 else 1, max(3, min(m, 12)) + 1))
            if remainder:
                a = int(rng.integers(b, max(b, m) + 1))
                q, r = divmod(a, b)
                tokens, ans, vals = [a, "/", b], [str(q), str(r)], (a, b, q)
            else:
                q = int(rng.integers(0 if m < 2 * b else 1, max(1, m // b) + 1))
                a = b * q
                tokens, ans, vals = [a, "/", b], [str(q)], (a, b, q)
        sym = OP_PRINT[op]
        if missing and len(ans) == 1 and rng.random() < 1 / 3:
            a, b, c = vals
            which = int(rng.integers(2))
            if op in ("x", "/") and [a, b][which] == 0:
                which = 1 - which
            parts = [0, sym, str(b), "=", str(c)] if which == 0 else [str(a), sym, 0, "=", str(c)]
            if op == "x" and (a == 0 or b == 0):
                continue  # 0 x ? = 0 has no single answer
            ans = [str(a if which == 0 else b)]
        elif len(ans) == 2:
            parts = [str(tokens[0]), sym, str(tokens[2]), "=", 0, "R", 1]
        else:
            parts = [str(tokens[0]), sym, str(tokens[2]), "=", 0]
        key = tuple(map(str, parts))
        if key in seen:
            continue
        seen.add(key)
        out.append(Problem(len(out) + 1, op, parts, ans, "column" if columns else "line"))
    if len(out) < n:
        raise DigitlabError(f"only {len(out)} different exercises exist with these options; raise --max or add operations")
    return out


# -- layout -----------------------------------------------------------------------------------------
def new_sheet_id() -> str:
    return "WS-" + secrets.token_hex(4).upper()


def aruco_bits(marker_id: int) -> np.ndarray:
    """The marker's cells (6x6 with its black border), 1 = black."""
    d = cv2.aruco.getPredefinedDictionary(ARUCO_DICT)
    img = cv2.aruco.generateImageMarker(d, marker_id, 6)
    return (img < 128).astype(np.uint8)


def qr_bits(text: str) -> np.ndarray:
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    return np.array(qr.get_matrix(), dtype=np.uint8)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_title(title: str) -> str:
    """A title as given, or ``DigitlabError`` naming what is wrong (control characters cannot be printed)."""
    if _CONTROL.search(title):
        raise DigitlabError(f"the title {title!r} has a control character (tab, newline, ...); use plain text")
    if len(title) > 60:
        raise DigitlabError(f"the title is {len(title)} characters long, at most 60")
    return title


def printable(text: str) -> str:
    """``text`` with control characters as spaces: what the PDF and PNG can draw."""
    return _CONTROL.sub(" ", text)


def layout(problems: list[Problem], sheet_id: str, title: str = "Worksheet") -> dict:
    """The answer key and the drawing: a dict with the key fields and ``"draw"`` (primitives in mm)."""
    draw: list[list] = []
    for i, (x, y) in enumerate(MARKER_ORIGINS_MM):
        cell = MARKER_MM / 6
        for r, c in zip(*np.nonzero(aruco_bits(i))):
            draw.append(["fill", x + c * cell, y + r * cell, x + (c + 1) * cell, y + (r + 1) * cell])
    bits = qr_bits(QR_PREFIX + sheet_id)
    qx0, qy0, qx1, _ = QR_MM
    cell = (qx1 - qx0) / bits.shape[1]
    for r, c in zip(*np.nonzero(bits)):
        draw.append(["fill", qx0 + c * cell, qy0 + r * cell, qx0 + (c + 1) * cell, qy0 + (r + 1) * cell])
    draw.append(["text", 27.0, 15.0, 15.0, printable(title[:60]), 0.0])  # a stored sheet may predate check_title
    draw.append(["text", qx0 - 1.0, QR_MM[3] + 3.5, 6.5, sheet_id, 0.45])
    draw.append(["text", 27.0, NAME_BOX_MM[3] - 3.2, 11.0, "Name", 0.0])
    draw.append(["rect", *NAME_BOX_MM])

    if any(p.layout == "column" for p in problems):
        return _sheet(problems, sheet_id, title, draw, _column_cells(problems))
    n = len(problems)
    cols = 1 if n <= 6 else 2
    rows = math.ceil(n / cols)
    ax0, ay0, ax1, ay1 = AREA_MM
    pitch = min(20.0, (ay1 - ay0) / rows)
    box_h = min(14.0, pitch - 2.2)
    col_w = (ax1 - ax0) / cols
    single = [len(p.answer[0]) for p in problems if len(p.answer) == 1]
    digits = [max(single or [1])] + [max([len(p.answer[k]) for p in problems if len(p.answer) == 2] or [1]) for k in (0, 1)]
    for shrink in (1.0, 0.92, 0.85, 0.78, 0.72, 0.66):  # smaller print and boxes until the longest line fits
        size_pt = min(16.0, box_h * 1.45) * shrink
        placed, fits = [], True
        for p in problems:
            col, row = divmod(p.id - 1, rows)
            x = ax0 + col * col_w + 2.0
            top = ay0 + row * pitch + (pitch - box_h) / 2
            base = top + box_h / 2 + size_pt * 25.4 / 72 * 0.36  # baseline so digits sit mid-box
            items = [["text", x, base, size_pt * 0.7, f"{p.id}.", 0.45]]
            x += 9.0 * shrink
            boxes = []
            for t in p.parts:
                if isinstance(t, int):
                    nd = digits[1 + t] if len(p.answer) > 1 else digits[0]
                    w = max(15.0, 6.0 + 0.5 * box_h * nd) * shrink
                    box = [round(x, 2), round(top, 2), round(x + w, 2), round(top + box_h, 2)]
                    items.append(["rect", *box])
                    boxes.append(box)
                    x += w + 2.0
                else:
                    items.append(["text", x, base, size_pt, t, 0.0])
                    x += text_width_mm(t, size_pt) + 2.0 * shrink
            # room for the grader's tick or cross after the last box
            fits &= x + 0.6 * box_h <= ax0 + (col + 1) * col_w
            placed.append((p, items, boxes, [round(ax0 + col * col_w + 2.0, 2), round(top, 2), round(x - 2.0, 2),
                                             round(top + box_h, 2)]))
        if fits:
            break
    else:
        raise DigitlabError("the exercises do not fit the page; lower --max or --problems")
    return _sheet(problems, sheet_id, title, draw, placed)


def _column_cells(problems: list[Problem]) -> list:
    """Column problems in a grid of 4 across: the top number right-aligned, the operator and the bottom
    number under it, a printed rule, the answer box under the rule (the tick or cross goes beside it)."""
    ax0, ay0, ax1, ay1 = AREA_MM
    cols, rows = 4, math.ceil(len(problems) / 4)
    cell_w, cell_h, size_pt = (ax1 - ax0) / cols, min(38.0, (ay1 - ay0) / max(rows, 1)), 16.0
    box_w = max(15.0, 6.0 + 3.8 * max(len(a) for p in problems for a in p.answer))
    width = max(len(t) for p in problems for t in p.parts if isinstance(t, str) and t.isdigit())
    placed = []
    for i, p in enumerate(problems):
        row, col = divmod(i, cols)
        x0, top = ax0 + col * cell_w, ay0 + row * cell_h
        right = x0 + cell_w - 10.0  # the numbers' right edge; the mark goes right of the box
        a, sym, b = (str(t) for t in p.parts[:3])
        line_h, op_x = size_pt * 25.4 / 72 * 1.05, right - text_width_mm("0" * width + sym, size_pt) - 2.0
        rule_y = top + 2 * line_h + 2.2
        items = [["text", x0 + 1.0, top + line_h, size_pt * 0.7, f"{p.id}.", 0.45],
                 ["text", right - text_width_mm(a, size_pt), top + line_h, size_pt, a, 0.0],
                 ["text", right - text_width_mm(b, size_pt), top + 2 * line_h, size_pt, b, 0.0],
                 ["text", op_x, top + 2 * line_h, size_pt, sym, 0.0],
                 ["fill", round(op_x - 1.0, 2), round(rule_y, 2), round(right + 1.5, 2), round(rule_y + 0.5, 2)]]
        # clear of the rule by more than the grader's search for the border (boxes.SEARCH_MM), which would take it for one
        box = [round(right + 1.5 - box_w, 2), round(rule_y + 3.5, 2), round(right + 1.5, 2), round(rule_y + 15.5, 2)]
        items.append(["rect", *box])
        placed.append((p, items, [box], [round(x0 + 1.0, 2), round(top, 2), box[2], box[3]]))
    return placed


def _sheet(problems: list[Problem], sheet_id: str, title: str, draw: list, placed: list) -> dict:
    key_problems = []
    for p, items, boxes, line in placed:
        draw.extend(items)
        key_problems.append({"id": p.id, "op": p.op, "question": p.question, "answer": p.answer, "boxes_mm": boxes,
                             "line_mm": line, **({"layout": "column"} if p.layout == "column" else {})})
    return {"format": FORMAT, "sheet_id": sheet_id, "title": title, "page_mm": list(PAGE_MM), "png_dpi": PNG_DPI,
            "markers_mm": [[x, y, x + MARKER_MM, y + MARKER_MM] for x, y in MARKER_ORIGINS_MM],
            "qr_mm": list(QR_MM), "name_box_mm": list(NAME_BOX_MM), "problems": key_problems, "draw": draw}


def key_of(sheet: dict) -> dict:
    """The JSON answer key (the sheet without its drawing)."""
    return {k: v for k, v in sheet.items() if k != "draw"}


def redraw(key: dict) -> dict:
    """The drawing again from a key (the key keeps everything the drawing needs)."""
    problems = [Problem(p["id"], p["op"], _parts(p), p["answer"], p.get("layout", "line")) for p in key["problems"]]
    return layout(problems, key["sheet_id"], key.get("title", "Worksheet"))


def _parts(p: dict) -> list:
    out, k = [], 0
    for t in p["question"].split(" "):
        if t == "?":
            out.append(k)
            k += 1
        else:
            out.append(t)
    return out


# -- rendering --------------------------------------------------------------------------------------
def to_raster(sheet: dict, dpi: float = PNG_DPI) -> np.ndarray:
    """The page as uint8 RGB at ``dpi``."""
    from PIL import Image, ImageDraw, ImageFont

    s = dpi / 25.4
    W, H = round(PAGE_MM[0] * s), round(PAGE_MM[1] * s)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    line = max(1, round(BOX_LINE_MM * s))
    fonts: dict[float, ImageFont.FreeTypeFont] = {}
    for kind, *a in sheet["draw"]:
        if kind == "fill":
            x0, y0, x1, y1 = (round(v * s) for v in a)
            d.rectangle([x0, y0, x1 - 1, y1 - 1], fill="black")
        elif kind == "rect":
            x0, y0, x1, y1 = (round(v * s) for v in a)
            d.rectangle([x0, y0, x1, y1], outline=(60, 60, 60), width=line)
        else:
            x, y, size, text, grey = a
            px = size / 72 * dpi
            font = fonts.get(px) or fonts.setdefault(px, ImageFont.truetype(font_path(), max(4, round(px))))
            g = int(grey * 255)
            d.text((x * s, y * s), text, fill=(g, g, g), font=font, anchor="ls")
    return np.asarray(img)


def to_pdf(sheet: dict) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_page()
    pdf.add_font("DejaVu", "", font_path())
    pdf.set_creator("digitlab")
    pdf.set_title(printable(f"{sheet.get('title', 'Worksheet')} ({sheet['sheet_id']})"))
    pdf.set_fill_color(0, 0, 0)
    pdf.set_draw_color(60, 60, 60)
    pdf.set_line_width(BOX_LINE_MM)
    for kind, *a in sheet["draw"]:
        if kind == "fill":
            x0, y0, x1, y1 = a
            pdf.rect(x0, y0, x1 - x0, y1 - y0, style="F")
        elif kind == "rect":
            x0, y0, x1, y1 = a
            pdf.rect(x0, y0, x1 - x0, y1 - y0, style="D")
        else:
            x, y, size, text, grey = a
            pdf.set_font("DejaVu", size=size)
            g = int(grey * 255)
            pdf.set_text_color(g, g, g)
            pdf.text(x, y, text)
    return bytes(pdf.output())


def write_sheet(sheet: dict, out_pdf: str | Path) -> dict[str, Path]:
    """Write NAME.pdf, NAME.png (150 dpi) and NAME.json (the key) next to each other, atomically."""
    from PIL import Image
    import io

    from ..io.files import atomic_write

    out_pdf = Path(out_pdf)
    if out_pdf.suffix.lower() != ".pdf":
        out_pdf = out_pdf.with_suffix(out_pdf.suffix + ".pdf") if out_pdf.suffix else out_pdf.with_suffix(".pdf")
    paths = {"pdf": out_pdf, "png": out_pdf.with_suffix(".png"), "json": out_pdf.with_suffix(".json")}
    if not out_pdf.parent.exists():
        raise DigitlabError(f"folder {out_pdf.parent} does not exist")
    buf = io.BytesIO()
    Image.fromarray(to_raster(sheet)).save(buf, "PNG", dpi=(PNG_DPI, PNG_DPI))
    pdf = to_pdf(sheet)  # all three made before any is written: a failure leaves no stray file
    atomic_write(paths["png"], buf.getvalue())
    atomic_write(paths["pdf"], pdf)
    atomic_write(paths["json"], json.dumps(key_of(sheet), indent=1).encode())
    return paths


def load_key(path: str | Path) -> dict:
    try:
        key = json.loads(Path(path).read_text())
    except OSError as exc:
        raise DigitlabError(f"cannot read the key {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DigitlabError(f"{path} is not a worksheet key (not JSON: {exc.msg})") from None
    if not isinstance(key, dict) or not {"sheet_id", "problems"} <= key.keys():
        raise DigitlabError(f"{path} is not a worksheet key (no sheet_id/problems)")
    return key
