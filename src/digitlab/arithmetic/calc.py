"""A calculator for handwriting: one written expression read and worked out.

``calculate``: the likeliest expression in an image (``reader.read_expression``: any number of
+ - x ÷, with or without "= answer"), its exact value (``grammar.work_out``: precedence, fractions
kept exact), and, when an answer is written, whether it is that value. Used by ``digitlab calc``,
``/api/calc`` and the web app's Calculator tab.
"""

from __future__ import annotations

from .grammar import check_expression, work_out


def calculate(source, name: str = "image", model=None, max_side: int | None = None) -> dict:
    """{expression, value, value_exact, written_answer, status, confidence, alternatives, bbox}.

    ``status``: "computed" (no answer written), "correct" or "wrong" (the written answer against the
    value; the reading's ``confidence`` says how sure that is), or "unreadable: <why>" (a division by
    zero). Raises ``NoDigitFound`` when the image shows no expression."""
    from ..reader.read import read_expression

    read = read_expression(source, name=name, model=model, max_side=max_side)
    text = read["text"]
    v = check_expression(text) if "=" in text else work_out(text)  # an answer written: is it the value?
    if v["error"]:
        status = f"unreadable: {v['error']}"
    else:
        status = "computed" if "=" not in text else "correct" if v["correct"] else "wrong"
    return {"expression": text, "value": v["value"], "value_exact": v.get("value_exact"),
            "written_answer": v.get("written_answer"), "status": status,
            **{k: read[k] for k in ("confidence", "alternatives", "bbox")}}
