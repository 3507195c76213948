"""Modules stay small enough to read: none under src/digitlab is over 400 lines unless it says why.

A longer module passes when its docstring (the module's first) has a line starting with
``Over 400 lines:`` followed by the reason. ``BEING_SPLIT`` lists the files whose split is under way.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "digitlab"
MAX_LINES = 400
REASON = "Over 400 lines:"

# Paths relative to src/digitlab. The test fails when one of them no longer needs it (then remove it).
BEING_SPLIT: set[str] = set()


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def reason(path: Path) -> str | None:
    """The text after ``Over 400 lines:`` in the module's docstring, or None."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), str(path))) or ""
    for line in doc.splitlines():
        if line.strip().startswith(REASON):
            return line.strip()[len(REASON):].strip()
    return None


def long_modules() -> dict[str, int]:
    """Every module over ``MAX_LINES`` lines, by its path relative to src/digitlab."""
    counts = {path.relative_to(SRC).as_posix(): line_count(path) for path in sorted(SRC.rglob("*.py"))}
    return {name: n for name, n in counts.items() if n > MAX_LINES}


def test_the_check_counts_lines_and_reads_the_reason(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""A module.\n\nOver 400 lines: one table, read top to bottom.\n"""\n' + "x = 1\n" * 401)
    assert line_count(module) == 405 and reason(module) == "one table, read top to bottom."
    module.write_text('"""A module; nothing said about its length."""\n')
    assert reason(module) is None


def test_no_module_over_400_lines_without_a_reason():
    offenders = [f"{name} ({n} lines)" for name, n in long_modules().items()
                 if name not in BEING_SPLIT and not reason(SRC / name)]
    assert not offenders, (f"modules over {MAX_LINES} lines: split them, or give the reason in their docstring "
                           f"on a line starting with {REASON!r}:\n  " + "\n  ".join(offenders))


def test_every_file_being_split_is_still_long():
    done = sorted(name for name in BEING_SPLIT if name not in long_modules())
    assert not done, f"no longer over {MAX_LINES} lines (remove them from BEING_SPLIT): {done}"
