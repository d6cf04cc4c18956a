"""The state database: one SQLAlchemy engine per database and process, SQLite or PostgreSQL.

SQLite (a file, the default) runs in WAL mode with a busy timeout, so a scheduler, a `send` and the
public endpoints share it; PostgreSQL (a `postgresql://` URL, driver psycopg 3) lets `serve` and
`send` run on different machines. The few places where the two differ (the INSERT with ON CONFLICT,
the DBAPI's parameter style, how a time is passed on the raw send path) are the helpers below.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..config import Config
from ..errors import StateError, one_line
from . import migrate
from .files import create_private, private_dir

_engines: dict[str, Engine] = {}
_files: dict[str, tuple[int, int]] = {}  # SQLite: (device, inode) of the file each engine opened
# SQLAlchemy's text form of a SQLite DateTime: what the raw send path writes so Core reads it back.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching a new file to WAL takes a lock another process may hold.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process (not power loss)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _create(config: Config) -> Engine:
    # hide_parameters: a failed statement's text must never carry an address into an error or a log.
    if config.state_is_url:
        try:
            return create_engine(
                config.state_url, pool_pre_ping=True, hide_parameters=True, connect_args={"connect_timeout": 10}
            )
        except ImportError:
            raise StateError(
                f"{config.state_shown}: PostgreSQL needs the psycopg driver; install it with "
                f"pip install 'quillpost[postgresql]'"
            ) from None
    path = config.path("state").resolve()
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise StateError(f"{path.parent}: cannot create the folder of [paths] state ({exc.strerror})") from None
    try:
        create_private(path)  # personal data: 0600, and SQLite gives -wal and -shm the same mode
    except OSError as exc:
        raise StateError(f"{path}: cannot create the state database ({exc.strerror}); check [paths] state") from None
    engine = create_engine(config.state_url, hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _identity(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_dev, found.st_ino


def check_file(config: Config, engine: Engine) -> None:
    """SQLite: the file at [paths] state is the one this engine has open (a long-running serve must not write
    into a file that was moved away, nor make a new empty one in its place). A file replaced since (a backup
    restored) is taken up: the pooled connections to the old one are closed. Raises StateError when it is gone.
    """
    if config.state_is_url:
        return
    path = config.path("state").resolve()
    try:
        now = _identity(path)
    except FileNotFoundError:
        raise StateError(f"{config.state_shown}: the state database file is gone (moved or deleted)") from None
    if _files.setdefault(config.state_url, now) != now:
        engine.dispose()
        _files[config.state_url] = now


def _current(engine: Engine, shown: str, notice: Callable[[str], None] | None, attempts: int = 20) -> None:
    """Bring the schema to the current revision, retried: two processes opening a new SQLite file race.

    SQLite answers "database is locked" at once (without waiting) while another process switches a
    new file to WAL; the retry then finds the schema made.
    """
    for attempt in range(attempts):
        try:
            upgraded = migrate.ensure_current(engine)
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
            continue
        if upgraded is not None and notice is not None:
            notice(f"upgraded the state database {shown} (schema {upgraded[0]} -> {upgraded[1]})")
        return


def engine_for(config: Config, notice: Callable[[str], None] | None = None) -> Engine:
    """The engine for this config's state database, its schema current (created or upgraded on first use).

    `notice` hears about an upgrade (the CLI prints it as one line).
    """
    url = config.state_url
    engine = _engines.get(url)
    if engine is not None:
        return engine
    engine = _create(config)
    try:
        _current(engine, config.state_shown, notice)
    except migrate.NotOurDatabase as exc:
        engine.dispose()
        raise StateError(f"{config.state_shown}: {exc}; check [paths] state") from None
    except (OSError, SQLAlchemyError) as exc:
        engine.dispose()
        detail = one_line(getattr(exc, "orig", None) or exc)
        if _DAMAGED in detail:
            raise damaged(config, detail) from None
        raise StateError(
            f"{config.state_shown}: cannot open the state database ({detail}); "
            f"check [paths] state, or restore the file from a backup"
        ) from None
    _engines[url] = engine
    if not config.state_is_url:
        _files[url] = _identity(config.path("state").resolve())
    return engine


_DAMAGED = "database disk image is malformed"


def damaged(config: Config, detail: str) -> StateError:
    """A SQLite file with broken pages: what happened and how to restore, in one line."""
    return StateError(
        f"{config.state_shown}: the state database is damaged ({detail}); restore it from a backup: stop serve and "
        f"schedule, copy the backup over it and delete its -wal and -shm files (see Backups in the README)"
    )


def failure(config: Config, exc: BaseException) -> StateError:
    """A database error in the middle of a command (SQLAlchemy's or the driver's own) as one line."""
    detail = one_line(getattr(exc, "orig", None) or exc) or type(exc).__name__
    if _DAMAGED in detail:
        return damaged(config, detail)
    fix = "free disk space" if "full" in detail else "fix that"
    return StateError(f"{config.state_shown}: the state database failed ({detail}); {fix}, then run the command again")


def ping(engine: Engine) -> None:
    """Raises when the database does not answer (the health check)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def dispose_all() -> None:
    """Close every pooled connection (tests, and before a process exits)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _files.clear()


# --- where SQLite and PostgreSQL differ --------------------------------------------------------


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def insert(engine: Engine, table: Any) -> Any:
    """INSERT with `on_conflict_do_nothing` / `on_conflict_do_update`, in the engine's dialect."""
    if is_sqlite(engine):
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    from sqlalchemy.dialects import postgresql  # imported only for a PostgreSQL state: 40 ms

    return postgresql.insert(table)


def dbapi_sql(engine: Engine, sql: str) -> str:
    """Plain SQL written with `?` placeholders, in the DBAPI's parameter style (psycopg: %s)."""
    return sql if is_sqlite(engine) else sql.replace("?", "%s")


def dbapi_time(engine: Engine, moment: dt.datetime) -> Any:
    """A naive UTC time for a plain-SQL parameter: SQLite stores SQLAlchemy's text form."""
    return moment.strftime(SQLITE_TIME) if is_sqlite(engine) else moment
