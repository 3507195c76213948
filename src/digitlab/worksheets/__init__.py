"""Printed worksheets: create (PDF/PNG + answer key), photograph, grade, and keep a class's results.

- :mod:`.layout`: exercises, page layout in millimetres, PDF (fpdf2) and PNG rendering;
- :mod:`.markers`: ArUco corner markers and the QR sheet id; perspective rectification;
- :mod:`.grade`: the handwritten number in each answer box, read and marked;
- :mod:`.report`: the class table, per-operation error rates, CSV and HTML;
- :mod:`.cli` and :mod:`.api`: the ``digitlab worksheet`` command and the web endpoints.
"""
