"""Schema versions: a new database gets the current tables, an older one is upgraded by Alembic.

A new database is made from schema.py (create_all) and stamped with the head revision, so Alembic
is only imported when there is something to upgrade. A database written by release 0.1.0 (no
version table, but its tables) is stamped 0001 and upgraded. One process at a time: SQLite's
`BEGIN IMMEDIATE` or a PostgreSQL advisory lock makes a second one wait, then find it done.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, select

from .schema import metadata

HEAD = "0007"
MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x6E6C5354  # "nlST": the PostgreSQL advisory lock of schema changes
# Alembic's own version table, written here so a new database needs no Alembic import.
version_table = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


class NotOurDatabase(Exception):
    """Tables that are not ours and no version: refuse rather than write into someone else's database."""


def _version(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(select(version_table.c.version_num)).scalar()


def _stamp(conn: Connection, revision: str) -> None:
    version_table.create(conn, checkfirst=True)
    conn.execute(version_table.delete())
    conn.execute(version_table.insert().values(version_num=revision))


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _version(conn)


def ensure_current(engine: Engine) -> tuple[str, str] | None:
    """Create or upgrade the schema; (old, new) revision when an existing database was upgraded."""
    if current_revision(engine) == HEAD:
        return None
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # A table rebuilt by a migration must not cascade-delete the rows that refer to it;
            # the pragma only takes effect outside a transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        try:
            old = _version(conn)
            if old == HEAD:
                conn.rollback()
                return None
            tables = set(inspect(conn).get_table_names())
            upgraded = None
            if old is None and not tables & set(metadata.tables):
                if tables - {"alembic_version"}:
                    raise NotOurDatabase("it holds other tables and no newsletter schema")
                metadata.create_all(conn)
                _stamp(conn, HEAD)
            else:
                if old is None:
                    old = "0001"  # release 0.1.0 wrote no version
                    _stamp(conn, old)
                _upgrade(conn)
                upgraded = (old, HEAD)
            conn.commit()
            return upgraded
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
