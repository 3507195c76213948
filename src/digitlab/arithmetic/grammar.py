"""The arithmetic of a homework line: parse "a op b = c" and evaluate it exactly.

A small recursive-descent parser of our own with exact fractions; nothing is ever passed to ``eval``.
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import DigitlabError

MAX_LINE_CHARS = 200
MAX_NUMBER_DIGITS = 30


class ParseError(DigitlabError):
    """A line that is not a well-formed arithmetic expression."""


# -- parsing and exact evaluation ------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    if len(text) > MAX_LINE_CHARS:
        raise ParseError(f"line longer than {MAX_LINE_CHARS} characters")
    norm = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-").replace(":", "/")
    tokens, i = [], 0
    while i < len(norm):
        ch = norm[i]
        if ch.isspace():
            i += 1
        elif ch in "0123456789":
            j = i
            while j < len(norm) and norm[j] in "0123456789":
                j += 1
            if j - i > MAX_NUMBER_DIGITS:
                raise ParseError(f"number longer than {MAX_NUMBER_DIGITS} digits")
            tokens.append(norm[i:j])
            i = j
        elif ch in "+-*/()=":
            tokens.append(ch)
            i += 1
        else:
            raise ParseError(f"unexpected character {ch!r}")
    return tokens


class _Parser:
    """line := expr '=' answer ; expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := NUMBER | '(' expr ')' | '-' factor ; answer := ['-'] NUMBER"""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError("line ends too early" + (f" (expected {expected!r})" if expected else ""))
        if expected is not None and tok != expected:
            raise ParseError(f"expected {expected!r} but found {tok!r}")
        self.i += 1
        return tok

    def expr(self, depth: int = 0) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term(depth)
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.factor(depth)
            if op == "/":
                if rhs == 0:
                    raise ParseError("division by zero")
                value = value / rhs
            else:
                value = value * rhs
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > 20:
            raise ParseError("too deeply nested")
        tok = self.peek()
        if tok == "-":
            self.take()
            return -self.factor(depth + 1)
        if tok == "(":
            self.take()
            value = self.expr(depth + 1)
            self.take(")")
            return value
        if tok is not None and tok.isdigit():
            return Fraction(int(self.take()))
        raise ParseError("expected a number" + (f" but found {tok!r}" if tok else " at the end"))


def evaluate(text: str) -> Fraction:
    """Exact value of an arithmetic expression (no '=')."""
    p = _Parser(tokenize(text))
    value = p.expr()
    if p.peek() is not None:
        raise ParseError(f"unexpected {p.peek()!r}")
    return value


def parse_line(text: str) -> tuple[Fraction, Fraction]:
    """'12+7=19' -> (value of the left side, written answer)."""
    p = _Parser(tokenize(text))
    if "=" not in p.t:
        raise ParseError("no '=' in the line")
    value = p.expr()
    p.take("=")
    neg = p.peek() == "-"
    if neg:
        p.take()
    tok = p.take()
    if not tok.isdigit():
        raise ParseError(f"the answer must be a number, found {tok!r}")
    if p.peek() is not None:
        raise ParseError(f"unexpected {p.peek()!r} after the answer")
    answer = Fraction(int(tok))
    return value, -answer if neg else answer


def _number(f: Fraction) -> int | float:
    return int(f) if f.denominator == 1 else float(f)


def work_out(text: str) -> dict:
    """Value of an expression with no answer written: ``value`` (int or float), ``value_exact``
    ("3/2" when it is a fraction), or an ``error``."""
    try:
        value = evaluate(text)
    except ParseError as exc:
        return {"expression": text, "value": None, "error": str(exc)}
    out = {"expression": text, "value": _number(value), "error": None}
    if value.denominator != 1:
        out["value_exact"] = f"{value.numerator}/{value.denominator}"
    return out


def check_expression(text: str) -> dict:
    """Verdict for one line of text: value, written answer, correct, or an error."""
    try:
        value, answer = parse_line(text)
    except ParseError as exc:
        return {"expression": text, "value": None, "written_answer": None, "correct": None, "error": str(exc)}
    out = {"expression": text, "value": _number(value), "written_answer": _number(answer), "correct": value == answer,
           "error": None}
    if value.denominator != 1:
        out["value_exact"] = f"{value.numerator}/{value.denominator}"
    return out
