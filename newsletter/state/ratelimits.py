"""Fixed-window counters in the state database, so every `serve` replica enforces the same limits.

One row per bucket ("client:<hash>", "mail:<hash>"); a hit is one INSERT ... ON CONFLICT DO UPDATE
that restarts an expired window or adds one, and returns the count: atomic on SQLite and on
PostgreSQL (the row is locked for the update), however many replicas race.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, case, delete

from .engine import insert, utcnow
from .schema import rate_limits


def hit(engine: Engine, bucket: str, window: dt.timedelta) -> int:
    """Count one hit in `bucket`'s current window; returns the hits so far in that window (this one included)."""
    now = utcnow()
    expired = rate_limits.c.window_start <= now - window
    stmt = insert(engine, rate_limits).values(bucket=bucket, hits=1, window_start=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["bucket"],
        set_={
            "hits": case((expired, 1), else_=rate_limits.c.hits + 1),
            "window_start": case((expired, now), else_=rate_limits.c.window_start),
        },
    ).returning(rate_limits.c.hits)
    with engine.begin() as conn:
        return int(conn.execute(stmt).scalar_one())


def purge(engine: Engine, older_than: dt.timedelta) -> int:
    """Forget windows that started before `older_than` ago (they would restart anyway)."""
    with engine.begin() as conn:
        return conn.execute(delete(rate_limits).where(rate_limits.c.window_start < utcnow() - older_than)).rowcount
