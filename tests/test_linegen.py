"""The reader's training lines: the phone-photo degradation keeps the writing and its text."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.reader.crnn import prepare_line
from digitlab.reader.linegen import photo_degrade


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(24, 48))
def test_photo_degrade_draws_the_line_small_and_keeps_its_ink(seed, digit_h):
    rng = np.random.default_rng(seed)
    h, w = int(2.6 * digit_h), int(digit_h * rng.uniform(3, 8))
    ink = np.zeros((h, w), np.float32)
    x = int(0.3 * digit_h)
    while x < w - digit_h:  # upright strokes a digit high, like a row of 1s
        ink[int(0.7 * digit_h) : int(1.7 * digit_h), x : x + max(2, digit_h // 8)] = 1.0
        x += int(0.6 * digit_h)
    out = photo_degrade(ink, rng)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert int(2.6 * 9) - 1 <= out.shape[0] <= int(2.6 * 22) + 1  # written with digits 9-22 px high
    assert out.max() >= 0.5  # stretched back towards full ink (a 1-px hairline blurred by the lens stays fainter)
    strokes = (ink.max(axis=0) > 0).sum() / w
    assert abs((out.max(axis=0) > 0.3).mean() - strokes) < 0.35  # the strokes are still there
    assert prepare_line(out).shape[0] == 32


def test_training_lines_are_unchanged_without_photo_share():
    from digitlab.reader import linegen
    from digitlab.reader.glyphs import GlyphBank

    bank = GlyphBank(digits={d: [np.ones((20, 12), np.float32)] for d in range(10)},
                     ops={k: [np.ones((6, 6), np.float32)] for k in ["+", "-", "x", ".", "÷", "/", "="]})
    a, ta = linegen.training_line(bank, np.random.default_rng(1))
    b, tb = linegen.training_line(bank, np.random.default_rng(1), photo=0.0)
    c, tc = linegen.training_line(bank, np.random.default_rng(1), photo=1.0)
    assert ta == tb == tc and np.array_equal(a, b)
    assert c.shape[0] < a.shape[0]


def test_combined_readers_average_frame_probabilities(tmp_path):
    """LineReader.combine: one file, the members' per-frame probabilities averaged; singles load as before."""
    import torch

    from digitlab.errors import ModelError
    from digitlab.reader.crnn import LineReader

    torch.manual_seed(0)
    a, b = LineReader(width=8, hidden=16), LineReader(width=8, hidden=16, seed=1)
    for r in (a, b):
        r.fitted_ = True
    lines = [np.random.default_rng(3).random((32, 120)).astype(np.float32), np.zeros((32, 64), np.float32)]
    pa, pb = (np.exp(r.frame_log_probs(lines)[0]) for r in (a, b))
    both = LineReader.load(LineReader.combine([a, b]).save(tmp_path / "both.dlm"))
    assert len(both.nets) == 2
    assert np.allclose(np.exp(both.frame_log_probs(lines)[0]), (pa + pb) / 2, atol=1e-5)
    one = LineReader.load(a.save(tmp_path / "one.dlm"))
    assert len(one.nets) == 1 and np.allclose(np.exp(one.frame_log_probs(lines)[0]), pa, atol=1e-6)
    with pytest.raises(ModelError, match="same shape"):
        LineReader.combine([a, LineReader(width=12, hidden=16)])
