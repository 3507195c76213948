"""Numbered schema migrations, applied in order, each in its own transaction.

Never edit a migration that has shipped: add a new one at the end. ``schema_migrations`` records
which ones a database has, so opening an old file brings it up to date.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "worksheets: sheets, gradings, answers", """
        CREATE TABLE sheets (
            id          TEXT PRIMARY KEY,
            title       TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            params      TEXT NOT NULL,      -- JSON: how the sheet was made (ops, max, seed, ...)
            key         TEXT NOT NULL       -- JSON: the answer key and layout (the week3.json file)
        );
        CREATE TABLE gradings (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            sheet_id    TEXT NOT NULL REFERENCES sheets(id),
            file        TEXT NOT NULL,
            pupil_name  TEXT,               -- typed by the teacher; NULL until then
            name_png    BLOB,               -- the name field as photographed
            score       INTEGER NOT NULL,
            total       INTEGER NOT NULL,
            graded_at   TEXT NOT NULL
        );
        CREATE INDEX gradings_sheet ON gradings(sheet_id);
        CREATE TABLE answers (
            grading_id  INTEGER NOT NULL REFERENCES gradings(id) ON DELETE CASCADE,
            problem_id  INTEGER NOT NULL,
            op          TEXT NOT NULL,
            question    TEXT NOT NULL,
            expected    TEXT NOT NULL,      -- JSON list, one string per answer box
            read        TEXT NOT NULL,      -- JSON list, null for a blank box
            status      TEXT NOT NULL CHECK (status IN ('correct', 'wrong', 'unsure', 'blank')),
            confidence  REAL NOT NULL,
            PRIMARY KEY (grading_id, problem_id)
        );
        CREATE TABLE crops (
            grading_id  INTEGER NOT NULL REFERENCES gradings(id) ON DELETE CASCADE,
            problem_id  INTEGER NOT NULL,
            part        INTEGER NOT NULL,
            png         BLOB NOT NULL,      -- the answer box's ink (white paper, dark ink)
            PRIMARY KEY (grading_id, problem_id, part)
        );
    """),
    (2, "corrections: the teacher's fixes, input of 'teach it your handwriting'", """
        CREATE TABLE corrections (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            grading_id  INTEGER REFERENCES gradings(id) ON DELETE SET NULL,
            problem_id  INTEGER,
            part        INTEGER,
            image_png   BLOB NOT NULL,      -- the answer box crop the reader saw
            label       TEXT NOT NULL,      -- what is really written there
            was_read    TEXT,               -- what the reader made of it
            profile     TEXT,               -- class or pupil profile the handwriting belongs to
            created_at  TEXT NOT NULL
        );
        CREATE INDEX corrections_profile ON corrections(profile);
        ALTER TABLE answers ADD COLUMN corrected INTEGER NOT NULL DEFAULT 0;
    """),
    (3, "corrections from the Digit tab: the 28x28 input the model saw (profiles)", """
        ALTER TABLE corrections ADD COLUMN pixels BLOB;     -- 784 bytes, 28x28 uint8, 255 = ink; NULL for crops
        ALTER TABLE corrections ADD COLUMN source TEXT;     -- 'digit' (the Digit tab / API); NULL = worksheets
    """),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
