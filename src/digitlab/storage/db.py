"""The SQLite database: where it lives, migrations on open, and the worksheet records.

Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``): a grading with its answers and
crops is stored whole or not at all, and concurrent writers (two CLI runs, the web app) queue on
SQLite's lock (WAL journal, 30 s busy timeout) instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..errors import DigitlabError
from .migrations import MIGRATIONS

BUSY_TIMEOUT_S = 30.0


def default_db_path() -> Path:
    """$DIGITLAB_DB, else the platform's per-user data folder / digitlab / digitlab.db."""
    env = os.environ.get("DIGITLAB_DB")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "digitlab" / "digitlab.db"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _statements(sql: str) -> list[str]:
    lines = [ln.split("--", 1)[0] for ln in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class Database:
    """A handle on one database file; each call opens a short-lived connection (thread- and process-safe)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Pupils' names and handwriting: readable by the owner only. SQLite gives its -wal and
            # -shm files the database file's mode, so creating it 0600 here covers them too.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise DigitlabError(f"cannot create the database {self.path}: {exc.strerror}") from exc
        self.migrate()

    # -- connections and transactions ----------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise DigitlabError(f"cannot open the database {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield conn
        except sqlite3.IntegrityError:  # a constraint: the caller's record was wrong, not the file
            raise
        except sqlite3.Error as exc:  # a read-only file or folder, a full disk, a broken file: one clear line
            hint = " (the file or its folder is read-only)" if "readonly" in str(exc) else ""
            raise DigitlabError(f"database {self.path}: {exc}{hint}") from exc
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all of it is committed, or (on any error, a crash) none of it."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def migrate(self) -> list[int]:
        """Apply the migrations this file lacks, in order, each in its own transaction."""
        applied = []
        with self.connect() as conn:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # e.g. a network file system; the rollback journal works too
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        for version, name, sql in MIGRATIONS:
            with self.transaction() as conn:
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    continue  # another process got there first
                for stmt in _statements(sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, now()))
                applied.append(version)
        return applied

    def schema_version(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- sheets ---------------------------------------------------------------------------------------
    def add_sheet(self, key: dict, params: dict) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO sheets VALUES (?, ?, ?, ?, ?)",
                         (key["sheet_id"], key.get("title", ""), now(), json.dumps(params), json.dumps(key)))

    def sheet_key(self, sheet_id: str) -> dict | None:
        with self.connect() as conn:
            row = conn.execute("SELECT key FROM sheets WHERE id = ?", (sheet_id,)).fetchone()
        return json.loads(row["key"]) if row else None

    def sheets(self) -> list[dict]:
        with self.connect() as conn:
            rows = conn.execute("SELECT s.id, s.title, s.created_at, s.params, COUNT(g.id) AS graded FROM sheets s "
                                "LEFT JOIN gradings g ON g.sheet_id = s.id GROUP BY s.id "
                                "ORDER BY s.created_at DESC, s.id").fetchall()
        return [{"sheet_id": r["id"], "title": r["title"], "created_at": r["created_at"],
                 "params": json.loads(r["params"]), "graded": r["graded"]} for r in rows]

    # -- gradings -------------------------------------------------------------------------------------
    def add_grading(self, result: dict, name_png: bytes | None = None, crops: dict | None = None,
                    pupil_name: str | None = None, key: dict | None = None) -> int:
        """Store a graded photo (``predictor.grade_photo``'s result) with its crops, in one transaction.

        ``key`` is stored too when the sheet is not in the database yet (graded with ``--key FILE``).
        """
        with self.transaction() as conn:
            if key is not None and not conn.execute("SELECT 1 FROM sheets WHERE id = ?", (key["sheet_id"],)).fetchone():
                conn.execute("INSERT INTO sheets VALUES (?, ?, ?, ?, ?)",
                             (key["sheet_id"], key.get("title", ""), now(), json.dumps({"imported": True}),
                              json.dumps(key)))
            cur = conn.execute("INSERT INTO gradings (sheet_id, file, pupil_name, name_png, score, total, graded_at) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (result["sheet_id"], result["file"], pupil_name, name_png, result["score"],
                                result["total"], now()))
            gid = int(cur.lastrowid)
            conn.executemany(
                "INSERT INTO answers (grading_id, problem_id, op, question, expected, read, status, confidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(gid, p["id"], p.get("op", ""), p.get("question", ""), json.dumps(p["expected"]),
                  json.dumps(p["read"]), p["status"], float(p["confidence"])) for p in result["problems"]])
            conn.executemany("INSERT INTO crops VALUES (?, ?, ?, ?)",
                             [(gid, pid, part, png) for (pid, part), png in (crops or {}).items()])
        return gid

    def rename(self, grading_id: int, name: str) -> None:
        with self.transaction() as conn:
            cur = conn.execute("UPDATE gradings SET pupil_name = ? WHERE id = ?", (name.strip() or None, grading_id))
            if cur.rowcount == 0:
                raise DigitlabError(f"no graded sheet with id {grading_id}")

    def gradings(self, sheet_id: str | None = None) -> list[dict]:
        q = ("SELECT id, sheet_id, file, pupil_name, score, total, graded_at, name_png IS NOT NULL AS has_name "
             "FROM gradings")
        args: tuple = ()
        if sheet_id:
            q += " WHERE sheet_id = ?"
            args = (sheet_id,)
        with self.connect() as conn:
            rows = conn.execute(q + " ORDER BY id", args).fetchall()
        return [dict(r) for r in rows]

    def grading(self, grading_id: int) -> dict | None:
        with self.connect() as conn:
            g = conn.execute("SELECT id, sheet_id, file, pupil_name, score, total, graded_at FROM gradings "
                             "WHERE id = ?", (grading_id,)).fetchone()
            if g is None:
                return None
            rows = conn.execute("SELECT * FROM answers WHERE grading_id = ? ORDER BY problem_id", (grading_id,)).fetchall()
        out = dict(g)
        out["problems"] = [{"id": r["problem_id"], "op": r["op"], "question": r["question"],
                            "expected": json.loads(r["expected"]), "read": json.loads(r["read"]),
                            "status": r["status"], "confidence": r["confidence"], "corrected": bool(r["corrected"])}
                           for r in rows]
        return out

    def answers(self, sheet_id: str | None = None) -> list[dict]:
        q = ("SELECT a.*, g.sheet_id FROM answers a JOIN gradings g ON g.id = a.grading_id"
             + (" WHERE g.sheet_id = ?" if sheet_id else "") + " ORDER BY a.grading_id, a.problem_id")
        with self.connect() as conn:
            rows = conn.execute(q, (sheet_id,) if sheet_id else ()).fetchall()
        return [{"grading_id": r["grading_id"], "sheet_id": r["sheet_id"], "id": r["problem_id"], "op": r["op"],
                 "question": r["question"], "expected": json.loads(r["expected"]), "read": json.loads(r["read"]),
                 "status": r["status"], "confidence": r["confidence"]} for r in rows]

    def crop(self, grading_id: int, problem_id: int, part: int) -> bytes | None:
        with self.connect() as conn:
            row = conn.execute("SELECT png FROM crops WHERE grading_id = ? AND problem_id = ? AND part = ?",
                               (grading_id, problem_id, part)).fetchone()
        return bytes(row[0]) if row else None

    def name_png(self, grading_id: int) -> bytes | None:
        with self.connect() as conn:
            row = conn.execute("SELECT name_png FROM gradings WHERE id = ?", (grading_id,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def correct(self, grading_id: int, problem_id: int, labels: list[str | None], profile: str | None = None) -> dict:
        """The teacher says what is written in a problem's boxes: the answer is re-marked, the score
        updated, and each changed box stored in ``corrections`` (crop + right label + profile)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT expected, read, status FROM answers WHERE grading_id = ? AND problem_id = ?",
                               (grading_id, problem_id)).fetchone()
            if row is None:
                raise DigitlabError(f"no answer {problem_id} in graded sheet {grading_id}")
            expected, read = json.loads(row["expected"]), json.loads(row["read"])
            if len(labels) != len(expected):
                raise DigitlabError(f"problem {problem_id} has {len(expected)} answer box(es), got {len(labels)} label(s)")
            labels = [(str(x).strip() or None) if x is not None else None for x in labels]
            for part, (label, was) in enumerate(zip(labels, read)):
                # ASCII digits only, and short: str.isdigit() takes "²" and int() refuses 5,000 digits.
                if label is not None and not re.fullmatch(r"[0-9]{1,12}", label):
                    raise DigitlabError(f"a label is a number written with digits 0-9 (at most 12), not {label[:20]!r}")
                png = conn.execute("SELECT png FROM crops WHERE grading_id = ? AND problem_id = ? AND part = ?",
                                   (grading_id, problem_id, part)).fetchone()
                if label is not None and png is not None:
                    conn.execute("INSERT INTO corrections (grading_id, problem_id, part, image_png, label, was_read, "
                                 "profile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (grading_id, problem_id, part, png[0], label, was, profile, now()))
            if all(x is None for x in labels):
                status = "blank"
            else:
                status = "correct" if [str(int(x)) if x else x for x in labels] == expected else "wrong"
            conn.execute("UPDATE answers SET read = ?, status = ?, confidence = 1.0, corrected = 1 "
                         "WHERE grading_id = ? AND problem_id = ?", (json.dumps(labels), status, grading_id, problem_id))
            score = conn.execute("SELECT COUNT(*) FROM answers WHERE grading_id = ? AND status = 'correct'",
                                 (grading_id,)).fetchone()[0]
            conn.execute("UPDATE gradings SET score = ? WHERE id = ?", (score, grading_id))
        return {"status": status, "score": int(score)}

    def corrections(self, profile: str | None = None) -> list[dict]:
        q = "SELECT id, grading_id, problem_id, part, label, was_read, profile, created_at FROM corrections"
        with self.connect() as conn:
            rows = conn.execute(q + (" WHERE profile = ?" if profile else "") + " ORDER BY id",
                                (profile,) if profile else ()).fetchall()
        return [dict(r) for r in rows]


def open_db(path: str | os.PathLike | None = None) -> Database:
    return Database(path or default_db_path())
