"""The second route to a cross: readings that all say wrong, spread over how the line is written."""

from hypothesis import given
from hypothesis import strategies as st

from digitlab.arithmetic.calibrate import choose, choose_sure
from digitlab.arithmetic.verdicts import Calibration, verdict

# "62-32=29" as the reader spreads it: every reading is wrong (and a slip: no far answer to weigh
# down), the best one holds 40% of the mass.
SPREAD = [("62-32=29", 0.4), ("62-31=29", 0.3), ("62-32=28", 0.29), ("62-32=30", 0.0002)]


def test_a_second_pair_of_bounds_crosses_lines_whose_readings_all_say_wrong():
    assert verdict(SPREAD, 0.6, 0.99, 0.6)[0] == "unsure"  # the best reading alone is too doubtful
    status, support = verdict(SPREAD, 0.6, 0.99, 0.6, sure=(0.999, 0.3))
    assert status == "wrong" and support > 0.999
    # A right reading with a share above the second bound's remainder keeps it unsure...
    doubt = SPREAD[:3] + [("62-32=30", 0.01)]
    assert verdict(doubt, 0.6, 0.99, 0.6, sure=(0.999, 0.3))[0] == "unsure"
    # ...as does a best reading under its floor, and a line that adds up with its 1s read as 7s.
    assert verdict(SPREAD, 0.6, 0.99, 0.6, sure=(0.999, 0.5))[0] == "unsure"
    twin = [("9*72=708", 0.4), ("9*72=78", 0.3), ("9*2=708", 0.3)]
    assert verdict(twin, 0.6, 0.99, 0.6, sure=(0.999, 0.3))[0] == "unsure"


def test_the_stored_calibration_carries_its_second_bounds():
    class Reader:
        metadata = {"verdict_thresholds": {"rule": "normalised", "correct": 0.6, "wrong": 0.99, "top": 0.6,
                                           "sure": [0.999, 0.3]}}

    cal = Calibration.of(Reader())
    assert cal.sure == (0.999, 0.3) and cal.verdict(SPREAD)[0] == "wrong"
    Reader.metadata = {"verdict_thresholds": {"rule": "normalised", "correct": 0.6, "wrong": 0.99, "top": 0.6}}
    assert Calibration.of(Reader()).sure is None and Calibration.of(Reader()).verdict(SPREAD)[0] == "unsure"


def test_the_second_bounds_are_chosen_to_cross_more_without_a_false_cross():
    ticks = [(1.0, 0.0, True, 0.9, True)] * 300
    sure = [(0.0, 0.99, False, 0.9, False)] * 100  # wrong answers read surely: crossed by the first bounds
    spread = [(0.0, 0.9998, False, 0.35, False)] * 100  # wrong answers whose readings all say so
    misread = (0.0, 0.995, False, 0.5, True)  # a right answer read wrong, its right reading a remainder
    rows = ticks + sure + spread + [misread]
    first = choose(rows, target=0.99, max_false_cross=0.0)
    assert first["decided"] == 400 and first["false_crosses"] == 0  # one pair cannot cross both kinds
    found = choose_sure(rows, first, target=0.99, max_false_cross=0.0)
    assert found["decided"] == 500 and found["false_crosses"] == 0
    tw, tt = found["sure"]
    assert 0.995 < tw <= 0.9998 and tt <= 0.35
    # With nothing to gain there is no second pair.
    assert choose_sure(ticks + sure, choose(ticks + sure, 0.99, 0.0), 0.99, 0.0) is None


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from([True, False]),
                          st.floats(0, 1), st.booleans()), min_size=1, max_size=60))
def test_the_second_bounds_respect_the_calibrations_bounds(rows):
    first = choose(rows, target=0.99, max_false_cross=0.02)
    found = first and choose_sure(rows, first, target=0.99, max_false_cross=0.02)
    if not found:
        return
    (tw, tt), decided, good, crosses = found["sure"], 0, 0, 0
    for right, wrong, is_right, top, want in rows:
        if is_right and right >= first["correct"]:
            decided, good = decided + 1, good + want
        elif not is_right and ((wrong >= first["wrong"] and top >= first["top"]) or (wrong >= tw and top >= tt)):
            decided, good, crosses = decided + 1, good + (not want), crosses + want
    assert decided == found["decided"] > first["decided"]
    assert good / decided >= 0.99 and crosses <= 0.02 * len(rows)
    assert tw > first["wrong"] and tt < first["top"]


def test_weights_are_chosen_with_the_second_bounds():
    from digitlab.arithmetic.calibrate import choose_weights

    ticks = [([("12+7=19", 0.9)], True)] * 300
    sure = [([("12+7=18", 0.9), ("12+7=19", 0.009)], False)] * 100
    spread = [(SPREAD, False)] * 100
    misread = [([("12+7=18", 0.5), ("12+7=19", 0.0025)], True)]
    with_sure = choose_weights(ticks + sure + spread + misread)
    without = choose_weights(ticks + sure + spread + misread, sure=False)
    assert without["decided"] < 500 and "sure" not in without
    assert with_sure["decided"] == 500 and with_sure["false_crosses"] == 0 and with_sure["sure"][1] <= 0.4
