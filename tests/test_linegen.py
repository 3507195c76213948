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


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.floats(-4, 12), st.integers(0, 40))
def test_a_kerned_glyph_comes_just_within_the_gap_of_the_ink_before_it(seed, gap, floor):
    from digitlab.reader.linegen import _kerned_x

    rng = np.random.default_rng(seed)
    right = np.where(rng.random(60) < 0.7, rng.integers(0, 50, 60), -1)  # each row's rightmost ink so far
    g = (rng.random((int(rng.integers(5, 30)), int(rng.integers(3, 20)))) < 0.3).astype(np.float32)
    y0 = int(rng.integers(0, 60 - g.shape[0] + 1))
    x = _kerned_x(g, y0, right, gap, floor)
    rows = np.nonzero((g > 0.3).any(axis=1))[0]
    first = (g[rows] > 0.3).argmax(axis=1)
    clearance = x + first - right[y0 + rows]  # per row: from the ink before to this glyph's ink
    assert x >= floor
    assert len(rows) == 0 or clearance.min() >= gap + 1 - 1e-9
    assert len(rows) == 0 or x == floor or clearance.min() < gap + 2  # no further than it must


def test_lines_spaced_by_ink_only_with_a_share_and_tighter_than_by_boxes():
    from digitlab.reader import linegen
    from digitlab.reader.glyphs import GlyphBank

    seven = np.zeros((20, 12), np.float32)
    seven[:3, :] = 1.0  # a bar on top and a stem on the right: the next glyph's low ink slides under
    seven[:, 9:] = 1.0
    seven[:, :2] = 0.0
    seven[:3, :2] = 1.0
    low = np.zeros((20, 12), np.float32)
    low[10:, :] = 1.0
    bank = GlyphBank(digits={d: [seven if d % 2 else low] for d in range(10)},
                     ops={k: [np.ones((6, 6), np.float32)] for k in ["+", "-", "x", ".", "÷", "/", "="]})
    a, ta = linegen.training_line(bank, np.random.default_rng(5))
    b, tb = linegen.training_line(bank, np.random.default_rng(5), kern=0.0)
    assert ta == tb and np.array_equal(a, b)
    tokens = list("7878787878")
    boxed = [linegen.render_tokens(tokens, bank, np.random.default_rng(s)).shape[1] for s in range(20)]
    kerned = [linegen.render_tokens(tokens, bank, np.random.default_rng(s), kern=1.0).shape[1] for s in range(20)]
    assert np.mean(kerned) < np.mean(boxed)
