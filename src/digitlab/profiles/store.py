"""Corrections in the SQLite database (the ``corrections`` table, migration 3 adds ``pixels`` and ``source``).

Two writers feed the table:

- the Digit tab / ``POST /api/corrections``: the 28x28 input the model saw (``pixels``, 784 bytes,
  MNIST polarity: 0 = paper, 255 = ink) and the right digit; ``source = 'digit'``;
- the Worksheets feature (``Database.correct``): the answer box crop (``image_png``, dark ink on
  white) and the number really written there, possibly several digits; ``pixels`` is NULL.

:func:`correction_examples` turns both into (N,28,28) training examples for ``digitlab adapt``.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import DigitlabError
from ..storage.db import Database, now


def _png(paper01: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(paper01, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def as_uint8_28(pixels) -> np.ndarray:
    """A 28x28 image (floats in [0,1] or 0..255, MNIST polarity) as uint8."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.shape != (28, 28):
        raise DigitlabError(f"pixels must be 28x28, got {'x'.join(map(str, a.shape))}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise DigitlabError("pixels must be numbers in [0, 1] (or 0..255)")
    if a.max() <= 1.0:
        a = a * 255
    return np.round(a).astype(np.uint8)


def add_correction(db: Database, pixels, label: int, profile: str | None, was_read: int | None = None,
                   source: str = "digit") -> int:
    """Store one corrected digit (its 28x28 input, the right label, the profile); returns its id."""
    if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise DigitlabError(f"a correction's label is one digit 0..9, not {label!r}")
    img = as_uint8_28(pixels)
    if img.max() < 13:
        raise DigitlabError("the 28x28 image has no ink")
    with db.transaction() as conn:
        cur = conn.execute("INSERT INTO corrections (image_png, label, was_read, profile, created_at, pixels, source) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (_png(1 - img / 255.0), str(int(label)), None if was_read is None else str(int(was_read)),
                            profile, now(), img.tobytes(), source))
        return int(cur.lastrowid)


def correction_rows(db: Database, profile: str | None) -> list[dict]:
    q = "SELECT id, image_png, pixels, label, profile FROM corrections"
    with db.connect() as conn:
        rows = conn.execute(q + (" WHERE profile = ?" if profile else "") + " ORDER BY id",
                            (profile,) if profile else ()).fetchall()
    return [dict(r) for r in rows]


def correction_counts(db: Database) -> dict[str | None, int]:
    with db.connect() as conn:
        rows = conn.execute("SELECT profile, COUNT(*) FROM corrections GROUP BY profile").fetchall()
    return {r[0]: int(r[1]) for r in rows}


def correction_examples(db: Database, profile: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(images (N,28,28) float in [0,1], labels, skipped) from the corrections stored for ``profile``.

    A worksheet crop labelled with several digits is split into symbols; it is used only when the
    split finds exactly as many symbols as the label has digits (else it is skipped and counted).
    """
    from ..digits.preprocess import NoDigitFound, preprocess_digit
    from ..digits.segment import segment_image

    images, labels, skipped = [], [], 0
    for r in correction_rows(db, profile):
        label = str(r["label"]).strip()
        if not label.isdigit():
            skipped += 1
            continue
        if r["pixels"] is not None and len(r["pixels"]) == 784 and len(label) == 1:
            images.append(np.frombuffer(r["pixels"], np.uint8).reshape(28, 28).astype(np.float32) / 255)
            labels.append(int(label))
            continue
        try:
            if len(label) == 1:
                images.append(preprocess_digit(bytes(r["image_png"]), name=f"correction {r['id']}"))
                labels.append(int(label))
            else:
                symbols = segment_image(bytes(r["image_png"]), name=f"correction {r['id']}")
                if len(symbols) != len(label):
                    skipped += 1
                    continue
                images.extend(s.image for s in symbols)
                labels.extend(int(c) for c in label)
        except (NoDigitFound, DigitlabError):
            skipped += 1
    if not images:
        return np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64), skipped
    return np.stack(images).astype(np.float32), np.asarray(labels, np.int64), skipped
