"""The reader's training lines: the phone-photo degradation keeps the writing and its text."""

import numpy as np
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

