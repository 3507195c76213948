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



@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(12, 40), st.integers(4, 30))
def test_distort_keeps_a_glyph_its_size_and_ink(seed, h, w):
    from digitlab.reader.linegen import distort

    rng = np.random.default_rng(seed)
    g = np.zeros((h, w), np.float32)
    g[:, max(0, w // 2 - 2) : w // 2 + 2] = 1.0  # a stroke the glyph's height
    g[h // 2 : h // 2 + 2, :] = 1.0
    out = distort(g, rng)
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert out[0].max() > 0.1 and out[-1].max() > 0.1  # cropped tight, as bank glyphs are
    assert out[:, 0].max() > 0.1 and out[:, -1].max() > 0.1
    assert 0.6 * h <= out.shape[0] <= 1.6 * h + 4  # rotated and sheared a little, not resized
    assert 0.5 < out.sum() / g.sum() < 1.6  # the ink moved, none appeared or vanished


def test_training_lines_are_unchanged_without_a_warp_share():
    from digitlab.reader import linegen
    from digitlab.reader.glyphs import GlyphBank

    bank = GlyphBank(digits={d: [np.eye(20, 12, dtype=np.float32)] for d in range(10)},
                     ops={k: [np.ones((6, 6), np.float32)] for k in ["+", "-", "x", ".", "÷", "/", "="]})
    a, ta = linegen.training_line(bank, np.random.default_rng(4))
    b, tb = linegen.training_line(bank, np.random.default_rng(4), warp=0.0)
    c, tc = linegen.training_line(bank, np.random.default_rng(4), warp=1.0)
    assert ta == tb == tc and np.array_equal(a, b) and not np.array_equal(a, c)
