"""The second route to a cross: a reader sure of a line among the arithmetic readings, though much of
its probability went to strings that are no arithmetic line."""

from hypothesis import given
from hypothesis import strategies as st

from digitlab.arithmetic.calibrate import choose, choose_sure
from digitlab.arithmetic.verdicts import Calibration, best_share, verdict

# A wrong line (62-32 is 30) whose best reading holds 40% of the probability, nearly all of the
# grammatical readings' mass; the rest went to strings that are no line ("62-3229").
SPREAD = [("62-32=29", 0.4), ("62-3229", 0.35), ("62-32=2=9", 0.2), ("62-32=28", 0.03), ("62-32=30", 0.0002)]
BOUNDS = (0.6, 0.99, 0.6)


def test_a_second_route_crosses_a_line_the_reader_is_sure_of_among_arithmetic_readings():
    assert best_share(SPREAD) > 0.9
    assert verdict(SPREAD, *BOUNDS)[0] == "unsure"  # the best reading alone is too doubtful
    status, support = verdict(SPREAD, *BOUNDS, sure=(0.999, 0.9, 0.1))
    assert status == "wrong" and support > 0.999
    # Not when a right reading keeps more than the wrong share's remainder...
    doubt = SPREAD[:4] + [("62-32=30", 0.01)]
    assert verdict(doubt, *BOUNDS, sure=(0.999, 0.9, 0.1))[0] == "unsure"
    # ...nor when the arithmetic readings disagree on the line, or the best one is under the floor...
    spread = [("62-32=29", 0.4), ("602-32=29", 0.3), ("162-32=29", 0.29)]
    assert best_share(spread) < 0.5 and verdict(spread, *BOUNDS, sure=(0.999, 0.9, 0.1))[0] == "unsure"
    assert verdict(SPREAD, *BOUNDS, sure=(0.999, 0.9, 0.5))[0] == "unsure"
    # ...nor for a line that adds up with its 1s read as 7s.
    twin = [("9*72=708", 0.4), ("9*72708", 0.5)]
    assert verdict(twin, *BOUNDS, sure=(0.999, 0.9, 0.1))[0] == "unsure"


def test_the_stored_calibration_carries_its_second_route():
    class Reader:
        metadata = {"verdict_thresholds": {"rule": "normalised", "correct": 0.6, "wrong": 0.99, "top": 0.6,
                                           "sure": [0.999, 0.9, 0.1]}}

    cal = Calibration.of(Reader())
    assert cal.sure == (0.999, 0.9, 0.1) and cal.verdict(SPREAD)[0] == "wrong"
    Reader.metadata = {"verdict_thresholds": {"rule": "normalised", "correct": 0.6, "wrong": 0.99, "top": 0.6}}
    assert Calibration.of(Reader()).sure is None and Calibration.of(Reader()).verdict(SPREAD)[0] == "unsure"


def test_the_second_route_is_chosen_to_cross_more_without_a_false_cross():
    # rows: (right share, wrong share, best reading right, its probability, truth, twin, its share)
    ticks = [(1.0, 0.0, True, 0.9, True, False, 1.0)] * 300
    sure = [(0.0, 0.99, False, 0.9, False, False, 0.9)] * 100  # crossed by the first bounds
    diffuse = [(0.0, 0.9998, False, 0.35, False, False, 0.97)] * 100  # sure among arithmetic readings
    misread = (0.0, 0.9998, False, 0.5, True, False, 0.5)  # a right answer; its readings disagree
    rows = ticks + sure + diffuse + [misread]
    first = choose(rows, target=0.99, max_false_cross=0.0)
    assert first["decided"] == 400 and first["false_crosses"] == 0  # one pair cannot cross both kinds
    found = choose_sure(rows, first, target=0.99, max_false_cross=0.0)
    assert found["decided"] == 500 and found["false_crosses"] == 0
    tw, ts, tt = found["sure"]
    assert 0.99 <= tw <= 0.9998 and 0.5 < ts <= 0.97 and tt <= 0.35
    # With nothing to gain there is no second route.
    assert choose_sure(ticks + sure, choose(ticks + sure, 0.99, 0.0), 0.99, 0.0) is None


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from([True, False]),
                          st.floats(0, 1), st.booleans(), st.booleans(), st.floats(0, 1)), min_size=1, max_size=60))
def test_the_second_route_respects_the_calibrations_bounds(rows):
    first = choose(rows, target=0.99, max_false_cross=0.02)
    found = first and choose_sure(rows, first, target=0.99, max_false_cross=0.02)
    if not found:
        return
    (tw, ts, tt), decided, good, crosses = found["sure"], 0, 0, 0
    for right, wrong, is_right, top, want, twin, share in rows:
        first_route = wrong >= first["wrong"] and top >= first["top"]
        if is_right and right >= first["correct"]:
            decided, good = decided + 1, good + want
        elif not is_right and not twin and (first_route or (wrong >= tw and share >= ts and top >= tt)):
            decided, good, crosses = decided + 1, good + (not want), crosses + want
    assert decided == found["decided"] > first["decided"]
    assert good / decided >= 0.99 and crosses <= 0.02 * len(rows)
    assert tw >= first["wrong"] and tt < first["top"]


def test_weights_are_chosen_with_the_second_route():
    from digitlab.arithmetic.calibrate import choose_weights

    ticks = [([("12+7=19", 0.9)], True)] * 300
    sure = [([("12+7=18", 0.9), ("12+7=19", 0.009)], False)] * 100
    diffuse = [(SPREAD, False)] * 100
    misread = [([("12+7=18", 0.5), ("12+7=17", 0.45), ("12+7=19", 0.00001)], True)]  # a right answer
    with_sure = choose_weights(ticks + sure + diffuse + misread)
    without = choose_weights(ticks + sure + diffuse + misread, sure=False)
    assert without["decided"] < 500 and "sure" not in without
    assert with_sure["decided"] == 500 and with_sure["false_crosses"] == 0 and with_sure["sure"][2] <= 0.4
