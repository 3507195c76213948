"""Local storage: one SQLite file (standard library), versioned schema migrations, transactional writes.

The database lives in the user's data directory by default (see :func:`default_db_path`); ``--db PATH``
or ``$DIGITLAB_DB`` choose another file.
"""

from .db import Database, default_db_path, open_db
from .migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Database", "default_db_path", "open_db", "MIGRATIONS", "SCHEMA_VERSION"]
