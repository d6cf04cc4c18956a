"""The state database: every table, statuses, one lock, migrations; SQLite or PostgreSQL.

All SQL of the package lives in this folder; the modules above call these functions.
"""

from __future__ import annotations

from .engine import dispose_all, engine_for, utcnow

__all__ = ["dispose_all", "engine_for", "utcnow"]
