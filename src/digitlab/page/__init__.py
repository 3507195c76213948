"""Page geometry: from a photo, scan or drawing to line images, with a way back to the user's pixels.

``analyse_page`` runs the stages in order; each has its own module:

1. ``sheet``: find the sheet of paper in a photo and flatten its perspective;
2. ``ink``: even out the light, tell pen from paper (colour, rulings, grid squares);
3. ``layout``: straighten the writing, split columns, find the lines in each column.

Every line keeps a polygon in the coordinates of the image the user gave, so verdicts are drawn
where the writing is.
"""

from .layout import Line, Page, analyse_page  # noqa: F401
