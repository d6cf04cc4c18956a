"""The state database: one SQLAlchemy engine per process, tables declared by the modules that own them.

SQLite (the `[paths] state` file) in WAL mode with a busy timeout, so a scheduler, a `send` and the
unsubscribe endpoint can share it; SQLAlchemy Core keeps the door open for a PostgreSQL URL.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .config import Config
from .errors import NewsletterError

metadata = MetaData()
_engines: dict[str, Engine] = {}
_created: dict[str, int] = {}  # url -> number of tables known when create_all last ran


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


def _create_tables(engine: Engine, attempts: int = 20) -> None:
    """create_all, retried: two processes opening a brand-new file race on it.

    create_all checks then creates; the loser of the race gets "table ... already exists", or
    "database is locked" straight away (SQLite does not wait when a reader would have to become
    a writer behind another writer, or during the switch to WAL); its retry finds the tables.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except OperationalError as exc:
            retryable = "already exists" in str(exc) or "database is locked" in str(exc)
            if not retryable or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def engine_for(config: Config) -> Engine:
    """The engine for this config's state database, with every table declared so far created.

    Modules declare their tables on `metadata` at import; a module imported after the engine was
    made gets its tables on its first call here (create_all is idempotent and runs only then).
    """
    path = config.path("state").resolve()  # two folders' relative "newsletter.db" are two databases
    url = f"sqlite:///{path}"
    try:
        engine = _engines.get(url)
        if engine is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_pragmas)
            _engines[url] = engine
        if _created.get(url) != len(metadata.tables):
            _create_tables(engine)
            _created[url] = len(metadata.tables)
    except (OSError, SQLAlchemyError) as exc:
        raise NewsletterError(f"{path}: cannot open the state database ({exc}); check [paths] state") from None
    return engine


def dispose_all() -> None:
    """Close every pooled connection (tests, and before a process exits)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _created.clear()
