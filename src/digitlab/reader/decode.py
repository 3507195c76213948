"""CTC prefix beam search constrained by a grammar, with an N-best list.

The grammar is a small deterministic automaton over ``CHARSET``: only strings it accepts can come
out, so a stroke that the network finds ambiguous between "1" and "/" is read as whatever the line
allows there. The N-best hypotheses carry their probabilities (summed over all CTC alignments), which
is what the checker uses to say "unsure" when readings with different verdicts compete.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import CHARSET

OPS = set("+-*/")


@dataclass(frozen=True)
class Grammar:
    """A DFA: ``moves[state]`` maps a character class to the next state; ``final`` are accepting."""

    name: str
    moves: dict[int, dict[str, int]]
    final: frozenset[int]

    def step(self, state: int, ch: str) -> int | None:
        return self.table.get((state, ch))

    @functools.cached_property
    def table(self) -> dict[tuple[int, str], int]:
        """(state, character) -> next state: one dict lookup per step of the beam search."""
        table: dict[tuple[int, str], int] = {}
        for state, moves in self.moves.items():
            for chars, nxt in moves.items():
                for ch in chars:
                    table.setdefault((state, ch), nxt)  # the first class that holds it, as written
        return table

    def accepts(self, text: str) -> bool:
        s: int | None = 0
        for ch in text:
            s = self.step(s, ch)
            if s is None:
                return False
        return s in self.final


_D, _O = "0123456789", "+-*/"
# line := NUMBER (OP NUMBER)+ '=' ['-'] NUMBER
ARITHMETIC = Grammar("arithmetic", {
    0: {_D: 1},
    1: {_D: 1, _O: 2},
    2: {_D: 3},
    3: {_D: 3, _O: 2, "=": 4},
    4: {_D: 6, "-": 5},
    5: {_D: 6},
    6: {_D: 6},
}, frozenset({6}))


def _expression(depth: int = 2) -> Grammar:
    """expression := operand (OP operand)+ ['=' ['-'] NUMBER], operand := NUMBER | '(' expression ')',
    parentheses at most ``depth`` deep: a sum to work out ("468*59+79", "(7+9*3)/2") or checked
    ("7+5+3=15"). Without parentheses it accepts what the line's automaton accepts, and where the
    answer would begin."""
    states: dict[tuple, int] = {}

    def sid(key: tuple) -> int:
        return states.setdefault(key, len(states))

    moves: dict[int, dict[str, int]] = {}
    final: set[int] = set()
    todo = [("operand", 0, False)]
    sid(todo[0])
    seen = set(todo)
    while todo:
        key = todo.pop()
        phase, d, op = key
        out: dict[str, tuple] = {}
        if phase == "operand":  # a number or an opening parenthesis
            out[_D] = ("number", d, op)
            if d < depth:
                out["("] = ("operand", d + 1, op)
        elif phase in ("number", "closed"):
            if phase == "number":
                out[_D] = ("number", d, op)
            out[_O] = ("operand", d, True)
            if d > 0:
                out[")"] = ("closed", d - 1, op)
            elif op:
                out["="] = ("answer", 0, True)
                final.add(sid(key))
        elif phase == "answer":
            out[_D], out["-"] = ("result", 0, True), ("sign", 0, True)
        elif phase == "sign":
            out[_D] = ("result", 0, True)
        else:  # result
            out[_D] = key
            final.add(sid(key))
        moves[sid(key)] = {chars: sid(nxt) for chars, nxt in out.items()}
        for nxt in out.values():
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return Grammar("expression", moves, frozenset(final))


EXPRESSION = _expression()
NUMBER = Grammar("number", {0: {_D: 1}, 1: {_D: 1}}, frozenset({1}))
# row := [OP] NUMBER: an operand of a column sum, the operator written at its left ("+99")
ROW = Grammar("row", {0: {_O: 1, _D: 2}, 1: {_D: 2}, 2: {_D: 2}}, frozenset({2}))
ANY = Grammar("any", {0: {CHARSET: 0}}, frozenset({0}))


def _lse(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


_INDEX = {ch: i + 1 for i, ch in enumerate(CHARSET)}


def beam_search(logp: np.ndarray, grammar: Grammar = ARITHMETIC, beam: int = 12, prune: float = -9.0,
                nbest: int = 8) -> list[tuple[str, float]]:
    """N-best (text, log P(text | line)) accepted by ``grammar``, best first; [] if none survives.

    ``logp``: (T, 1 + len(CHARSET)) frame log-probabilities, class 0 = blank.
    """
    logp = np.asarray(logp, np.float64)
    # Plain Python floats and lists: per-element numpy scalars cost ~20x more in this loop.
    rows = logp.tolist()
    cand_rows = [(np.nonzero(r > prune)[0] + 1).tolist() for r in logp[:, 1:]]
    ninf = -math.inf
    table = grammar.table
    # beams: prefix -> [log p ending in blank, log p ending in a symbol, grammar state]
    beams: dict[str, list] = {"": [0.0, ninf, 0]}
    for row, cands in zip(rows, cand_rows):
        blank = row[0]
        if not cands:
            # Only blank (or the last symbol held) is possible: no prefix is born, none is merged
            # and the beam keeps its size, so each one is updated in place, with no ranking.
            for prefix, e in beams.items():
                pb, pnb = e[0], e[1]
                e[0] = _lse(pb, pnb) + blank
                e[1] = pnb + row[_INDEX[prefix[-1]]] if prefix and pnb > ninf else ninf
            continue
        nxt: dict[str, list] = {}

        def add(prefix: str, pb: float, pnb: float, state: int) -> None:
            e = nxt.get(prefix)
            if e is None:
                nxt[prefix] = [pb, pnb, state]
            else:
                e[0], e[1] = _lse(e[0], pb), _lse(e[1], pnb)

        for prefix, (pb, pnb, state) in beams.items():
            total = _lse(pb, pnb)
            add(prefix, total + blank, ninf, state)
            last = prefix[-1] if prefix else None
            if last is not None and pnb > ninf:
                add(prefix, ninf, pnb + row[_INDEX[last]], state)
            for k in cands:
                ch = CHARSET[k - 1]
                s2 = table.get((state, ch))
                if s2 is None:
                    continue
                # A repeated symbol needs a blank between its two copies.
                p = pb + row[k] if ch == last else total + row[k]
                add(prefix + ch, ninf, p, s2)
        if len(nxt) > beam:
            beams = dict(sorted(nxt.items(), key=lambda kv: -_lse(kv[1][0], kv[1][1]))[:beam])
        else:
            beams = nxt
    done = [(p, _lse(v[0], v[1])) for p, v in beams.items() if v[2] in grammar.final]
    done.sort(key=lambda x: -x[1])
    return done[:nbest]


def text_log_probs(logp: np.ndarray, texts: list[str]) -> np.ndarray:
    """log P(text | line) for each of ``texts``, summed over all CTC alignments of the (T, classes)
    frame log-probabilities ``logp`` (what the beam search approximates for the texts it keeps).

    The CTC forward recursion, all texts at once (``align`` is its Viterbi twin); a text longer than
    the line can hold gets -inf."""
    if not texts:
        return np.zeros(0)
    logp = np.asarray(logp, np.float64)
    T, n = logp.shape[0], len(texts)
    S = 2 * max(len(t) for t in texts) + 1
    ext = np.zeros((n, S), np.int64)  # blank, symbol, blank, ...; states past a text's end stay -inf
    for i, t in enumerate(texts):
        ext[i, 1 : 2 * len(t) : 2] = [CHARSET.index(c) + 1 for c in t]
    ends = np.array([2 * len(t) for t in texts])
    live = np.arange(S)[None, :] <= ends[:, None]
    skip = np.zeros((n, S), bool)
    skip[:, 2:] = (ext[:, 2:] != 0) & (ext[:, 2:] != ext[:, :-2])
    emit = np.where(live[None], logp[:, ext], -np.inf)  # (T, n, S)
    alpha = np.full((n, S), -np.inf)
    alpha[:, 0] = emit[0, :, 0]
    alpha[:, 1] = np.where(ends >= 1, emit[0, :, 1], -np.inf)
    one, two = np.full((n, S), -np.inf), np.full((n, S), -np.inf)
    for t in range(1, T):
        one[:, 1:] = alpha[:, :-1]
        two[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, one), two) + emit[t]
    rows = np.arange(n)
    last = alpha[rows, ends]
    before = np.where(ends >= 1, alpha[rows, np.maximum(ends - 1, 0)], -np.inf)
    return np.logaddexp(last, before)


def align(logp: np.ndarray, text: str) -> list[tuple[int, int, float]]:
    """CTC forced alignment (Viterbi): for each symbol, its first and last frame and peak posterior."""
    labels = [CHARSET.index(c) + 1 for c in text]
    ext = [0]
    for k in labels:
        ext += [k, 0]
    T, S = logp.shape[0], len(ext)
    ext = np.asarray(ext)
    # A state may be entered from itself, the state before, or (a symbol unlike the one two back)
    # skipping the blank between them; ties go to the earliest of those, as in the usual recursion.
    skip = np.zeros(S, bool)
    skip[2:] = (ext[2:] != 0) & (ext[2:] != ext[:-2])
    score = np.full((T, S), -np.inf)
    back = np.zeros((T, S), np.int64)
    score[0, 0] = logp[0, 0]
    if S > 1:
        score[0, 1] = logp[0, ext[1]]
    states = np.arange(S)
    for t in range(1, T):
        prev = score[t - 1]
        cands = np.full((3, S), -np.inf)
        cands[0] = prev
        cands[1, 1:] = prev[:-1]
        cands[2, 2:] = np.where(skip[2:], prev[:-2], -np.inf)
        j = cands.argmax(0)
        score[t] = cands[j, states] + logp[t, ext]
        back[t] = states - j
    s = S - 1 if S == 1 or score[T - 1, S - 1] >= score[T - 1, S - 2] else S - 2
    path = [s]
    for t in range(T - 1, 0, -1):
        s = int(back[t, s])
        path.append(s)
    path.reverse()
    out = []
    for i in range(len(labels)):
        frames = [t for t, s in enumerate(path) if s == 2 * i + 1]
        if not frames:
            frames = [min(T - 1, i)]
        out.append((frames[0], frames[-1], float(np.exp(logp[frames, labels[i]].max()))))
    return out
