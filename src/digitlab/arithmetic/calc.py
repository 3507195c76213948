"""A calculator for handwriting: one written expression read and worked out.

``predictor.calculate``: the likeliest expression in an image (``reader.single.expression_reading``: any number of
+ - x ÷, with or without "= answer"), its exact value (``grammar.work_out``: precedence, fractions
kept exact), and, when an answer is written, the verdict ``check`` would give that line (the
reader's calibration: unsure unless the readings are sure). Used by ``digitlab calc``, ``/api/calc``
and the web app's Calculator tab.
"""

from __future__ import annotations

from .grammar import check_expression, work_out
from .verdicts import Calibration, alternatives


def calculate_reading(read: dict, cal: Calibration) -> dict:
    """{expression, value, value_exact, written_answer, status, confidence, alternatives, bbox} of an
    expression's reading (``reader.single.expression_reading``, near misses proposed when ``cal`` says so).

    ``status``: "computed" (no answer written; ``confidence``: the reading's probability), "correct",
    "wrong" or "unsure" (an answer written: judged as ``check`` judges a line, ``confidence`` the share
    of the readings that back the verdict), or "unreadable: <why>" (a division by zero)."""
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
