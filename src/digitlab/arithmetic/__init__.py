"""Arithmetic homework: the grammar of a line, checking a page, and marking it.

A pixel's way from upload to verdict: ``page.analyse_page`` (sheet, light, rulings, columns, lines)
-> ``reader.read_lines`` (CRNN + grammar-constrained CTC beam search, N-best) -> ``verdicts.verdict``
(exact arithmetic over the N-best: correct / wrong / unsure / unreadable) -> ``annotate``.
"""

from .annotate import annotate  # noqa: F401
from ..predictor import check_page  # noqa: F401  (a Predictor built for one image)
from .verdicts import LineResult, PageResult, verdict  # noqa: F401
from .grammar import ParseError, check_expression, evaluate, parse_line, tokenize  # noqa: F401
