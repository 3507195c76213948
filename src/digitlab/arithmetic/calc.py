"""A calculator for handwriting: one written expression read and worked out.

``calculate``: the likeliest expression in an image (``reader.read_expression``: any number of
+ - x ÷, with or without "= answer"), its exact value (``grammar.work_out``: precedence, fractions
kept exact), and, when an answer is written, the verdict ``check`` would give that line (the
reader's calibration: unsure unless the readings are sure). Used by ``digitlab calc``, ``/api/calc``
and the web app's Calculator tab.
"""

from __future__ import annotations

from .grammar import check_expression, work_out
from .verdicts import Calibration, alternatives, near_misses


def calculate(source, name: str = "image", model=None, max_side: int | None = None) -> dict:
    """{expression, value, value_exact, written_answer, status, confidence, alternatives, bbox}.

    ``status``: "computed" (no answer written; ``confidence``: the reading's probability), "correct",
    "wrong" or "unsure" (an answer written: judged as ``check`` judges a line, ``confidence`` the share
    of the readings that back the verdict), or "unreadable: <why>" (a division by zero). Raises
    ``NoDigitFound`` when the image shows no expression."""
    from ..reader.read import get_line_reader, read_expression

    model = model or get_line_reader()
    cal = Calibration.of(model)
    read = read_expression(source, name=name, model=model, max_side=max_side,
                           propose=near_misses if cal.limits.get("near_misses") else None)
    text, confidence, alts = read["text"], read["confidence"], read["alternatives"]
    if "=" in text:  # a line to check: its readings with an answer, the arithmetic prior, the verdict's bounds
        checks = cal.rerank([(t, p) for t, p in read["nbest"] if "=" in t])
        status, confidence = cal.verdict(checks)
        text, alts = checks[0][0], alternatives(checks, status)
        v = check_expression(text)
    else:
        status, v = "computed", work_out(text)
    if v["error"]:
        status = f"unreadable: {v['error']}"
    return {"expression": text, "value": v["value"], "value_exact": v.get("value_exact"),
            "written_answer": v.get("written_answer"), "status": status, "confidence": round(confidence, 4),
            "alternatives": alts, "bbox": read["bbox"]}
