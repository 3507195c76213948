"""The reading pipeline, composed once, as docTR's ``ocr_predictor`` composes detection and recognition.

A ``Predictor`` holds the recogniser (``reader.read.get_line_reader``: PP-OCRv6 fused with the CRNNs),
its verdict calibration (``arithmetic.verdicts.Calibration``, stored with the model) and an optional
handwriting profile, and runs every task on them. A pixel's way, stage by stage:

    image        io.images.load_rgb (EXIF turns, size limits)
    page         page.layout: sheet, flattening, rulings, lines and column sums (check); the band
                 with the most writing, or the whole image, its cell's borders erased (number,
                 expression: reader.single); a worksheet's markers and boxes (grade:
                 worksheets.markers, worksheets.grade)
    recogniser   reader.read.read_lines: frames of CTC log-probabilities from each member
    decoder      reader.decode: the task's grammar (ARITHMETIC, EXPRESSION, NUMBER, ROW), N-best
    rescorers    near misses, the arithmetic prior, a slash's lean (reader.slash), the digit CNN's
                 opinion, a profile
    verdicts     arithmetic.verdicts (lines), arithmetic.columns (column sums), arithmetic.calc
                 (an expression), worksheets.grade.mark_part (a box against its key)

``check_page``, ``read_number``, ``calculate`` and ``grade_photo`` each build a
Predictor for one image; a server or a batch builds one and reuses it.
"""

from __future__ import annotations

import functools


class Predictor:
    """``check`` a page of homework, read a ``number`` or an ``expression``, ``calc`` one, ``grade`` a
    worksheet photo: all with the same recogniser, calibration and profile."""

    def __init__(self, reader=None, profile=None, max_side: int | None = None, low_confidence: float = 0.7):
        from .reader.read import get_line_reader

        self.reader = reader or get_line_reader()
        self.profile, self.max_side, self.low_confidence = profile, max_side, low_confidence

    @functools.cached_property
    def checker(self):
        """The page checker (``arithmetic.check.PageChecker``): hypotheses, orientation, lines, columns."""
        from .arithmetic.check import PageChecker

        return PageChecker(self.reader, self.profile, self.max_side, self.low_confidence)

    @functools.cached_property
    def calibration(self):
        """How readings become verdicts for this reader (``arithmetic.verdicts.Calibration``)."""
        from .arithmetic.verdicts import Calibration

        return Calibration.of(self.reader)

    def check(self, source, name: str = "image"):
        """Every arithmetic line and column sum of a photo, scan or drawing, with its verdict (``PageResult``)."""
        return self.checker(source, name)

    def number(self, source, name: str = "image") -> dict:
        """A written number: text, confidence, alternatives, digit boxes."""
        from .reader.single import number_reading

        return number_reading(source, name, self.reader, self.max_side, self.profile)

    def expression(self, source, name: str = "image", propose=None) -> dict:
        """A written expression as read: text, confidence, alternatives, box, N-best."""
        from .reader.single import expression_reading

        return expression_reading(source, name, self.reader, self.max_side, propose)

    def calc(self, source, name: str = "image") -> dict:
        """A written expression worked out, and a written answer judged (``arithmetic.calc``)."""
        from .arithmetic.calc import calculate_reading
        from .arithmetic.verdicts import near_misses

        cal = self.calibration
        read = self.expression(source, name, propose=near_misses if cal.limits.get("near_misses") else None)
        return calculate_reading(read, cal)

    def grade(self, source, name: str | None = None, key: dict | None = None, lookup=None,
              keep_crops: bool = True, overflow: bool = True):
        """A photographed worksheet graded against its key (``worksheets.grade.grade_sheet``)."""
        from .worksheets.grade import grade_sheet

        return grade_sheet(source, name, key, lookup, self.reader, keep_crops, overflow)


def check_page(source, name: str = "image", max_side: int | None = None, model=None,
               low_confidence: float = 0.7, profile=None):
    """Read and check every arithmetic line and column sum of one image (``Predictor.check``)."""
    return Predictor(model, profile, max_side, low_confidence).check(source, name)


def read_number(source, name: str = "image", model=None, max_side: int | None = None, profile=None) -> dict:
    """A written number in one image (``Predictor.number``)."""
    return Predictor(model, profile, max_side).number(source, name)


def calculate(source, name: str = "image", model=None, max_side: int | None = None) -> dict:
    """A written expression in one image, worked out (``Predictor.calc``)."""
    return Predictor(model, None, max_side).calc(source, name)


def grade_photo(source, name: str | None = None, key: dict | None = None, lookup=None, model=None,
                keep_crops: bool = True, overflow: bool = True):
    """One worksheet photo graded (``Predictor.grade``); raises ``NoSheetFound`` when it shows none."""
    return Predictor(model).grade(source, name, key, lookup, keep_crops, overflow)
