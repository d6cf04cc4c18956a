"""`db backup`: a consistent copy of a SQLite state database while send, schedule and serve keep writing.

SQLite's online backup API copies the database page by page under its own locks, the WAL's latest
commits included, so the copy is a database as it was at one moment; a plain `cp` of a file in WAL
mode can miss commits or catch a half-written page. The copy is written beside the target, flushed
to disk and renamed over it, mode 0600 (it holds the list). PostgreSQL has its own tool: pg_dump.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine

from ..config import Config
from ..errors import NewsletterError, StateError


def backup_sqlite(config: Config, engine: Engine, target: Path) -> int:
    """Copy the state database to `target` (replaced atomically); returns the copy's size in bytes."""
    state = config.path("state").resolve()
    resolved = target.resolve()
    if resolved.name.startswith(state.name) and resolved.parent == state.parent:
        raise NewsletterError(f"{target}: is the state database or one of its files; give the backup a path of its own")
    try:
        fd, name = tempfile.mkstemp(dir=resolved.parent, prefix=f".{resolved.name}.", suffix=".tmp")
    except OSError as exc:
        raise StateError(f"{target}: cannot write the backup there ({exc.strerror}); choose another PATH") from None
    os.close(fd)  # mkstemp made it 0600; SQLite writes it
    tmp = Path(name)
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        copy = sqlite3.connect(tmp)
        try:
            source.backup(copy)
        finally:
            copy.close()
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, resolved)
        directory = os.open(resolved.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"{target}: the backup failed ({exc}); nothing was replaced") from None
    finally:
        raw.close()
        tmp.unlink(missing_ok=True)
    return resolved.stat().st_size


def pg_dump_command(config: Config, target: Path) -> tuple[str, str]:
    """(the pg_dump command that backs the database up to `target`, the pg_restore command that brings it back).

    The URL is shown without a password: pg_dump reads it from PGPASSWORD or ~/.pgpass, as this program does.
    """
    parts = urlsplit(config.paths.state)
    netloc = parts.netloc.rpartition("@")
    host = f"{netloc[0].split(':', 1)[0]}@{netloc[2]}" if netloc[1] else parts.netloc
    url = urlunsplit(("postgresql", host, parts.path, parts.query, ""))
    return (
        f"pg_dump --format=custom --file={target} '{url}'",
        f"pg_restore --clean --if-exists --dbname='{url}' {target}",
    )
