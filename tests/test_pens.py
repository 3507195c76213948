"""Real pen trajectories (pendigits, UJI): parsing, rendering, composed lines."""

import numpy as np
import pytest

from digitlab.datasets.pens import (PenSet, Writer, as_paper, compose_line, load_pendigits, load_uji, operator_strokes,
                                    parse_unipen, pen_lines)
from digitlab.errors import DataError


@pytest.fixture
def data_dir():
    return None  # $DIGITLAB_DATA (``.ci/run`` points it at ../shared/datasets)

SNIPPET = """.LEXICON "0" "1"
.SEGMENT DIGIT    0 ? "7"
.COMMENT 7 12  224
.PEN_DOWN
 10  100
 50  100
 20  0
.PEN_UP
.DT 100
.SEGMENT DIGIT    1 ? "1"
.COMMENT 1 13  3
.PEN_DOWN
 30  0
 30  100
.PEN_UP
"""


def test_parse_unipen_reads_strokes_labels_and_writers():
    strokes, labels, writers = parse_unipen(SNIPPET, lambda c: c.split()[2], "x")
    assert labels == ["7", "1"]
    assert writers == ["12", "13"]
    assert [len(s) for s in strokes] == [1, 1]
    np.testing.assert_array_equal(strokes[0][0], [[10, 100], [50, 100], [20, 0]])


def test_parse_unipen_refuses_a_malformed_segment():
    with pytest.raises(DataError, match="malformed"):
        parse_unipen(".SEGMENT DIGIT 0\n")


def test_compose_line_draws_every_character_left_to_right():
    strokes, labels, _ = parse_unipen(SNIPPET)
    pens = PenSet(strokes, labels, ["w"] * len(labels))
    upright = Writer(height=40, slant=0.0, gap=0.4, pen=3, drift=0.0)
    ink = compose_line("17+1=71", pens, "w", np.random.default_rng(0), writer=upright)
    assert ink.dtype == np.float32 and 0 <= ink.min() and ink.max() <= 1
    cols = (ink > 0.5).any(0)
    runs = np.flatnonzero(np.diff(np.r_[0, cols.astype(int)]) == 1)
    assert len(runs) == 7  # one run of columns per character, upright and spaced
    paper = as_paper(ink)
    assert paper.dtype == np.uint8 and paper[ink > 0.9].mean() < paper[ink == 0].mean() - 100


@pytest.mark.parametrize("op", list("+-*/=()"))
def test_operator_strokes_fit_a_digit_box(op):
    pts = np.concatenate(operator_strokes(op, np.random.default_rng(1)))
    assert pts[:, 1].min() > -0.3 and pts[:, 1].max() < 1.3
    assert pts[:, 0].max() - pts[:, 0].min() < 1.0


def test_pendigits_test_writers_are_not_training_writers(data_dir):
    tra, tes = load_pendigits("tra", data_dir), load_pendigits("tes", data_dir)
    assert len(tra.labels) == 7494 and len(tes.labels) == 3498
    assert len(tra.by_writer) == 30 and len(tes.by_writer) == 14
    assert not set(tra.by_writer) & set(tes.by_writer)
    # pendigits' y axis points up: after the flip, an "8"'s strokes start near its top
    assert set(tes.labels) == set("0123456789")


def test_uji_has_eleven_writers_with_digits_and_x(data_dir):
    uji = load_uji(data_dir)
    assert len(uji.by_writer) == 11
    assert all("x" in chars and "7" in chars for chars in uji.by_writer.values())


def test_pen_lines_are_reproducible_and_about_half_right(data_dir):
    from digitlab.arithmetic.check import adds_up

    pens = load_pendigits("tra", data_dir)
    a = pen_lines(pens, 60, seed=3)
    b = pen_lines(pens, 60, seed=3)
    assert a[1] == b[1] and all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    right = np.mean([adds_up(t) for t in a[1]])
    assert 0.3 < right < 0.7
    numbers = pen_lines(pens, 30, seed=3, kind="number")[1]
    assert all(t.isdigit() and (t == "0" or not t.startswith("0")) for t in numbers)


def test_a_missing_data_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="pendigits-orig.tes.gz not found"):
        load_pendigits("tes", tmp_path)
    with pytest.raises(DataError, match="'tra' or 'tes'"):
        load_pendigits("val", tmp_path)


def test_messy_lines_stay_one_line():
    """Symbols off the baseline, a lower "=", a climbing answer: still one line of writing."""
    from digitlab.predictor import check_page
    from digitlab.datasets.pens import as_paper, load_pendigits, pen_lines

    pens = load_pendigits("tra")
    tidy, _, _ = pen_lines(pens, 3, seed=12)
    messy, texts, _ = pen_lines(pens, 3, seed=12, messy=0.4)
    assert any(a.shape != b.shape for a, b in zip(tidy, messy))
    for i, ink in enumerate(messy):
        page = check_page(as_paper(np.pad(ink, 24), np.random.default_rng(i)))
        assert len(page.lines) == 1


def test_lines_from_a_pen_tablet_are_read():
    """Written large in a fine line, as pen tablets export them (symbols 100-300 px high, a 1-3 px
    pen): every line is found as one line, and read. The page's measures of ink (specks, a band's
    amount of writing) once assumed paper's strokes, and found no line in most such images."""
    from digitlab.predictor import check_page

    inks, texts, _ = pen_lines(load_pendigits("tes"), 6, seed=5, tablet=True)
    assert min(i.shape[0] for i in inks) >= 150
    read = []
    for i, ink in enumerate(inks):
        page = check_page(as_paper(np.pad(ink, 24), np.random.default_rng(i)))
        assert len(page.lines) == 1
        read.append(page.lines[0].expression)
    assert sum(r == t for r, t in zip(read, texts)) >= 5, list(zip(read, texts))
