"""Page geometry: finding and flattening the sheet, rulings, skew, columns and lines."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitlab.page.ink import THICK, THIN, darkness, flatten_light, remove_rulings, stroke_width, thickened
from digitlab.page.layout import analyse_page, estimate_skew, find_columns, find_lines
from digitlab.page.sheet import find_sheet, order_corners, rectify


def _strokes(h, w, rng, n=40):
    """Dark strokes in random places: something like handwriting for geometry tests."""
    ink = np.zeros((h, w), np.float32)
    for _ in range(n):
        x, y = int(rng.integers(0, w - 30)), int(rng.integers(0, h - 30))
        cv2.line(ink, (x, y), (x + int(rng.integers(5, 25)), y + int(rng.integers(5, 25))), 1.0, 3)
    return ink


def _photo_of_sheet(rng, corners, size=(900, 1200)):
    """A white sheet with writing, warped onto a dark table so its corners land on ``corners``."""
    W, H = 700, 990
    sheet = np.ones((H, W, 3), np.float32) * 0.95
    sheet *= 1 - 0.8 * _strokes(H, W, rng)[..., None]
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    M = cv2.getPerspectiveTransform(src, np.float32(corners))
    table = np.ones((size[1], size[0], 3), np.float32) * np.array([0.35, 0.25, 0.2], np.float32)
    warped = cv2.warpPerspective(sheet, M, size, borderValue=(-1, -1, -1))
    return np.where(warped[..., :1] < 0, table, warped).clip(0, 1)


def test_sheet_corners_recovered_within_a_few_pixels():
    rng = np.random.default_rng(0)
    corners = [[140, 90], [780, 150], [820, 1100], [90, 1050]]
    photo = _photo_of_sheet(rng, corners)
    found = find_sheet(photo)
    assert found is not None
    assert np.abs(found - np.float32(corners)).max() < 8, found


def test_rectify_makes_the_sheet_upright():
    rng = np.random.default_rng(1)
    corners = np.float32([[140, 90], [780, 150], [820, 1100], [90, 1050]])
    photo = _photo_of_sheet(rng, corners)
    flat, M = rectify(photo, corners, max_side=800)
    assert max(flat.shape[:2]) == 800
    # The table is gone: the border of the flattened sheet is paper.
    border = np.concatenate([flat[2], flat[-3], flat[:, 2], flat[:, -3]])
    assert np.median(border) > 0.85
    mapped = cv2.perspectiveTransform(corners[None], M)[0]
    assert np.abs(mapped[0]).max() < 1 and abs(mapped[2][0] - (flat.shape[1] - 1)) < 1


def test_no_sheet_when_the_paper_fills_the_picture():
    rng = np.random.default_rng(2)
    page = np.ones((600, 400, 3), np.float32) * 0.95
    page *= 1 - 0.8 * _strokes(600, 400, rng)[..., None]
    assert find_sheet(page) is None


@given(st.permutations(range(4)))
def test_order_corners_is_independent_of_input_order(perm):
    pts = np.float32([[10, 12], [200, 5], [210, 300], [3, 290]])
    assert np.array_equal(order_corners(pts[list(perm)]), pts)


def _grid_page(blue_pen: bool):
    h, w = 600, 800
    rgb = np.ones((h, w, 3), np.float32) * np.float32([0.97, 0.96, 0.93])
    for y in range(10, h, 30):
        cv2.line(rgb, (0, y), (w, y), (0.55, 0.7, 0.92), 1)
    for x in range(10, w, 30):
        cv2.line(rgb, (x, 0), (x, h), (0.55, 0.7, 0.92), 1)
    pen = (0.1, 0.2, 0.6) if blue_pen else (0.1, 0.1, 0.1)
    strokes = np.zeros((h, w), np.uint8)
    cv2.putText(strokes, "12+7=19", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 1, 4)
    rgb[strokes > 0] = pen
    return rgb, strokes > 0


@pytest.mark.parametrize("blue_pen", [False, True])
def test_rulings_removed_pen_kept(blue_pen):
    rgb, strokes = _grid_page(blue_pen)
    d = darkness(flatten_light(rgb))
    clean, found = remove_rulings(d, min_len=40)
    grid = (darkness(rgb) > 0.2) & ~cv2.dilate(strokes.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.mean(clean[grid] > 0.25) < 0.02  # the squares are gone ...
    assert np.mean(clean[strokes] > 0.4) > 0.9  # ... and the writing, crossing them, is not


def test_a_stroke_along_a_squares_line_is_kept_whole():
    """A 1's stem written on a squared page's line runs along it for longer than any opening's
    length: the line goes, the stem stays as dark as the rest of the writing."""
    d = np.zeros((300, 300), np.float32)
    d[::40, :] = d[:, ::40] = 0.25  # 1-px grey squares, 40 px apart
    d[60:130, 119:122] = 0.85  # a stem on the line x = 120
    d[200, 30:60] = 0.85  # and a bar crossing x = 40
    clean, _ = remove_rulings(d, min_len=25)
    assert clean[60:130, 120].min() > 0.8 and clean[200, 30:60].min() > 0.8
    assert clean[20, :].max() < 0.1 and clean[250:290, 80].max() < 0.1


def test_short_strokes_are_not_rulings():
    d = np.zeros((200, 300), np.float32)
    cv2.line(d, (40, 100), (110, 100), 1.0, 3)  # a minus sign, longer than min_len
    clean, found = remove_rulings(d, min_len=30)
    assert clean[100, 50:100].min() > 0.9 and found.max() == 0


@settings(max_examples=15, deadline=None)
@given(st.floats(-12, 12))
def test_skew_of_text_lines_recovered(angle):
    rng = np.random.default_rng(3)
    mask = np.zeros((700, 900), np.uint8)
    for y in range(120, 620, 70):
        for x in range(100, 800, 24):
            if rng.random() < 0.8:
                cv2.rectangle(mask, (x, y), (x + 14, y + 30), 1, 3)
    M = cv2.getRotationMatrix2D((450, 350), angle, 1.0)
    rotated = cv2.warpAffine(mask, M, (900, 700), flags=cv2.INTER_NEAREST)
    assert abs(estimate_skew(rotated > 0) - angle) < 0.5


def test_columns_and_lines():
    mask = np.zeros((500, 900), bool)
    for col_x in (50, 520):
        for y in range(60, 460, 80):
            mask[y : y + 30, col_x : col_x + 250 : 3] = True  # a line of "symbols"
    cols = find_columns(mask, symbol_h=30)
    assert len(cols) == 2 and cols[0][1] < 520 <= cols[1][0]
    assert len(find_lines(mask[:, cols[0][0] : cols[0][1]])) == 5


def test_a_column_is_not_split_by_wide_spaces_within_lines():
    mask = np.zeros((300, 900), bool)
    for y in (40, 120, 200):
        mask[y : y + 30, 50:200] = True
        mask[y : y + 30, 290:330] = True  # the answer, a bit further away
    assert len(find_columns(mask, symbol_h=30)) == 1


def test_two_columns_of_short_exercises_far_apart_stay_two():
    """"1x1=1" written narrow is under two symbols wide: a column of short exercises is still a
    column when it stands far from the next one (an answer written to the right stands closer)."""
    mask = np.zeros((560, 900), bool)
    for col_x in (50, 520):
        for y, width in zip(range(60, 520, 80), (40, 80, 85, 90, 105, 140)):
            mask[y : y + 30, col_x : col_x + width : 3] = True
    cols = find_columns(mask, symbol_h=30)
    assert len(cols) == 2 and cols[0][1] < 520 <= cols[1][0]
    near = mask.copy()
    near[:, 200:] = False
    for y in range(60, 520, 80):
        near[y : y + 30, 260:300:3] = True  # answers 2 symbols to the right: one column
    assert len(find_columns(near, symbol_h=30)) == 1


def test_specks_between_columns_do_not_join_them():
    """What cleaning leaves of an open book's binding: short dashes down the gutter, a few of them
    on the rows of the left column's lines. They must not glue the columns into one."""
    mask = np.zeros((700, 900), bool)
    for col_x in (50, 560):
        for y in range(60, 300, 80):
            mask[y : y + 30, col_x : col_x + 250 : 3] = True
    for y in range(40, 680, 45):
        mask[y : y + 12, 440:444] = True  # the gutter: 1.5 symbols from nothing on either side
    cols = find_columns(mask, symbol_h=30)
    assert len(cols) == 2 and cols[0][1] < 440 and cols[1][0] >= 560
    assert len(find_lines(mask[:, cols[0][0] : cols[0][1]])) == 3


def test_symbol_height_is_not_set_by_the_dots_a_thick_ruling_leaves():
    from digitlab.page.layout import _clean_mask

    rng = np.random.default_rng(2)
    ink = np.zeros((700, 600), np.float32)
    for y in range(80, 620, 90):  # six lines of writing, symbols 30 px high
        for x in range(60, 260, 26):
            cv2.rectangle(ink, (x, y), (x + 16, y + 30), 1.0, 4)
    for y in range(40, 700, 45):  # what is left of the rulings: hundreds of 2 px dots
        for x in rng.choice(600, 90, replace=False):
            ink[y : y + 2, x : x + 2] = 0.9
    mask, symbol_h = _clean_mask(ink)
    assert 25 <= symbol_h <= 36
    assert not mask[40:42].any()  # the dots are gone with the specks


def test_a_lone_stroke_before_a_line_is_not_part_of_it_but_a_far_answer_is():
    from digitlab.page.layout import _without_lone_stroke

    line = np.arange(200, 420)  # "12+34=46", 30 px symbols
    margin = np.arange(100, 104)  # a piece of the margin line, 3 symbols before it
    assert _without_lone_stroke(np.r_[margin, line], 30)[0] == 200
    answer = np.arange(520, 545)  # an answer written far to the right stays
    assert _without_lone_stroke(np.r_[line, answer], 30)[-1] == 544
    wide = np.arange(100, 140)  # a wide mark (a word, a number) is not a stray stroke
    assert _without_lone_stroke(np.r_[wide, line], 30)[0] == 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2000), min_size=0, max_size=300, unique=True), st.floats(5, 60))
def test_only_a_narrow_lone_head_is_ever_dropped(cols, symbol_h):
    from digitlab.page.layout import _without_lone_stroke

    xs = np.array(sorted(cols), dtype=int)
    out = _without_lone_stroke(xs, symbol_h)
    assert len(out) <= len(xs) and np.array_equal(out, xs[len(xs) - len(out):])  # a suffix
    if len(out) < len(xs):
        head = xs[: len(xs) - len(out)]
        assert head[-1] - head[0] + 1 <= 0.4 * symbol_h and out[0] - head[-1] > 1.5 * symbol_h


def test_close_lines_with_overlapping_tails_are_two_lines():
    mask = np.zeros((400, 600), bool)
    for y in (40, 100, 160, 300):
        mask[y : y + 50, 50:400:4] = True  # lines 50 px high, 10 px apart: a small hand on squared paper
    mask[145:175, 200:204] = True  # a tail reaching into the next line
    bands = find_lines(mask)
    assert len(bands) == 4 and bands[0] == (40, 90) and bands[3] == (300, 350)
    assert bands[1][0] == 100 and 150 <= bands[1][1] == bands[2][0] <= 160 and bands[2][1] == 210


@settings(max_examples=40, deadline=2000)
@given(st.lists(st.tuples(st.integers(0, 190), st.integers(1, 12)), min_size=1, max_size=25))
def test_find_lines_always_ends_with_ordered_bands_inside_the_page(bands):
    """Specks a few rows high next to taller marks once sent the band splitter into an endless loop."""
    mask = np.zeros((200, 50), bool)
    for y, h in bands:
        mask[y : y + h, 5:40:3] = True
        mask[y, 11:40] = False  # a faint first row (2 pixels): where a split would cut
    out = find_lines(mask)
    assert all(0 <= a < b <= 200 for a, b in out)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(out, out[1:]))


def test_find_lines_with_specks_and_a_taller_mark_ends():
    mask = np.zeros((80, 50), bool)
    for y in (10, 20, 30):
        mask[y : y + 2, 5:45] = True
    mask[50, 5:7] = True
    mask[51:56, 5:25] = True
    assert find_lines(mask)[-1][1] == 56


def test_a_slanted_margin_line_is_not_writing():
    """An imperfect flattening leaves the margin line a few degrees off vertical, through the lines."""
    from digitlab.page.layout import _clean_mask

    u8 = np.zeros((900, 700), np.uint8)
    for y in range(100, 800, 110):
        for x in range(120, 500, 40):
            cv2.putText(u8, "8", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 255, 3)
    cv2.line(u8, (30, 0), (110, 899), 255, 2)  # about 5 degrees, just left of the writing
    ink = u8.astype(np.float32) / 255
    mask, symbol_h = _clean_mask(ink)
    assert not mask[450, 60:80].any()  # the margin is gone ...
    assert 30 <= symbol_h <= 45 and mask[:, 200:].sum() > 0.9 * (ink[:, 200:] > 0.5).sum()  # ... the 8s stay
    assert len(find_lines(mask)) == 7


def test_analyse_notebook_photo_finds_sheet_columns_and_lines():
    from digitlab.synthetic import pagegen
    from digitlab.reader.glyphs import GlyphBank

    bank = GlyphBank.load("heldout", max_per_digit=200)
    data, truths, corners = pagegen.notebook_photo(bank, np.random.default_rng(4))
    page = analyse_page(data)
    assert page.sheet is not None
    assert np.abs(np.float32(page.sheet) - corners).max() < 25
    assert len(page.lines) == len(truths)
    assert {l.column for l in page.lines} == {0, 1}
    # Every truth line is found where it is in the photo (the user's coordinates).
    for t in truths:
        best = max(page.lines, key=lambda l: _overlap(l.bbox, t.box))
        assert _overlap(best.bbox, t.box) > 0.5


def _overlap(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, (b[2] - b[0]) * (b[3] - b[1]))


def test_dense_dots_are_refused_quickly():
    import time

    from digitlab.errors import ImageError

    img = np.full((2000, 2000), 255, np.uint8)
    img[::12, ::12] = 0
    img = cv2.dilate(255 - img, np.ones((3, 3), np.uint8))
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="too many marks"):
        analyse_page(255 - img)
    assert time.perf_counter() - t0 < 5


# -- harsher photos (digitlab.synthetic.phonegen) -----------------------------------------------------------
def test_a_dim_page_is_not_taken_for_a_board():
    from digitlab.page.ink import dark_on_light

    rng = np.random.default_rng(6)
    page = np.ones((400, 300, 3), np.float32) * 0.38  # paper in a shadow: dark everywhere
    page *= 1 - 0.85 * _strokes(400, 300, rng)[..., None]  # the writing is darker still
    assert dark_on_light(page) is page
    board = np.clip(0.15 + 0.8 * _strokes(400, 300, rng), 0, 1)[..., None].repeat(3, 2)  # chalk on a board
    assert dark_on_light(board).mean() > 0.5


def test_a_sheet_under_a_hard_shadow_on_a_beige_table_is_found_by_its_colour():
    from digitlab.page.sheet import sheet_outlines

    H, W = 900, 700
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.80, 0.68, 0.52)
    corners = np.float32([[120, 140], [560, 90], [600, 800], [90, 770]])
    cv2.fillPoly(img, [corners.astype(np.int32)], (0.86, 0.87, 0.86))
    yy, xx = np.mgrid[:H, :W]
    img[(yy - 0.9 * xx) > 250] *= 0.45  # across table and sheet alike
    img = np.clip(img + np.random.default_rng(0).normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    errors = [np.abs(c - corners).max() for c in sheet_outlines(img) if c is not None]
    assert errors[0] > 100  # brightness alone finds the light, not the paper
    assert min(errors) < 5


def test_a_sheet_half_in_shadow_is_found_whole():
    """Brightness finds only the lit part of the sheet; the nearly grey region holds it and is
    larger, so it is the outline tried first."""
    from digitlab.page.sheet import find_sheet

    H, W = 900, 700
    img = np.empty((H, W, 3), np.float32)
    img[:] = (0.25, 0.35, 0.22)  # a dark green table
    corners = np.float32([[120, 140], [560, 90], [600, 800], [90, 770]])
    cv2.fillPoly(img, [corners.astype(np.int32)], (0.86, 0.87, 0.86))
    img[np.mgrid[:H, :W][0] > 520] *= 0.4  # the lower part of the picture in a shadow
    img = np.clip(img + np.random.default_rng(0).normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    assert np.abs(find_sheet(img) - corners).max() < 6


def test_a_fine_ruling_that_drifts_is_removed_and_strokes_crossing_it_stay():
    d = np.zeros((600, 900), np.float32)
    xs = np.arange(900)
    for y0 in range(40, 560, 60):  # 1 px rulings that drift 12 px across the page (a bowed sheet)
        d[(y0 + 12 * np.sin(np.pi * xs / 900)).astype(int), xs] = 0.5
    cv2.line(d, (300, 20), (300, 130), 0.95, 3)  # a stroke across two rulings
    out, found = remove_rulings(d, min_len=40)
    rulings = (d > 0.3) & (d < 0.9)
    assert (out[rulings & (np.abs(xs[None, :] - 300) > 4)] > 0.15).mean() < 0.02  # one pass left half
    assert out[30:120, 299:302].min() > 0.4


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_found_lines_always_hold_ink(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((300, 200), bool)
    for _ in range(int(rng.integers(1, 8))):  # blocks of writing of any height, some tall
        y, h = int(rng.integers(0, 280)), int(rng.integers(2, 120))
        mask[y : y + h, int(rng.integers(0, 100)) : int(rng.integers(100, 200))] = rng.random((min(h, 300 - y), 1)) < 0.7
    for y0, y1 in find_lines(mask):
        assert mask[y0].any() and mask[y1 - 1].any()


def test_phone_photo_lines_are_found_where_they_are():
    """A harsh photo of the second photo model: the lines are found and boxed in the user's pixels."""
    from digitlab.synthetic import phonegen
    from digitlab.page.layout import page_hypotheses
    from digitlab.reader.glyphs import GlyphBank

    bank = GlyphBank.load("heldout", max_per_digit=100)
    data, truths, _ = phonegen.phone_photo(bank, np.random.default_rng(3))
    page = next(page_hypotheses(data))
    assert len(truths) >= 5
    found = sum(max(_overlap(l.bbox, t.box) for l in page.lines) > 0.5 for t in truths)
    assert found >= 0.8 * len(truths)


def test_the_whole_picture_is_a_hypothesis_unless_the_sheet_lies_on_a_coloured_table():
    """The whole picture is tried last, for when the outline found is wrong (part of a page that
    fills the picture); on a coloured table the picture cannot be all page, and trying it cost half
    a second a photo."""
    from digitlab.page.sheet import sheet_outlines

    rng = np.random.default_rng(4)
    corners = [[140, 90], [780, 150], [820, 1100], [90, 1050]]
    on_wood = _photo_of_sheet(rng, corners)  # a brown table
    outlines = list(sheet_outlines(on_wood))
    assert outlines[0] is not None and all(o is not None for o in outlines)
    grey = on_wood.copy()
    table = np.all(np.abs(on_wood - np.array([0.35, 0.25, 0.2], np.float32)) < 1e-6, axis=-1)
    grey[table] = 0.4  # the same sheet on a grey desk: the surround might be paper in shadow
    outlines = list(sheet_outlines(grey))
    assert outlines[0] is not None and outlines[-1] is None


# -- crops cut along a table's or a form's cell --------------------------------------------------------------
def _framed(ink: np.ndarray, gap: int = 3, width: int = 2) -> np.ndarray:
    """``ink`` (1 = ink) inside a cell's four borders ``gap`` px away, ``width`` px thick."""
    out = np.pad(ink, gap + width)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = 1, 1, 1, 1
    return out


def test_a_light_crop_with_dark_borders_is_not_taken_for_a_board():
    from digitlab.page.ink import dark_on_light

    crop = 1 - 0.8 * _framed(_strokes(40, 60, np.random.default_rng(3), n=6))
    rgb = np.repeat(crop[..., None], 3, 2).astype(np.float32)
    assert dark_on_light(rgb) is rgb


def test_a_cells_borders_are_erased_and_the_writing_kept():
    from digitlab.page.ink import remove_frame

    writing = np.zeros((40, 60), np.float32)
    cv2.circle(writing, (20, 20), 14, 1.0, 3)  # a "0"
    cv2.line(writing, (45, 3), (45, 37), 1.0, 3)  # a "1"
    writing[18:23, :3] = 1  # touching the left border
    framed = _framed(writing, gap=0)
    kept = remove_frame(framed)
    inner = (slice(2, -2), slice(2, -2))
    assert kept[:2].max() == kept[-2:].max() == kept[:, :2].max() == kept[:, -2:].max() == 0
    assert (kept[inner] == writing).mean() > 0.99


@pytest.mark.parametrize("shape", ["one", "seven", "two"])
def test_a_tight_crop_has_no_frame_to_lose(shape):
    """A 1's stem runs a tight crop's whole height, a 7's bar or a 2's foot its whole width: alone,
    along one side, they are writing, not a cell's borders."""
    from digitlab.page.ink import remove_frame

    ink = np.zeros((48, 30), np.float32)
    if shape in ("one", "seven"):
        cv2.line(ink, (27, 0), (27 if shape == "one" else 8, 47), 1.0, 3)
    if shape == "seven":
        ink[:3] = 1
    if shape == "two":
        cv2.ellipse(ink, (15, 14), (13, 13), 0, 180, 360, 1.0, 3)
        cv2.line(ink, (28, 14), (0, 46), 1.0, 3)
        ink[-3:] = 1
    assert np.array_equal(remove_frame(ink), ink)


def test_a_forms_comb_of_boxes_loses_its_separators_not_its_digits():
    from digitlab.page.ink import remove_frame

    comb = np.zeros((44, 3 * 40 + 2), np.float32)
    comb[:2], comb[-2:] = 1, 1
    for x in (0, 40, 80, 120):
        comb[:, x : x + 2] = 1  # the boxes' sides
    writing = np.zeros_like(comb)
    for x in (20, 60, 100):
        cv2.line(writing, (x + 3, 8), (x - 3, 36), 1.0, 3)  # a "1" in each box, clear of its borders
    kept = remove_frame(np.maximum(comb, writing))
    assert kept[comb > 0].max() == 0
    assert np.array_equal(kept > 0, writing > 0)


@pytest.mark.parametrize("pen", [1, 2, 4, 7, 12])
def test_stroke_width_is_the_pens(pen):
    ink = np.zeros((300, 500), np.uint8)
    pts = np.int32([[20, 250], [120, 30], [250, 270], [480, 40]])
    cv2.polylines(ink, [pts.reshape(-1, 1, 2)], False, 1, pen)
    drawn = ink.sum() / np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()  # the width cv2 drew: area / length
    assert abs(stroke_width(ink) - drawn) <= 0.25 * drawn + 0.5


def test_only_strokes_thin_for_their_size_are_thickened():
    """A 2 px line on symbols 300 px high (a pen tablet's export) is widened to a paper pen's share of
    the height; a pen of a tenth of the height is left as it is, the very same array."""
    thin = np.zeros((400, 400), np.float32)
    cv2.polylines(thin, [np.int32([[50, 50], [200, 350], [350, 60]]).reshape(-1, 1, 2)], False, 1.0, 2)
    fat = thickened(thin, 300.0)
    assert fat is not thin and abs(stroke_width(fat > 0.3) - THICK * 300) <= 0.2 * THICK * 300
    assert fat.max() == 1.0 and (fat[thin > 0] == 1.0).all()  # the stroke's own darkness, only wider
    paper = np.zeros((400, 400), np.float32)
    cv2.polylines(paper, [np.int32([[50, 50], [200, 350], [350, 60]]).reshape(-1, 1, 2)], False, 1.0, 30)
    assert thickened(paper, 300.0) is paper
    assert thickened(thin, 2 / (THIN * 1.5)) is thin  # thin for 300 px, not for ~33
