"""A handwritten slash told from a "1" by how far it leans beside the writer's digits (``reader.slash``)."""

import numpy as np
import pytest

from digitlab.datasets import pens
from digitlab.datasets.pens import as_paper, compose_line, load_pendigits


def _slash(op, rng, original=pens.operator_strokes):
    """Operators as ``pens`` draws them, but every "/" a slash (never an obelus)."""
    if op != "/":
        return original(op, rng)
    top, lean = rng.uniform(-0.1, 0.05), rng.uniform(0.35, 0.6)
    return [pens._line((lean + rng.normal(0, 0.04), top), (rng.normal(0, 0.04), rng.uniform(0.95, 1.1)))]


@pytest.fixture(scope="module")
def slashed():
    """40 expressions with slashes among 1s ("51/7+12"), in the hands of pendigits' test writers."""
    mp = pytest.MonkeyPatch()
    mp.setattr(pens, "operator_strokes", _slash)
    data, rng = load_pendigits("tes"), np.random.default_rng(3)
    writers = sorted(data.by_writer)
    out = []
    try:
        while len(out) < 40:
            a, b, c = (int(rng.integers(1, 100)) for _ in range(3))
            text = f"{a}/{b}{rng.choice(['+', '-', '*'])}1{c % 10}"
            wid = writers[int(rng.integers(len(writers)))]
            if all(ch in data.by_writer[wid] for ch in text if ch.isdigit()):
                out.append((text, as_paper(np.pad(compose_line(text, data, wid, rng), 24), rng)))
    finally:
        mp.undo()
    return out


def _read(items):
    from digitlab.predictor import Predictor

    p = Predictor()
    return [p.expression(img)["text"] for _, img in items]


def test_a_leaning_slash_is_read_as_a_slash(slashed, monkeypatch):
    from digitlab.reader.ppocr import get_ppocr

    truth = [t for t, _ in slashed]
    with_lean = sum(g == t for g, t in zip(_read(slashed), truth))
    settings = dict(get_ppocr().metadata["slash"], weight=0.0)
    monkeypatch.setitem(get_ppocr().metadata, "slash", settings)
    without = sum(g == t for g, t in zip(_read(slashed), truth))
    assert with_lean >= without + 4, (with_lean, without)
    assert with_lean >= 25, with_lean  # measured 27 (20 without)


def test_readings_that_agree_on_a_slash_are_not_moved(monkeypatch):
    """Every reading has the "/" where the others have it: its lean says nothing between them."""
    from digitlab.reader.ppocr import get_ppocr
    from digitlab.reader.read import get_line_reader
    from digitlab.reader.single import _whole_image
    from digitlab.reader.slash import slash_rescore

    monkeypatch.setattr(pens, "operator_strokes", _slash)
    data, rng = load_pendigits("tes"), np.random.default_rng(4)
    ink = compose_line("20/10=8", data, sorted(data.by_writer)[2], rng)
    line, _ = _whole_image(as_paper(np.pad(ink, 24), rng), "x", None)
    reader = get_line_reader()
    logp = reader.primary.frame_log_probs([reader.primary.prepare(line.ink)])[0]
    nbest = [("20/10=8", 0.5), ("20/70=8", 0.3), ("28/10=8", 0.2)]
    settings = dict(get_ppocr().metadata["slash"], weight=10.0)
    assert slash_rescore(line.ink, logp, nbest, reader.geometry(line.ink), settings) == nbest
    # ... but where one reading has a "1" in its place, they are
    moved = slash_rescore(line.ink, logp, [("20/10=8", 0.5), ("20110=8", 0.5)], reader.geometry(line.ink), settings)
    assert moved[0][1] != 0.5
