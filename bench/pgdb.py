"""A throw-away PostgreSQL database for one bench run, made on a server the bench may create databases on."""

from __future__ import annotations

import os
import time


def new_database(admin_url: str, prefix: str) -> str:
    """Create `<prefix>_<pid>_<ns>` on the server of `admin_url` and return its URL."""
    from sqlalchemy import create_engine

    name = f"{prefix}_{os.getpid()}_{time.monotonic_ns()}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{admin_url.rpartition('/')[0]}/{name}"
