"""The benchmarks' scoring functions on hand-made verdicts: each kind of mistake is counted where it
belongs (a false cross, the worst mistake, is never a false tick or "unsure"), so the figures the
docs quote from benchmarks/results/*.json count what they say."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real_pens():
    return _bench("real_pens")


@pytest.fixture(scope="module")
def worksheets():
    return _bench("worksheets")


def test_score_lines_counts_each_mistake_where_it_belongs(real_pens):
    cases = [  # (what the page check gave: expressions, statuses), the truth written
        ((["2+3=5"], ["correct"]), "2+3=5"),  # right answer, read and ticked: right
        ((["6+2=9"], ["wrong"]), "6+2=9"),  # wrong answer, crossed: right
        ((["2+3=6"], ["correct"]), "2+3=6"),  # wrong answer ticked: a false tick (read exactly)
        ((["4+4=3"], ["wrong"]), "4+4=8"),  # right answer misread and crossed: a false cross
        ((["9+1=10"], ["unsure"]), "9+1=10"),  # read exactly but unsure: neither right nor false
        ((["5+5=1"], ["unreadable"]), "5+5=10"),
        ((["7-2", "=5"], ["wrong", "correct"]), "7-2=5"),  # the line cut in two: not one line, no verdict
        (([], []), "1+1=2"),  # nothing found
    ]
    got = real_pens.score_lines([c for c, _ in cases], [t for _, t in cases])
    n = len(cases)
    assert got == {"images": n, "exact": 4 / n, "right_verdicts": 2 / n, "unsure": 2 / n,
                   "false_ticks": 1, "false_crosses": 1, "not_one_line": 2}


def test_score_lines_all_ticks_and_all_crosses_are_caught(real_pens):
    texts = ["2+3=5", "2+3=6", "4+4=8", "6+2=9"]  # two right answers, two wrong
    ticks = real_pens.score_lines([([t], ["correct"]) for t in texts], texts)
    crosses = real_pens.score_lines([([t], ["wrong"]) for t in texts], texts)
    assert (ticks["false_ticks"], ticks["false_crosses"], ticks["right_verdicts"]) == (2, 0, 0.5)
    assert (crosses["false_ticks"], crosses["false_crosses"], crosses["right_verdicts"]) == (0, 2, 0.5)
    assert ticks["exact"] == crosses["exact"] == 1.0


def _line(box, expression, status, confidence=0.9):
    return SimpleNamespace(bbox=box, expression=expression, status=status, confidence=confidence)


def test_worksheet_score_page_matches_found_lines_to_truths_by_overlap(worksheets):
    truths = [SimpleNamespace(text="2+3=5", correct=True, box=(0, 0, 100, 20)),
              SimpleNamespace(text="4+4=9", correct=False, box=(0, 40, 100, 60)),
              SimpleNamespace(text="1+1=2", correct=True, box=(0, 80, 100, 100))]
    result = SimpleNamespace(lines=[
        _line((2, 38, 98, 62), "4+4=9", "wrong"),  # the second truth's line, found first
        _line((0, 0, 100, 19), "2+3=5", "correct"),
        _line((0, 90, 30, 130), "11", "unsure"),  # overlaps the third truth too little (IoU < 0.25): missed
    ])
    rows = worksheets.score_page(result, truths)
    assert [(r["truth"], r["read"], r["status"], r["want"]) for r in rows] == [
        ("2+3=5", "2+3=5", "correct", "correct"), ("4+4=9", "4+4=9", "wrong", "wrong"),
        ("1+1=2", None, "missed", "correct")]
    assert worksheets.score_page(SimpleNamespace(lines=[]), truths[:1])[0]["status"] == "missed"


def test_worksheet_summary_counts_false_crosses_and_confident_accuracy(worksheets):
    rows = [{"truth": "2+3=5", "read": "2+3=5", "status": "correct", "want": "correct"},
            {"truth": "4+4=8", "read": "4+4=3", "status": "wrong", "want": "correct"},  # a false cross
            {"truth": "6+2=9", "read": "6+2=9", "status": "correct", "want": "wrong"},  # a false tick
            {"truth": "6+3=9", "read": "6+3=9", "status": "unsure", "want": "correct"},
            {"truth": "1+1=2", "read": None, "status": "missed", "want": "correct"}]
    s = worksheets.summarise(rows, [1.0, 3.0], extra=2)
    assert (s["lines"], s["right_verdicts"], s["exact_reads"], s["unsure"], s["missed"]) == (5, 0.2, 0.6, 0.2, 0.2)
    assert s["confident_accuracy"] == pytest.approx(1 / 3) and s["false_crosses"] == 1
    assert (s["extra_lines"], s["seconds_per_page"], s["seconds_per_page_max"]) == (2, 2.0, 3.0)
    assert worksheets.summarise(rows[3:], [1.0], 0)["confident_accuracy"] is None  # no verdict given


def test_the_expressions_benchmark_writes_what_the_grammar_reads():
    import numpy as np

    from digitlab.arithmetic.grammar import evaluate
    from digitlab.reader.decode import EXPRESSION
    rng = np.random.default_rng(0)
    texts = [_bench("expressions").expression(rng) for _ in range(200)]
    assert all(EXPRESSION.accepts(t) for t in texts)
    assert all(evaluate(t.split("=")[0]).denominator == 1 for t in texts)
    assert 40 < sum("=" in t for t in texts) < 100  # a third carry an answer


def test_score_columns_counts_each_mistake_where_it_belongs():
    columns = _bench("columns")
    truths = [["78+99=177", "52-17=34"], ["10+5=15"]]  # right, wrong (35), right
    found = [[("78+99=177", "wrong", "column"), ("52-17=34", "correct", "column")],
             [("10+5=15", "unsure", "column"), ("1+1=2", "correct", "line")]]
    got = columns.score_columns(found, truths)
    assert (got["problems"], got["found"], got["exact"]) == (3, 1.0, 1.0)
    assert (got["false_crosses"], got["false_ticks"], got["right_verdicts"], got["unsure"]) == (1, 1, 0.0, 1 / 3)
    # a problem missed (or split in two) is neither found nor scored
    assert columns.score_columns([[]], [["10+5=15"]])["found"] == 0.0
