"""The state database: every table, statuses, one lock, migrations; SQLite or PostgreSQL.

All SQL of the package lives in this folder; the modules above call these functions. Importing the
package imports no database library: `state.files` and `state.peek` serve commands that never open
the database (`render`), and SQLAlchemy loads with the first module that needs it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dispose_all", "engine_for", "utcnow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
