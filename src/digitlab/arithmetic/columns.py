"""Check column sums: rows read one by one, their readings combined into one problem, one verdict.

``page.columns`` finds the problem (operands over a rule, the result under it, carry marks taken
out). Each operand row is read under the row grammar (an optional operator, then a number); the
result under the number grammar. A problem's readings are the combinations of its rows' N-best
readings, with the product of their probabilities, written as a line ("78+99=177"); from there the
verdict is the line's (``verdicts.verdict``, with the arithmetic prior), so a column sum gets the same
calibrated care against crossing a right answer. Before that, the value the operands' best readings
give is scored exactly in the result row (a reader sure of a misread digit would otherwise never
offer the right answer), as near misses are for lines.
"""

from __future__ import annotations

import itertools

from .grammar import check_expression
from .verdicts import Calibration, LineResult, alternatives, verdict_support

KEEP = 12  # combined readings kept per problem
PER_ROW = 4  # each row's readings combined


def problem_texts(rows: list[list[tuple[str, float]]], kinds: list[str]) -> list[tuple[str, float]]:
    """A column problem's readings as lines, best first: ``rows`` are the rows' N-best lists (operands
    with their operator, "+99"; partial products; the result), ``kinds`` what each row is.

    The operator is the one written at an operand's left (pupils write it once, by the last operand);
    a combination with none, or with two different ones, is no problem of one operation and is left out.
    Partial products (multiplication) do not enter the verdict, which is on the result, but they are
    evidence of what the operands are (``partial_evidence``)."""
    ops_rows = [i for i, k in enumerate(kinds) if k == "operand"]
    partials = [rows[i] for i, k in enumerate(kinds) if k == "partial"]
    result = kinds.index("result")
    pools = [rows[i][:PER_ROW] for i in ops_rows] + [rows[result][:PER_ROW]]
    out: dict[str, float] = {}
    before = after = 0.0
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
        if op == "/" or (op in "-*" and len(numbers) != 2):
            continue  # columns add, subtract or multiply; subtraction and multiplication of two numbers
        text = op.join(numbers) + "=" + answer
        before += p
        if op == "*" and partials:
            p *= partial_evidence(numbers[0], numbers[1], partials)
        after += p
        out[text] = out.get(text, 0.0) + p
    scale = before / after if after > 0 else 1.0  # the readings keep the mass they had: the bounds' meaning
    return sorted(((t, p * scale) for t, p in out.items()), key=lambda kv: -kv[1])[:KEEP]


def partial_evidence(top: str, bottom: str, partials: list[list[tuple[str, float]]]) -> float:
    """How well the partial products written (each row's readings, last digit of ``bottom`` first)
    agree with the operands ``top`` x ``bottom``: the product, over the rows, of the probability that
    the row reads what ``top`` times that digit gives (with its zeros or without), at least
    ``PARTIAL_SLIP`` (a pupil's slip in a partial product, or a reading the reader did not keep). A
    reader unsure between "*37" and "*31" is told by rows "979" and "29370" which one it is."""
    if len(partials) != len(bottom):
        return 1.0
    f = 1.0
    for i, (row, d) in enumerate(zip(partials, reversed(bottom))):
        want = {str(int(top) * int(d) * 10**i), str(int(top) * int(d))}
        f *= max(sum(q for t, q in row if t.lstrip("+-*/") in want), PARTIAL_SLIP)
    return f


def _given_row(nbest: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """A row's readings given that it is a row (its readings' probabilities summing to one): the
    reader also puts probability on strings no row can be (a digit's tail read as a multiplication
    dot, "2.78"), which says nothing about which number it is. A row whose readings hold almost
    nothing of the reader's probability keeps it: the problem is then unsure."""
    mass = sum(p for _, p in nbest)
    if mass < MIN_ROW_MASS:
        return nbest
    return [(t, p / mass) for t, p in nbest]


MIN_ROW_MASS = 0.01
# Chosen on validation writers' long multiplications (pendigits' training writers, 150 problems,
# benchmarks/results/columns_times_val.json): read exactly 82.5 / 84.2 / 84.2 / 83.3% of the single
# problems at 1 (partial products ignored) / 0.1 / 0.02 / 0.005, right verdicts 74.2 / 75.0 / 74.2 / 73.3%.
PARTIAL_SLIP = 0.02
# Chosen on validation writers (pendigits' training writers, 214 problems): false crosses 4 / 2 / 0 at
# 0 / 0.9 / 0.98, right verdicts of single problems 81.8% / 77.3% / 68.8% (benchmarks/results/columns_val.json)
# (0.97: also none, 71.4%, but beside 0.95's 2 false crosses: benchmarks/results/columns_val_fine.json)
ROW_SURE = 0.98


def completions(text: str, kinds: list[str]) -> dict[int, str]:
    """For a problem read as ``text`` ("78+99=176") whose arithmetic is wrong, what each row would have
    to read for it to be right, the other rows as read: {row index: text}. Near misses, as for lines:
    a reader sure of a misread digit keeps no reading with the right one, and then nothing stops a
    cross on a right answer; scored exactly, such a reading can make the problem unsure."""
    left, answer = text.split("=")
    op = next(ch for ch in "+-*" if ch in left)
    nums = [int(n) for n in left.split(op)]
    result = int(answer)
    ops_rows = [i for i, k in enumerate(kinds) if k == "operand"]
    out: dict[int, str] = {}
    for j, i in enumerate(ops_rows):
        others = nums[:j] + nums[j + 1 :]
        if op == "+":
            need = result - sum(others)
        elif op == "-":
            need = result + nums[1] if j == 0 else nums[0] - result
        else:
            need = result // others[0] if others[0] and result % others[0] == 0 else -1
        if need >= 0:
            out[i] = ("" if j == 0 else op if j == len(ops_rows) - 1 else "") + str(need)
    value = sum(nums) if op == "+" else nums[0] - nums[1] if op == "-" else nums[0] * nums[1]
    if value >= 0:
        out[kinds.index("result")] = str(value)
    return out


def check_columns(columns: list, model, profile, cal: Calibration) -> list[LineResult]:
    """A ``LineResult`` (``layout="column"``) for each of a page's column problems."""
    from ..reader.decode import NUMBER, ROW
    from ..reader.read import read_lines

    if not columns:
        return []
    digits = cal.limits.get("digits", False)
    rows = [(r, ROW if k != "result" else NUMBER) for c in columns for r, k in zip(c.rows, c.kinds)]
    reads = {}
    for grammar in (ROW, NUMBER):
        todo = [j for j, (_, g) in enumerate(rows) if g is grammar]
        got = read_lines([rows[j][0].ink for j in todo], grammar, model=model, profile=profile, digits=digits)
        reads.update(zip(todo, got))
    out = []
    at = 0
    for c in columns:
        rs = [reads[at + i] for i in range(len(c.rows))]
        grammars = [rows[at + i][1] for i in range(len(c.rows))]
        at += len(c.rows)
        if any(r.text is None for r in rs):
            out.append(LineResult("", None, None, None, "unreadable", 0.0, c.bbox, c.polygon, c.column,
                                  error="a row of the column sum could not be read", layout="column"))
            continue
        nbest = problem_texts([_given_row(r.nbest) for r in rs], c.kinds)
        if nbest and check_expression(nbest[0][0])["correct"] is False:
            # Each row read again with what would make the problem right scored exactly.
            for i, want in completions(nbest[0][0], c.kinds).items():
                if rs[i].text is not None and rs[i].text.lstrip("+-*/") != want.lstrip("+-*/"):
                    r = read_lines([c.rows[i].ink], grammars[i], model=model, profile=profile, digits=digits,
                                   propose=lambda nb, w=want: [w], plain=[rs[i].frames])[0]
                    # the completion is among the readings combined, however unlikely
                    if want not in [t for t, _ in r.nbest[:PER_ROW]]:
                        mine = [tp for tp in r.nbest if tp[0] == want]
                        r.nbest = r.nbest[: PER_ROW - 1] + mine + [tp for tp in r.nbest[PER_ROW - 1 :] if tp[0] != want]
                    rs[i] = r
            nbest = problem_texts([_given_row(r.nbest) for r in rs], c.kinds)
        nbest = cal.rerank(nbest)
        if not nbest:
            out.append(LineResult("", None, None, None, "unreadable", 0.0, c.bbox, c.polygon, c.column,
                                  error="no operator found beside the numbers", layout="column"))
            continue
        status, support = cal.verdict(nbest)
        # A cross needs every row of the verdict read clearly (operands and result; partial products do
        # not enter it): a problem's rows are read one by one, so its chances of a misread digit add up,
        # and a misread operand looks just like a pupil's slip.
        sure = min(_given_row(r.nbest)[0][1] for r, k in zip(rs, c.kinds) if k != "partial")
        if status == "wrong" and sure < ROW_SURE:
            status, support = "unsure", max(verdict_support(nbest)[:2])
        v = check_expression(nbest[0][0])
        out.append(LineResult(
            expression=nbest[0][0], value=v["value"], written_answer=v["written_answer"],
            correct={"correct": True, "wrong": False}.get(status), status=status, confidence=round(support, 4),
            bbox=c.bbox, polygon=c.polygon, column=c.column, error=v["error"],
            value_exact=v.get("value_exact"), alternatives=alternatives(nbest, status), layout="column"))
    return out
