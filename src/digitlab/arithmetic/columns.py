"""Check column sums: rows read one by one, their readings combined into one problem, one verdict.

``page.columns`` finds the problem (operands over a rule, the result under it, carry marks taken
out). Each operand row is read under the row grammar (an optional operator, then a number); the
result under the number grammar. A problem's readings are the combinations of its rows' N-best
readings, with the product of their probabilities, written as a line ("78+99=177"); from there the
verdict is the line's (``check.verdict``, with the arithmetic prior), so a column sum gets the same
calibrated care against crossing a right answer. Before that, the value the operands' best readings
give is scored exactly in the result row (a reader sure of a misread digit would otherwise never
offer the right answer), as near misses are for lines.
"""

from __future__ import annotations

import itertools

from .check import LineResult, check_expression, verdict, with_prior

KEEP = 12  # combined readings kept per problem
PER_ROW = 4  # each row's readings combined


def problem_texts(rows: list[list[tuple[str, float]]], kinds: list[str]) -> list[tuple[str, float]]:
    """A column problem's readings as lines, best first: ``rows`` are the rows' N-best lists (operands
    with their operator, "+99"; partial products; the result), ``kinds`` what each row is.

    The operator is the one written at an operand's left (pupils write it once, by the last operand);
    a combination with none, or with two different ones, is no problem of one operation and is left out.
    Partial products (multiplication) do not enter the verdict, which is on the result."""
    ops_rows = [i for i, k in enumerate(kinds) if k == "operand"]
    result = kinds.index("result")
    pools = [rows[i][:PER_ROW] for i in ops_rows] + [rows[result][:PER_ROW]]
    out: dict[str, float] = {}
    for combo in itertools.product(*pools):
        *operands, (answer, pa) = combo
        p = pa
        ops = {t[0] for t, _ in operands if t and not t[0].isdigit()}
        if len(ops) != 1 or operands[0][0][:1] in ops:
            continue  # no operator, two different ones, or one before the top number
        op = ops.pop()
        numbers = [t.lstrip("+-*/") for t, _ in operands]
        for _, q in operands:
            p *= q
        if op in "-/" and len(numbers) != 2:
            continue  # a column subtraction or division has two numbers
        text = op.join(numbers) + "=" + answer
        out[text] = out.get(text, 0.0) + p
    return sorted(out.items(), key=lambda kv: -kv[1])[:KEEP]


def check_columns(columns: list, model, profile, limits: dict, thresholds: tuple[float, float, float],
                  prior: float, far: float) -> list[LineResult]:
    """A ``LineResult`` (``layout="column"``) for each of a page's column problems."""
    from ..reader.decode import NUMBER, ROW
    from ..reader.read import read_lines

    if not columns:
        return []
    digits = limits.get("digits", False)
    operand_inks = [r.ink for c in columns for r, k in zip(c.rows, c.kinds) if k != "result"]
    operand_reads = iter(read_lines(operand_inks, ROW, model=model, profile=profile, digits=digits))
    readings = []
    for c in columns:
        readings.append([next(operand_reads) if k != "result" else None for k in c.kinds])
    # The result rows, with the values the operands' likeliest readings give scored exactly.
    wanted: list[list[str]] = []
    for c, rs in zip(columns, readings):
        rows = [r.nbest if r is not None else [("0", 1.0)] for r in rs]
        values = []
        for text, _ in problem_texts(rows, c.kinds)[:4]:
            v = check_expression(text)["value"]
            if isinstance(v, int) and v >= 0:
                values.append(str(v))
        wanted.append(values)
    result_reads = [read_lines([c.rows[c.kinds.index("result")].ink], NUMBER, model=model, profile=profile,
                               digits=digits, propose=lambda nb, w=w: w)[0] for c, w in zip(columns, wanted)]
    out = []
    correct_min, wrong_min, top_min = thresholds
    for c, rs, res in zip(columns, readings, result_reads):
        rs[c.kinds.index("result")] = res
        if any(r.text is None for r in rs):
            out.append(LineResult("", None, None, None, "unreadable", 0.0, c.bbox, c.polygon, c.column,
                                  error="a row of the column sum could not be read", layout="column"))
            continue
        nbest = with_prior(problem_texts([r.nbest for r in rs], c.kinds), prior, far)
        if not nbest:
            out.append(LineResult("", None, None, None, "unreadable", 0.0, c.bbox, c.polygon, c.column,
                                  error="no operator found beside the numbers", layout="column"))
            continue
        status, support = verdict(nbest, correct_min, wrong_min, top_min)
        v = check_expression(nbest[0][0])
        out.append(LineResult(
            expression=nbest[0][0], value=v["value"], written_answer=v["written_answer"],
            correct={"correct": True, "wrong": False}.get(status), status=status, confidence=round(support, 4),
            bbox=c.bbox, polygon=c.polygon, column=c.column, error=v["error"],
            value_exact=v.get("value_exact"),
            alternatives=[t for t, _ in nbest[1:4]], layout="column"))
    return out
