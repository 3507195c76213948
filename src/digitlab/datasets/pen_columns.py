"""Column arithmetic as pupils write it, in real pens (``pens``): the problems, a pupil's slips, the
partial products of a long multiplication, carry and borrow marks, and the written column itself."""

from __future__ import annotations

import cv2
import numpy as np

from .pens import PenSet, Writer, compose_line


def column_problem(rng: np.random.Generator, careless: float = 0.5, times: float = 0.0) -> tuple[list[str], str, str]:
    """A column sum a pupil writes: (operands top to bottom, operator, written result); the result is a
    slip (a carry forgotten, a digit off) ``careless`` of the time. Addition (two or three operands) and
    subtraction, two to four digits; with ``times``, that share are multiplications of a 2-3 digit
    number by a 1-2 digit one (``partial_products`` gives what is written between the rules)."""
    if times and rng.random() < times:
        nums = [int(rng.integers(12, 1000)), int(rng.integers(2, 100))]
        value = nums[0] * nums[1]
        answer = value
        if rng.random() < careless:
            answer = abs(value + int(rng.choice([-10, 10, -1, 1, -100, 100])))
            answer = answer if answer != value else value + 1
        return [str(n) for n in nums], "*", str(answer)
    op = "+" if rng.random() < 0.6 else "-"
    def digits() -> int:
        n = int(rng.integers(2, 5))
        return int(rng.integers(10 ** (n - 1), 10 ** n))
    if op == "+":
        nums = [digits() for _ in range(3 if rng.random() < 0.15 else 2)]
        value = sum(nums)
    else:
        nums = sorted([digits(), digits()], reverse=True)
        value = nums[0] - nums[1]
    answer = value
    if rng.random() < careless:
        kind = int(rng.integers(3))
        answer = value + (int(rng.choice([-10, 10])) if kind == 0 else int(rng.choice([-1, 1])) if kind == 1
                          else int(rng.choice([-100, 100, 9, -9])))
        answer = abs(answer) if answer != value else value + 1
    return [str(n) for n in nums], op, str(answer)


def partial_products(operands: list[str], answer: str | None = None, rng: np.random.Generator | None = None) -> list[str]:
    """The rows a pupil writes between the rules of a long multiplication: the top number times each
    digit of the bottom one, from its last digit, each shifted by its place (written with its zeros);
    none when the bottom number has one digit. With a wrong ``answer`` and ``rng``, half the time the
    slip is in one of the partial products (which then add up to the answer), else in their sum."""
    top, bottom = int(operands[0]), operands[1]
    if len(bottom) < 2:
        return []
    rows = [top * int(d) * 10**i for i, d in enumerate(reversed(bottom))]
    off = int(answer) - sum(rows) if answer is not None else 0
    if off and rng is not None and rng.random() < 0.5:
        k = int(rng.integers(len(rows)))
        if rows[k] + off >= 0:
            rows[k] += off
    return [str(r) for r in rows]


def carries_of(operands: list[str], op: str) -> list[tuple[int, str]]:
    """The carry (or borrow) marks a pupil writes above the top operand: (place from the right, mark)."""
    width = max(len(n) for n in operands)
    cols = [[int(n.rjust(width, "0")[-1 - i]) for n in operands] for i in range(width)]
    out, carry = [], 0
    for i, col in enumerate(cols):
        if op == "+":
            carry = (sum(col) + carry) // 10
            if carry:
                out.append((i + 1, str(carry)))
        else:
            top, rest = col[0] - carry, sum(col[1:])
            carry = int(top < rest)
            if carry:
                out.append((i + 1, "1"))
    return out


def compose_column(operands: list[str], op: str, result: str, pens: PenSet, writer_id: str,
                   rng: np.random.Generator, carries: bool = True, margin: int = 14,
                   partials: list[str] | None = None, tablet: bool = False) -> np.ndarray:
    """An ink map (float32, 1 = ink) of a column sum in ``writer_id``'s digits: operands right-aligned by
    place value, the operator left of the last one, a ruled line drawn by hand, the result under it, and
    (``carries``) the small carry or borrow marks above the top operand. ``partials`` (a multiplication's
    partial products) are written under the first rule, with a second rule under them. ``tablet``:
    written large in a fine line, as pen tablets export them (``Writer.tablet``)."""
    w = Writer.tablet(rng) if tablet else Writer.draw(rng)
    w = Writer(w.height, w.slant * 0.5, w.gap, w.pen, 0.0)  # a column is written upright and level
    partials = partials or []
    carries = carries and op in "+-"  # a multiplication's carries are written elsewhere, if at all
    rows = [compose_line(n, pens, writer_id, rng, writer=w, margin=0) for n in operands]
    partial_inks = [compose_line(n, pens, writer_id, rng, writer=w, margin=0) for n in partials]
    result_ink = compose_line(result, pens, writer_id, rng, writer=w, margin=0)
    op_ink = compose_line(op, pens, writer_id, rng, writer=w, margin=0)
    everything = rows + partial_inks + [result_ink]
    digit_w = max(r.shape[1] / max(len(n), 1) for r, n in zip(everything, operands + partials + [result]))
    body_w = max(r.shape[1] for r in everything)
    op_gap = int(digit_w * rng.uniform(0.4, 1.0))
    width = body_w + op_ink.shape[1] + op_gap + 2 * margin
    line_h = int(w.height * rng.uniform(1.25, 1.6))
    carry_h = int(0.6 * w.height) if carries else 0
    height = margin + carry_h + line_h * (len(rows) + len(partials) + 1) + int(0.5 * w.height) + margin
    canvas = np.zeros((height, width), np.float32)
    right = width - margin

    def put(ink: np.ndarray, x_right: int, y_top: int) -> None:
        h, wd = ink.shape
        x0, y0 = max(0, x_right - wd), max(0, y_top)
        region = canvas[y0 : y0 + h, x0 : x0 + wd]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)

    y = margin + carry_h
    if carries:
        small = Writer(w.height * rng.uniform(0.4, 0.55), w.slant, w.gap, max(1, w.pen - 1), 0.0)
        for place, mark in carries_of(operands, op):
            ink = compose_line(mark, pens, writer_id, rng, writer=small, margin=0)
            put(ink, int(right - (place - 0.2) * digit_w), y - ink.shape[0] - int(0.08 * w.height))
    for i, r in enumerate(rows):
        put(r, right + int(rng.normal(0, 0.08) * digit_w), y + i * line_h)
        if i == len(rows) - 1:
            oy = y + i * line_h + (r.shape[0] - op_ink.shape[0]) // 2
            put(op_ink, right - body_w - op_gap, oy)
    span: list[int] = []

    def rule_under(row: int) -> int:  # a hand-drawn rule under the row-th row; its y
        rule_y = y + row * line_h - int((line_h - w.height) * rng.uniform(0.2, 0.5))
        if not span:  # both rules as long (drawn in this order, the tidy columns of a seed stay as they were)
            span.extend([right - body_w - op_gap - op_ink.shape[1] - int(rng.uniform(0, 0.5) * digit_w),
                         right + int(rng.uniform(0, 0.4) * digit_w)])
        x0, x1 = span
        pts = np.c_[np.linspace(x0, x1, 24), rule_y + np.cumsum(rng.normal(0, 0.25, 24)) + np.linspace(0, rng.normal(0, 2), 24)]
        rule = np.zeros_like(canvas, np.uint8)
        cv2.polylines(rule, [np.round(pts * 4).astype(np.int32).reshape(-1, 1, 2)], False, 255, w.pen, cv2.LINE_AA, shift=2)
        np.maximum(canvas, rule.astype(np.float32) / 255.0, out=canvas)
        return rule_y

    rule_y = rule_under(len(rows))
    if partial_inks:
        for i, r in enumerate(partial_inks):
            put(r, right + int(rng.normal(0, 0.08) * digit_w), rule_y + int(0.25 * w.height) + i * line_h)
        rule_y = rule_under(len(rows) + len(partial_inks)) + int(0.2 * w.height)
    put(result_ink, right + int(rng.normal(0, 0.08) * digit_w), rule_y + int(0.25 * w.height))
    return canvas
