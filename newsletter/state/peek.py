"""A look into a SQLite state file without SQLAlchemy or a schema upgrade, for commands that only read.

`render` needs the custom field names subscribers carry (templates may use them); opening the state
database the usual way would import SQLAlchemy and Alembic (most of a render's start-up) and upgrade
the schema, which a render must not do.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def sqlite_field_names(path: Path) -> list[str] | None:
    """Every custom field name in the SQLite state file at `path` (read-only); [] without the file or table.

    None when the file cannot be read (locked for long, damaged): the caller then asks the usual way.
    """
    if not path.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            return [row[0] for row in conn.execute("SELECT name FROM subscriber_fields ORDER BY name")]
    except sqlite3.OperationalError as exc:
        return [] if "no such table" in str(exc) else None
    except sqlite3.Error:
        return None
